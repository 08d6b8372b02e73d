#include "sync/device_route.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <functional>

#include "core/json.h"
#include "sync/mapping.h"
#include "sync/mqtt_client.h"

namespace doppel::sync {

namespace json = boost::json;
using core::Status;

namespace {

bool IsName(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

std::string List(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

TopicTemplate TopicTemplate::Parse(std::string_view text, const std::vector<std::string>& names,
                                   bool whole_levels, const std::string& pointer,
                                   std::vector<Status>* problems) {
  TopicTemplate t;
  t.text_ = std::string(text);
  std::string literal;
  auto problem = [&](const char* code, std::string message) {
    problems->emplace_back(code, std::move(message), pointer);
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '}') {
      problem("MAPPING_TEMPLATE",
              fmt::format("'{}' has a '}}' without '{{' at offset {}", text, i));
      return t;
    }
    if (ch != '{') {
      literal += ch;
      continue;
    }
    std::size_t close = text.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || text[close] == '{') {
      problem("MAPPING_TEMPLATE",
              fmt::format("'{}' has a '{{' without '}}' at offset {}", text, i));
      return t;
    }
    std::string_view inner = text.substr(i + 1, close - i - 1);
    if (!IsName(inner) || std::find(names.begin(), names.end(), inner) == names.end()) {
      problem("MAPPING_TEMPLATE",
              fmt::format("'{{{}}}' is not a placeholder of this mapping (known: {})", inner,
                          List(names)));
      return t;
    }
    if (whole_levels) {
      bool starts = i == 0 || text[i - 1] == '/';
      bool ends = close + 1 == text.size() || text[close + 1] == '/';
      if (!starts || !ends) {
        problem("MAPPING_TEMPLATE",
                fmt::format("'{{{}}}' must be a whole topic level in '{}' (it is subscribed with "
                            "'+' there)",
                            inner, text));
        return t;
      }
    }
    if (!literal.empty()) t.parts_.push_back({false, std::move(literal)});
    literal.clear();
    t.parts_.push_back({true, std::string(inner)});
    i = close;
  }
  if (!literal.empty()) t.parts_.push_back({false, std::move(literal)});
  return t;
}

std::vector<std::string> TopicTemplate::names() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (p.placeholder) out.push_back(p.text);
  }
  return out;
}

core::Result<std::string> TopicTemplate::Fill(const CaptureValues& values) const {
  std::string out;
  for (const Part& p : parts_) {
    if (!p.placeholder) {
      out += p.text;
      continue;
    }
    auto it = values.find(p.text);
    if (it == values.end()) return Status("DEVICE_NO_ROUTE", p.text);
    out += it->second;
  }
  return out;
}

std::string TopicTemplate::Filter() const {
  std::string out;
  for (const Part& p : parts_) out += p.placeholder ? std::string("+") : p.text;
  return out;
}

std::optional<CaptureValues> TopicTemplate::Match(std::string_view text) const {
  CaptureValues values;
  // Backtracking over the parts; a placeholder takes one or more characters.
  std::function<bool(std::size_t, std::size_t)> match = [&](std::size_t part,
                                                            std::size_t pos) -> bool {
    if (part == parts_.size()) return pos == text.size();
    const Part& p = parts_[part];
    if (!p.placeholder) {
      if (text.substr(pos, p.text.size()) != p.text) return false;
      return match(part + 1, pos + p.text.size());
    }
    if (auto it = values.find(p.text); it != values.end()) {
      const std::string v = it->second;  // a repeated placeholder must repeat its value
      return text.substr(pos, v.size()) == v && match(part + 1, pos + v.size());
    }
    for (std::size_t end = pos + 1; end <= text.size(); ++end) {
      values[p.text] = std::string(text.substr(pos, end - pos));
      if (match(part + 1, end)) return true;
    }
    values.erase(p.text);
    return false;
  };
  if (!match(0, 0)) return std::nullopt;
  return values;
}

namespace {

// `obj[key]` as a topic template; nullopt after a problem.
std::optional<TopicTemplate> TopicMember(const json::object& obj, const std::string& base,
                                         std::string_view key, bool required,
                                         const std::vector<std::string>& names, bool whole_levels,
                                         std::vector<Status>* problems) {
  std::string ptr = core::PointerAppend(base, key);
  const json::value* v = obj.if_contains(key);
  if (v == nullptr) {
    if (required)
      problems->emplace_back("MAPPING_INVALID", fmt::format("'{}' is missing", key), ptr);
    return std::nullopt;
  }
  if (!v->is_string() || v->get_string().empty()) {
    problems->emplace_back("MAPPING_INVALID", fmt::format("'{}' must be a non-empty string", key),
                           ptr);
    return std::nullopt;
  }
  std::string_view text = v->get_string();
  if (text.find_first_of("+#") != std::string_view::npos) {
    problems->emplace_back("MAPPING_TOPIC",
                           fmt::format("'{}' is published to, so it cannot have '+' or '#'", text),
                           ptr);
    return std::nullopt;
  }
  const std::size_t before = problems->size();
  TopicTemplate t = TopicTemplate::Parse(text, names, whole_levels, ptr, problems);
  if (problems->size() != before) return std::nullopt;
  CaptureValues sample;
  for (const auto& n : t.names()) sample[n] = "x";
  if (Status s = ValidateTopicName(*t.Fill(sample)); !s.ok()) {
    problems->emplace_back("MAPPING_TOPIC", s.message(), ptr);
    return std::nullopt;
  }
  return t;
}

std::chrono::milliseconds TimeoutMember(const json::object& obj, const std::string& base,
                                        std::chrono::milliseconds fallback,
                                        std::vector<Status>* problems) {
  const json::value* v = obj.if_contains("timeoutMs");
  if (v == nullptr) return fallback;
  constexpr std::int64_t kMax = 86400000;
  if ((v->is_int64() && v->get_int64() >= 1 && v->get_int64() <= kMax) ||
      (v->is_uint64() && v->get_uint64() >= 1 && v->get_uint64() <= kMax)) {
    return std::chrono::milliseconds(v->to_number<std::int64_t>());
  }
  problems->emplace_back(
      "MAPPING_INVALID",
      fmt::format("'timeoutMs' must be an integer 1..{}, not {}", kMax, core::Abbreviate(*v)),
      base + "/timeoutMs");
  return fallback;
}

// The members of `obj` that are not in `known`.
void UnknownMembers(const json::object& obj, const std::string& base,
                    std::initializer_list<std::string_view> known, std::vector<Status>* problems) {
  for (const auto& kv : obj) {
    if (std::find(known.begin(), known.end(), kv.key()) == known.end()) {
      std::string names;
      for (auto k : known) names += (names.empty() ? "" : ", ") + std::string(k);
      problems->emplace_back("MAPPING_INVALID",
                             fmt::format("unknown member '{}'; '{}' has {}",
                                         std::string_view(kv.key()), base.substr(1), names),
                             core::PointerAppend(base, kv.key()));
    }
  }
}

}  // namespace

std::shared_ptr<const OutboundRoutes> ParseOutboundRoutes(const json::object& o,
                                                          const TopicPattern* topic,
                                                          std::vector<Status>* problems) {
  const json::value* desired = o.if_contains("desired");
  const json::value* commands = o.if_contains("commands");
  if (desired == nullptr && commands == nullptr) return nullptr;
  auto out = std::make_shared<OutboundRoutes>();
  std::vector<std::string> names;
  if (topic != nullptr) names = topic->capture_names();
  const std::size_t before = problems->size();
  if (desired != nullptr) {
    if (!desired->is_object()) {
      problems->emplace_back("MAPPING_INVALID", "'desired' must be an object", "/desired");
    } else {
      const json::object& d = desired->get_object();
      UnknownMembers(d, "/desired", {"topic", "ackTopic", "timeoutMs"}, problems);
      auto t = TopicMember(d, "/desired", "topic", true, names, false, problems);
      auto ack = TopicMember(d, "/desired", "ackTopic", false, names, true, problems);
      auto timeout = TimeoutMember(d, "/desired", std::chrono::milliseconds(30000), problems);
      std::shared_ptr<const TopicPattern> pattern;
      if (ack) {
        auto compiled = TopicPattern::Compile(ack->Filter());
        if (compiled.ok()) {
          pattern = std::make_shared<const TopicPattern>(std::move(*compiled));
        } else {
          problems->emplace_back("MAPPING_TOPIC", compiled.status().message(), "/desired/ackTopic");
        }
      }
      if (t)
        out->desired = DesiredRoute{std::move(*t), std::move(ack), std::move(pattern), timeout};
    }
  }
  if (commands != nullptr) {
    if (!commands->is_object()) {
      problems->emplace_back("MAPPING_INVALID", "'commands' must be an object", "/commands");
    } else {
      const json::object& d = commands->get_object();
      UnknownMembers(d, "/commands", {"topic", "timeoutMs"}, problems);
      std::vector<std::string> with_command = names;
      with_command.emplace_back("command");
      auto t = TopicMember(d, "/commands", "topic", true, with_command, false, problems);
      auto timeout = TimeoutMember(d, "/commands", std::chrono::milliseconds(10000), problems);
      if (t) out->commands = CommandRoute{std::move(*t), timeout};
    }
  }
  if (const json::value* twin = o.if_contains("twin"); twin != nullptr && twin->is_string()) {
    std::vector<Status> ignored;  // the twin template's own problems are the mapping's
    TopicTemplate t = TopicTemplate::Parse(twin->get_string(), names, false, "/twin", &ignored);
    if (ignored.empty()) out->twin = std::move(t);
  }
  if (problems->size() != before) return nullptr;
  return out;
}

}  // namespace doppel::sync
