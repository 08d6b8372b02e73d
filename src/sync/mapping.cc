#include "sync/mapping.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <span>

#include "core/json.h"
#include "core/time.h"
#include "sync/element_path.h"
#include "sync/line_protocol.h"
#include "sync/units.h"

namespace doppel::sync {

namespace json = boost::json;
using core::Status;

namespace {

using Problems = std::vector<Status>;
using Tags = std::span<const std::pair<std::string_view, std::string_view>>;

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [A-Za-z_][A-Za-z0-9_]*
bool IsCaptureName(std::string_view s) {
  if (s.empty() || !IsNameStart(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return IsNameStart(c) || IsDigit(c); });
}

// [A-Za-z0-9_.-]{1,64}
bool IsMappingId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsNameStart(c) || IsDigit(c) || c == '.' || c == '-'; });
}

std::string AbbreviateText(std::string_view s, std::size_t max_chars = 60) {
  if (s.size() <= max_chars) return std::string(s);
  // Do not cut a UTF-8 sequence in two.
  std::size_t n = max_chars;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// ---- Templates -----------------------------------------------------------------------------

// Literal text with `{capture}` and `{tag:NAME}` placeholders, compiled once.
class Template {
 public:
  // Parses `text`; problems (MAPPING_TEMPLATE at `pointer`) go to *problems. `topic` is null when
  // the topic pattern did not compile (captures are then not checked).
  static Template Parse(std::string_view text, const TopicPattern* topic, bool tags_allowed,
                        const std::string& pointer, Problems* problems) {
    Template t;
    t.text_ = std::string(text);
    std::string literal;
    auto flush = [&] {
      if (!literal.empty()) t.parts_.push_back({Kind::kLiteral, std::move(literal), 0});
      literal.clear();
    };
    auto problem = [&](std::string message) {
      problems->emplace_back("MAPPING_TEMPLATE", std::move(message), pointer);
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
      char ch = text[i];
      if (ch == '}') {
        problem(fmt::format("'{}' has a '}}' without '{{' at offset {}", text, i));
        continue;
      }
      if (ch != '{') {
        literal += ch;
        continue;
      }
      std::size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || text[close] == '{') {
        problem(fmt::format("'{}' has a '{{' without '}}' at offset {}", text, i));
        continue;
      }
      std::string_view inner = text.substr(i + 1, close - i - 1);
      i = close;
      flush();
      if (inner.starts_with("tag:")) {
        std::string_view tag = inner.substr(4);
        if (!tags_allowed) {
          problem(
              fmt::format("'{{{}}}': tag placeholders are only for format line-protocol", inner));
        } else if (tag.empty()) {
          problem(fmt::format("'{}' has an empty tag name in '{{tag:}}'", text));
        }
        t.parts_.push_back({Kind::kTag, std::string(tag), 0});
        continue;
      }
      if (!IsCaptureName(inner)) {
        problem(
            fmt::format("'{{{}}}' is not a placeholder: use {{capture}} (a name of the topic "
                        "pattern){}",
                        inner, tags_allowed ? " or {tag:NAME}" : ""));
        continue;
      }
      std::size_t index = 0;
      if (topic != nullptr) {
        auto found = topic->CaptureIndex(inner);
        if (!found) {
          std::string names;
          for (const auto& n : topic->capture_names()) {
            names += names.empty() ? "" : ", ";
            names += n;
          }
          problem(fmt::format("'{{{}}}' is not a capture of the topic pattern '{}' ({})", inner,
                              topic->pattern(),
                              names.empty() ? "it has no captures" : "captures: " + names));
          continue;
        }
        index = *found;
      }
      t.parts_.push_back({Kind::kCapture, std::string(inner), index});
    }
    flush();
    return t;
  }

  // A template of plain text (no placeholders parsed).
  static Template Literal(std::string text) {
    Template t;
    t.text_ = text;
    if (!text.empty()) t.parts_.push_back({Kind::kLiteral, std::move(text), 0});
    return t;
  }

  bool is_literal() const {
    return parts_.empty() || (parts_.size() == 1 && parts_[0].kind == Kind::kLiteral);
  }
  const std::string& text() const { return text_; }

  // Writes the expansion to *out. False (with *missing_tag set) if `tags` lacks a tag it needs.
  bool Expand(std::span<const std::string_view> captures, Tags tags, std::string* out,
              std::string_view* missing_tag) const {
    out->clear();
    for (const Part& p : parts_) {
      switch (p.kind) {
        case Kind::kLiteral:
          *out += p.text;
          break;
        case Kind::kCapture:
          *out += captures[p.capture];
          break;
        case Kind::kTag: {
          auto it = std::find_if(tags.begin(), tags.end(),
                                 [&](const auto& kv) { return kv.first == p.text; });
          if (it == tags.end()) {
            *missing_tag = p.text;
            return false;
          }
          *out += it->second;
          break;
        }
      }
    }
    return true;
  }

 private:
  enum class Kind : unsigned char { kLiteral, kCapture, kTag };
  struct Part {
    Kind kind;
    std::string text;     // literal text, capture name or tag name
    std::size_t capture;  // index into the topic's captures
  };
  std::vector<Part> parts_;
  std::string text_;
};

// ---- JSON pointers (RFC 6901) -----------------------------------------------------------------

// Splits and unescapes `text`. False if it is not a JSON pointer.
bool ParsePointer(std::string_view text, std::vector<std::string>* tokens, std::string* why) {
  tokens->clear();
  if (text.empty()) return true;
  if (text[0] != '/') {
    *why = "a JSON pointer is empty or starts with '/'";
    return false;
  }
  std::string token;
  for (std::size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '/') {
      tokens->push_back(std::move(token));
      token.clear();
      continue;
    }
    if (text[i] != '~') {
      token += text[i];
      continue;
    }
    if (i + 1 < text.size() && (text[i + 1] == '0' || text[i + 1] == '1')) {
      token += text[i + 1] == '0' ? '~' : '/';
      ++i;
      continue;
    }
    *why = fmt::format(
        "'~' at offset {} is not followed by 0 or 1 (write '~0' for '~', '~1' for "
        "'/')",
        i);
    return false;
  }
  return true;
}

// The value `tokens` select in `root`, or null.
const json::value* Resolve(const json::value& root, const std::vector<std::string>& tokens) {
  const json::value* v = &root;
  for (const std::string& t : tokens) {
    if (const json::object* o = v->if_object()) {
      v = o->if_contains(t);
      if (v == nullptr) return nullptr;
    } else if (const json::array* a = v->if_array()) {
      // Array index: "0" or no leading zero; "-" (past the end) selects nothing.
      if (t.empty() || (t.size() > 1 && t[0] == '0')) return nullptr;
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), index);
      if (ec != std::errc() || end != t.data() + t.size() || index >= a->size()) return nullptr;
      v = &(*a)[index];
    } else {
      return nullptr;
    }
  }
  return v;
}

// ---- Numbers ---------------------------------------------------------------------------------

// Reads a plain number ("-12", "21.5", "1e3", ".5", "5.") or true/false; surrounding white space
// is ignored. nullopt with *why set if it is not one.
std::optional<json::value> ParseNumberText(std::string_view s, std::string* why) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s == "true") return json::value(true);
  if (s == "false") return json::value(false);
  if (s.empty()) {
    *why = "the payload is empty";
    return std::nullopt;
  }
  // Grammar: -? (digits (. digits*)? | . digits) ([eE] [+-]? digits)?
  std::size_t i = 0, n = s.size();
  if (s[i] == '-') ++i;
  std::size_t int_start = i;
  while (i < n && IsDigit(s[i])) ++i;
  std::size_t int_digits = i - int_start;
  std::size_t frac_digits = 0;
  bool integral = true;
  if (i < n && s[i] == '.') {
    integral = false;
    ++i;
    std::size_t frac_start = i;
    while (i < n && IsDigit(s[i])) ++i;
    frac_digits = i - frac_start;
  }
  long long exponent = 0;
  bool ok = int_digits + frac_digits > 0;
  if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
    integral = false;
    ++i;
    bool negative = i < n && s[i] == '-';
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_start = i;
    while (i < n && IsDigit(s[i])) {
      if (exponent < 100000) exponent = exponent * 10 + (s[i] - '0');
      ++i;
    }
    ok = i > exp_start;
    if (negative) exponent = -exponent;
  }
  if (!ok || i != n) {
    *why = fmt::format("'{}' is not a number", AbbreviateText(s));
    return std::nullopt;
  }
  const char* first = s.data();
  const char* last = s.data() + n;
  if (integral) {
    std::int64_t v = 0;
    auto r = std::from_chars(first, last, v);
    if (r.ec == std::errc() && r.ptr == last) return json::value(v);
    if (s[0] != '-') {
      std::uint64_t u = 0;
      auto ru = std::from_chars(first, last, u);
      if (ru.ec == std::errc() && ru.ptr == last) return json::value(u);
    }
  }
  double d = 0;
  auto r = std::from_chars(first, last, d);
  if (r.ec == std::errc() && r.ptr == last) return json::value(d);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow or underflow? The sign of the decimal exponent of the first significant digit
    // decides (an underflow reads as 0, as in line protocol and JSON).
    std::size_t k = s[0] == '-' ? 1 : 0;
    while (k < n && (s[k] == '0' || s[k] == '.')) ++k;
    std::size_t mantissa_end = std::min(s.find_first_of("eE"), n);
    std::size_t point = std::min(s.find('.'), mantissa_end);
    long long magnitude = exponent + (k < point ? static_cast<long long>(point - k)
                                                : -static_cast<long long>(k - point - 1));
    if (magnitude <= 0) return json::value(s[0] == '-' ? -0.0 : 0.0);
    *why = fmt::format("'{}' is out of the range of a double", AbbreviateText(s));
    return std::nullopt;
  }
  *why = fmt::format("'{}' is not a number", AbbreviateText(s));
  return std::nullopt;
}

// ---- Timestamps ------------------------------------------------------------------------------

enum class TimeFormat { kRfc3339, kUnixSeconds, kUnixMillis, kUnixMicros, kUnixNanos };

std::optional<TimeFormat> TimeFormatOf(std::string_view s) {
  if (s == "rfc3339") return TimeFormat::kRfc3339;
  if (s == "unix-s") return TimeFormat::kUnixSeconds;
  if (s == "unix-ms") return TimeFormat::kUnixMillis;
  if (s == "unix-us") return TimeFormat::kUnixMicros;
  if (s == "unix-ns") return TimeFormat::kUnixNanos;
  return std::nullopt;
}

std::int64_t NanosPer(TimeFormat f) {
  switch (f) {
    case TimeFormat::kUnixSeconds:
      return 1'000'000'000;
    case TimeFormat::kUnixMillis:
      return 1'000'000;
    case TimeFormat::kUnixMicros:
      return 1'000;
    default:
      return 1;
  }
}

Clock::time_point FromNanos(std::int64_t ns) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

struct TimestampSpec {
  std::string pointer;
  std::vector<std::string> tokens;
  TimeFormat format = TimeFormat::kRfc3339;
  std::string format_name = "rfc3339";
  bool optional = false;
};

// The source time in `doc`: nullopt = none there and optional (use the arrival time).
core::Result<std::optional<Clock::time_point>> ReadTimestamp(const TimestampSpec& t,
                                                             const json::value& doc) {
  auto fail = [&](std::string why) {
    return Status("MAPPING_TIMESTAMP", fmt::format("timestamp at '{}': {}", t.pointer, why),
                  t.pointer);
  };
  const json::value* v = Resolve(doc, t.tokens);
  if (v == nullptr || v->is_null()) {
    if (t.optional) return std::optional<Clock::time_point>();
    return fail("missing");
  }
  if (t.format == TimeFormat::kRfc3339) {
    if (!v->is_string())
      return fail(fmt::format("{} is a {}, not an RFC 3339 string", core::Abbreviate(*v),
                              core::KindName(*v)));
    std::string_view s = v->get_string();
    // The year first: ParseRfc3339 overflows the clock's nanoseconds outside 1678..2261.
    int year = 0;
    if (core::ParseFixedDigits(s, 0, 4, &year) && (year < 1678 || year > 2261)) {
      return fail(fmt::format("'{}' is outside the years 1678..2261", AbbreviateText(s)));
    }
    auto tp = core::ParseRfc3339(s);
    if (!tp) return fail(fmt::format("'{}' is not an RFC 3339 date-time", AbbreviateText(s)));
    return std::optional<Clock::time_point>(*tp);
  }
  const std::int64_t scale = NanosPer(t.format);
  std::int64_t ns = 0;
  bool in_range = true;
  if (v->is_int64()) {
    in_range = !__builtin_mul_overflow(v->get_int64(), scale, &ns);
  } else if (v->is_uint64()) {
    in_range = v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX) &&
               !__builtin_mul_overflow(static_cast<std::int64_t>(v->get_uint64()), scale, &ns);
  } else if (v->is_double()) {
    // Whole and fractional units apart: 1717163100.25 s * 1e9 as one double is 256 ns coarse.
    const double d = v->get_double();
    in_range = std::isfinite(d) && std::fabs(d * static_cast<double>(scale)) < 9.2e18;
    if (in_range) {
      const double whole = std::trunc(d);
      ns = static_cast<std::int64_t>(whole) * scale +
           std::llround((d - whole) * static_cast<double>(scale));
    }
  } else {
    return fail(fmt::format("{} is a {}; format {} needs a number", core::Abbreviate(*v),
                            core::KindName(*v), t.format_name));
  }
  if (!in_range) {
    return fail(fmt::format("{} ({}) is out of range (years 1678..2261)", core::Abbreviate(*v),
                            t.format_name));
  }
  return std::optional<Clock::time_point>(FromNanos(ns));
}

// ---- Fields ----------------------------------------------------------------------------------

struct FieldSpec {
  std::string pointer;              // json: as written
  std::vector<std::string> tokens;  // json: unescaped
  std::string key;                  // line-protocol: the field key
  Template element;
  std::string origin_suffix;                 // " field /temp"
  std::optional<UnitConversion> conversion;  // only when not the identity
  std::string unit, target_unit;
  std::optional<double> min, max;
  bool optional = false;
  bool round_to_integer = false;

  bool needs_number() const { return conversion || min || max; }
};

// Converts and range-checks *v for `f`. `describe()` names the value in messages (called only
// on failure: this runs for every field of every message).
template <typename Describe>
Status ConvertValue(const FieldSpec& f, json::value* v, const Describe& describe,
                    const std::string& pointer) {
  if (!f.needs_number()) return {};
  double x = 0;
  if (v->is_int64()) {
    x = static_cast<double>(v->get_int64());
  } else if (v->is_uint64()) {
    x = static_cast<double>(v->get_uint64());
  } else if (v->is_double()) {
    x = v->get_double();
  } else {
    return Status("MAPPING_PAYLOAD",
                  fmt::format("{} is a {}, not a number (the field has a {})", describe(),
                              core::KindName(*v), f.conversion ? "unit" : "range"),
                  pointer);
  }
  const double raw = x;
  std::string from;
  if (f.conversion) {
    x = f.conversion->Apply(x);
    from = fmt::format(" (from {} {})", raw, f.unit);
    if (!std::isfinite(x)) {
      return Status("MAPPING_RANGE",
                    fmt::format("{} {} {} is not a finite number in {}", describe(), raw, f.unit,
                                f.target_unit),
                    pointer);
    }
  }
  if ((f.min && x < *f.min) || (f.max && x > *f.max)) {
    bool below = f.min && x < *f.min;
    return Status("MAPPING_RANGE",
                  fmt::format("{} {}{} is {} the {} {} (range {}..{})", describe(), x, from,
                              below ? "below" : "above", below ? "minimum" : "maximum",
                              below ? *f.min : *f.max,
                              f.min ? fmt::format("{}", *f.min) : std::string("-inf"),
                              f.max ? fmt::format("{}", *f.max) : std::string("inf")),
                  pointer);
  }
  if (f.conversion) {
    if (f.round_to_integer && std::fabs(x) < 9.2e18) {
      *v = static_cast<std::int64_t>(std::llround(x));
    } else {
      *v = x;
    }
  }
  return {};
}

json::value ToJson(const FieldValueView& v) {
  return std::visit(
      [](const auto& x) -> json::value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          return json::value(json::string(x));
        } else {
          return json::value(x);
        }
      },
      v);
}

// The Property and Telemetry paths of `iface`, for messages (at most `limit`).
std::string ElementNames(const model::ResolvedInterface& iface, std::size_t limit = 20) {
  std::vector<std::string> names;
  for (const auto& rc : iface.contents()) {
    const model::Content& c = *rc.content;
    if (c.kind == model::ContentKind::kProperty || c.kind == model::ContentKind::kTelemetry) {
      names.push_back(c.name);
    } else if (c.kind == model::ContentKind::kComponent) {
      if (const auto* comp = iface.ComponentInterface(c.name)) {
        for (const auto& crc : comp->contents()) {
          auto k = crc.content->kind;
          if (k == model::ContentKind::kProperty || k == model::ContentKind::kTelemetry) {
            names.push_back(c.name + "/" + crc.content->name);
          }
        }
      }
    }
  }
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) {
    out += i == 0 ? "" : ", ";
    out += names[i];
  }
  if (names.size() > limit) out += fmt::format(", ... ({} in all)", names.size());
  return out.empty() ? "none" : out;
}

Status Failure(Problems problems) {
  std::string code = problems.front().code();
  for (const Status& p : problems) {
    if (p.code() != code) {
      code = "MAPPING_INVALID";
      break;
    }
  }
  std::string message =
      problems.size() == 1 ? fmt::format("the mapping is not valid: {}", problems.front().message())
                           : fmt::format("the mapping is not valid: {} problems, first: {}",
                                         problems.size(), problems.front().message());
  Status s(code, std::move(message), problems.front().pointer());
  return std::move(s).WithDetails(std::move(problems));
}

constexpr std::string_view kTopMembers[] = {"id",     "description", "topic",    "twin",
                                            "format", "model",       "fields",   "timestamp",
                                            "qos",    "measurement", "precision", "desired",
                                            "commands",
                                            // sync quality and flood protection
                                            "expectedIntervalMs", "maxRatePerTopic",
                                            "burstPerTopic", "maxPayloadBytes"};
constexpr std::string_view kFieldMembers[] = {"pointer",    "field", "element", "unit",
                                              "targetUnit", "min",   "max",     "optional"};

std::string_view FormatName(PayloadFormat f) {
  switch (f) {
    case PayloadFormat::kJson:
      return "json";
    case PayloadFormat::kNumber:
      return "number";
    case PayloadFormat::kLineProtocol:
      return "line-protocol";
  }
  return "json";
}

}  // namespace

// ---- TopicPattern ----------------------------------------------------------------------------

core::Result<TopicPattern> TopicPattern::Compile(std::string_view pattern) {
  Problems problems;
  auto problem = [&](std::string message) {
    problems.emplace_back("MAPPING_TOPIC", std::move(message), "/topic");
  };
  TopicPattern t;
  t.pattern_ = std::string(pattern);
  if (pattern.empty()) problem("the topic pattern is empty");
  if (pattern.size() > 65535) problem("the topic pattern is longer than 65535 bytes (MQTT limit)");
  if (pattern.find('\0') != std::string_view::npos) problem("the topic pattern contains NUL");
  std::size_t start = 0, level_no = 1;
  while (!pattern.empty()) {
    std::size_t end = pattern.find('/', start);
    bool last = end == std::string_view::npos;
    if (last) end = pattern.size();
    std::string_view level = pattern.substr(start, end - start);
    if (!t.filter_.empty() || start > 0) t.filter_ += '/';
    if (level == "#") {
      if (!last) problem(fmt::format("'#' must be the last level (it is level {})", level_no));
      t.parts_.push_back({Level::kHash, {}});
      t.filter_ += '#';
    } else if (level == "+") {
      t.parts_.push_back({Level::kPlus, {}});
      t.filter_ += '+';
    } else if (level.size() >= 2 && level.front() == '{' && level.back() == '}' &&
               level.find_first_of("{}+#", 1) == level.size() - 1) {
      std::string_view name = level.substr(1, level.size() - 2);
      if (!IsCaptureName(name)) {
        problem(fmt::format("level {} '{}': a capture name is [A-Za-z_][A-Za-z0-9_]*", level_no,
                            level));
      } else if (t.CaptureIndex(name)) {
        problem(fmt::format("capture '{}' appears twice", name));
      }
      t.capture_names_.emplace_back(name);
      t.parts_.push_back({Level::kCapture, {}});
      t.filter_ += '+';
    } else if (level.find_first_of("{}+#") != std::string_view::npos) {
      problem(
          fmt::format("level {} '{}' mixes a wildcard or capture with other text; a level is "
                      "text, '+', '#' or '{{name}}'",
                      level_no, level));
      t.parts_.push_back({Level::kLiteral, std::string(level)});
    } else {
      t.parts_.push_back({Level::kLiteral, std::string(level)});
      t.filter_ += level;
    }
    if (last) break;
    start = end + 1;
    ++level_no;
  }
  if (!problems.empty()) {
    Status s = problems.front();
    return std::move(s).WithDetails(std::move(problems));
  }
  return t;
}

std::optional<std::size_t> TopicPattern::CaptureIndex(std::string_view name) const {
  for (std::size_t i = 0; i < capture_names_.size(); ++i) {
    if (capture_names_[i] == name) return i;
  }
  return std::nullopt;
}

bool TopicPattern::Match(std::string_view topic, std::vector<std::string_view>* captures) const {
  // Not a topic name: empty, or with wildcard characters (MQTT 3.1.1 §4.7.3, §4.7.1).
  if (topic.empty() || topic.find_first_of("+#") != std::string_view::npos) return false;
  // §4.7.2: a filter starting with a wildcard does not match topics starting with '$'.
  if (topic[0] == '$' && !parts_.empty() && parts_[0].kind != Level::kLiteral) return false;
  if (captures != nullptr) captures->clear();
  std::size_t pos = 0;  // start of the next level; topic.size() + 1 once every level is used
  for (const Part& p : parts_) {
    if (p.kind == Level::kHash) return true;  // the rest, including nothing (`a/#` matches `a`)
    if (pos > topic.size()) return false;     // the topic has fewer levels
    std::size_t end = topic.find('/', pos);
    if (end == std::string_view::npos) end = topic.size();
    std::string_view level = topic.substr(pos, end - pos);
    if (p.kind == Level::kLiteral) {
      if (level != p.text) return false;
    } else if (p.kind == Level::kCapture && captures != nullptr) {
      captures->push_back(level);
    }
    pos = end + 1;
  }
  return pos == topic.size() + 1;
}

// ---- Mapping ---------------------------------------------------------------------------------

struct Mapping::Compiled {
  json::value document;
  std::string id, model, measurement;
  TopicPattern topic;
  Template twin;
  PayloadFormat format = PayloadFormat::kJson;
  int qos = 1;
  Precision precision = Precision::kNanoseconds;
  bool all_fields = false;       // line-protocol without `fields`
  bool needs_container = false;  // json: some pointer is not ""
  std::vector<FieldSpec> fields;
  std::optional<TimestampSpec> timestamp;
  std::shared_ptr<const OutboundRoutes> outbound;  // desired, commands (device_route.h)
  // Sync quality and flood protection (mqtt_ingest.h); unset: the server's defaults.
  std::optional<std::chrono::milliseconds> expected_interval;
  std::optional<double> max_rate_per_topic, burst_per_topic;
  std::optional<std::size_t> max_payload_bytes;
};

core::Result<Mapping> Mapping::Parse(std::string_view json_text,
                                     const model::ModelRepository* models) {
  auto doc = core::ParseJson(json_text);
  if (!doc.ok()) {
    Problems p;
    p.emplace_back("MAPPING_INVALID", "the mapping is not JSON: " + doc.status().message(), "");
    return Failure(std::move(p));
  }
  return Parse(*doc, models);
}

core::Result<Mapping> Mapping::Parse(const json::value& document,
                                     const model::ModelRepository* models) {
  Problems problems;
  auto invalid = [&](std::string pointer, std::string message) {
    problems.emplace_back("MAPPING_INVALID", std::move(message), std::move(pointer));
  };
  if (!document.is_object()) {
    invalid("", fmt::format("a mapping is a JSON object, not a {}", core::KindName(document)));
    return Failure(std::move(problems));
  }
  const json::object& o = document.get_object();
  auto c = std::make_shared<Compiled>();
  c->document = document;

  for (const auto& kv : o) {
    if (std::find(std::begin(kTopMembers), std::end(kTopMembers), kv.key()) ==
        std::end(kTopMembers)) {
      invalid(core::PointerAppend("", kv.key()),
              fmt::format("unknown member '{}'; a mapping has id, description, topic, twin, "
                          "format, model, fields, timestamp, qos, measurement, precision, "
                          "desired, commands, expectedIntervalMs, maxRatePerTopic, "
                          "burstPerTopic, maxPayloadBytes",
                          std::string_view(kv.key())));
    }
  }
  // A string member of `obj` at `base`; nullopt if absent (an error when `required`) or not a
  // string (an error).
  auto string_member = [&](const json::object& obj, const std::string& base, std::string_view key,
                           bool required) -> std::optional<std::string_view> {
    const json::value* v = obj.if_contains(key);
    std::string ptr = core::PointerAppend(base, key);
    if (v == nullptr) {
      if (required) invalid(ptr, fmt::format("'{}' is missing", key));
      return std::nullopt;
    }
    if (!v->is_string()) {
      invalid(ptr, fmt::format("'{}' must be a string, not a {}", key, core::KindName(*v)));
      return std::nullopt;
    }
    return std::string_view(v->get_string());
  };
  auto bool_member = [&](const json::object& obj, const std::string& base,
                         std::string_view key) -> bool {
    const json::value* v = obj.if_contains(key);
    if (v == nullptr) return false;
    if (!v->is_bool()) {
      invalid(core::PointerAppend(base, key),
              fmt::format("'{}' must be true or false, not a {}", key, core::KindName(*v)));
      return false;
    }
    return v->get_bool();
  };

  // id
  if (auto id = string_member(o, "", "id", true)) {
    if (!IsMappingId(*id)) {
      invalid("/id", fmt::format("'{}' is not a mapping id: 1 to 64 of A-Z a-z 0-9 _ . -",
                                 AbbreviateText(*id)));
    }
    c->id = std::string(*id);
  }
  string_member(o, "", "description", false);

  // format
  if (auto f = string_member(o, "", "format", false)) {
    if (*f == "json") {
      c->format = PayloadFormat::kJson;
    } else if (*f == "number") {
      c->format = PayloadFormat::kNumber;
    } else if (*f == "line-protocol") {
      c->format = PayloadFormat::kLineProtocol;
    } else {
      invalid("/format",
              fmt::format("format '{}' is not json, number or line-protocol", AbbreviateText(*f)));
    }
  }
  const bool lp = c->format == PayloadFormat::kLineProtocol;
  const std::string_view format_name = FormatName(c->format);

  // topic
  bool topic_ok = false;
  if (auto topic = string_member(o, "", "topic", true)) {
    auto t = TopicPattern::Compile(*topic);
    if (t.ok()) {
      c->topic = std::move(*t);
      topic_ok = true;
    } else {
      for (const Status& s : t.status().details()) problems.push_back(s);
    }
  }
  const TopicPattern* topic = topic_ok ? &c->topic : nullptr;

  // twin
  if (auto twin = string_member(o, "", "twin", true)) {
    if (twin->empty()) {
      invalid("/twin", "'twin' is empty");
    } else {
      c->twin = Template::Parse(*twin, topic, lp, "/twin", &problems);
    }
  }

  // desired, commands (device_route.h)
  c->outbound = ParseOutboundRoutes(o, topic, &problems);

  // expectedIntervalMs, maxRatePerTopic, burstPerTopic, maxPayloadBytes: positive numbers
  // (sync_quality.h, mqtt_ingest.h).
  for (std::string_view key :
       {"expectedIntervalMs", "maxRatePerTopic", "burstPerTopic", "maxPayloadBytes"}) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) continue;
    const bool integral = key == "expectedIntervalMs" || key == "maxPayloadBytes";
    const double x = v->is_number() ? v->to_number<double>() : 0;
    if (!v->is_number() || !std::isfinite(x) || x <= 0 || (integral && x != std::floor(x)) ||
        x > 1e15) {
      invalid(core::PointerAppend("", key),
              fmt::format("'{}' must be a positive {}, not {}", key,
                          integral ? "integer" : "number", core::Abbreviate(*v)));
      continue;
    }
    if (key == "expectedIntervalMs") {
      c->expected_interval = std::chrono::milliseconds(static_cast<std::int64_t>(x));
    } else if (key == "maxRatePerTopic") {
      c->max_rate_per_topic = x;
    } else if (key == "burstPerTopic") {
      c->burst_per_topic = x;
    } else {
      c->max_payload_bytes = static_cast<std::size_t>(x);
    }
  }

  // qos
  if (const json::value* q = o.if_contains("qos")) {
    if ((q->is_int64() && (q->get_int64() == 0 || q->get_int64() == 1)) ||
        (q->is_uint64() && q->get_uint64() <= 1)) {
      c->qos = static_cast<int>(q->to_number<std::int64_t>());
    } else {
      invalid("/qos", fmt::format("'qos' must be 0 or 1, not {}", core::Abbreviate(*q)));
    }
  }

  // measurement, precision (line-protocol only)
  for (std::string_view key : {"measurement", "precision"}) {
    if (o.contains(key) && !lp) {
      invalid(core::PointerAppend("", key),
              fmt::format("'{}' is only for format line-protocol (this mapping is {})", key,
                          format_name));
    }
  }
  if (lp) {
    if (auto m = string_member(o, "", "measurement", false)) {
      if (m->empty()) invalid("/measurement", "'measurement' is empty");
      c->measurement = std::string(*m);
    }
    if (auto p = string_member(o, "", "precision", false)) {
      auto precision = ParsePrecision(*p);
      if (precision.ok()) {
        c->precision = *precision;
      } else {
        invalid("/precision",
                fmt::format("precision '{}' is not one of n ns u us ms s m h", AbbreviateText(*p)));
      }
    }
  }

  // timestamp (json only)
  if (const json::value* ts = o.if_contains("timestamp")) {
    if (c->format != PayloadFormat::kJson) {
      invalid("/timestamp",
              fmt::format("'timestamp' is only for format json (this mapping is {}{})", format_name,
                          lp ? "; line-protocol takes the line's timestamp, see 'precision'" : ""));
    } else if (!ts->is_object()) {
      invalid("/timestamp",
              fmt::format("'timestamp' must be an object, not a {}", core::KindName(*ts)));
    } else {
      const json::object& to = ts->get_object();
      TimestampSpec spec;
      for (const auto& kv : to) {
        std::string_view k = kv.key();
        if (k != "pointer" && k != "format" && k != "optional") {
          invalid(core::PointerAppend("/timestamp", k),
                  fmt::format("unknown member '{}'; a timestamp has pointer, format, optional", k));
        }
      }
      if (auto p = string_member(to, "/timestamp", "pointer", true)) {
        std::string why;
        if (!ParsePointer(*p, &spec.tokens, &why)) invalid("/timestamp/pointer", why);
        spec.pointer = std::string(*p);
        c->needs_container = c->needs_container || !spec.tokens.empty();
      }
      if (auto f = string_member(to, "/timestamp", "format", false)) {
        if (auto tf = TimeFormatOf(*f)) {
          spec.format = *tf;
          spec.format_name = std::string(*f);
        } else {
          invalid("/timestamp/format",
                  fmt::format("timestamp format '{}' is not rfc3339, unix-s, unix-ms, unix-us or "
                              "unix-ns",
                              AbbreviateText(*f)));
        }
      }
      spec.optional = bool_member(to, "/timestamp", "optional");
      c->timestamp = std::move(spec);
    }
  }

  // model
  model::ResolvedPtr resolved;
  if (auto m = string_member(o, "", "model", false)) {
    c->model = std::string(*m);
    if (models == nullptr) {
      problems.emplace_back("MAPPING_ELEMENT",
                            "no model repository to check the mapping's model against", "/model");
    } else {
      auto r = models->Resolve(*m);
      if (r.ok()) {
        resolved = *r;
      } else {
        problems.emplace_back("MAPPING_ELEMENT",
                              fmt::format("model '{}' is not known: {}", AbbreviateText(*m, 200),
                                          r.status().message()),
                              "/model");
      }
    }
  }
  const bool model_given = !c->model.empty() || o.contains("model");

  // fields
  const json::value* fields = o.if_contains("fields");
  if (fields == nullptr) {
    if (lp) {
      c->all_fields = true;
    } else {
      invalid("/fields", "'fields' is missing");
    }
  } else if (!fields->is_array()) {
    invalid("/fields", fmt::format("'fields' must be an array, not a {}", core::KindName(*fields)));
  } else if (fields->get_array().empty()) {
    invalid("/fields", lp ? "'fields' is empty (leave it out to map every field key to the "
                            "element of the same name)"
                          : "'fields' is empty");
  } else if (c->format == PayloadFormat::kNumber && fields->get_array().size() != 1) {
    invalid("/fields", fmt::format("format number maps exactly one field, not {}",
                                   fields->get_array().size()));
  } else {
    std::vector<std::pair<std::string, std::size_t>> literal_elements;
    const json::array& arr = fields->get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string base = core::PointerAppend("/fields", i);
      if (!arr[i].is_object()) {
        invalid(base, fmt::format("a field is an object, not a {}", core::KindName(arr[i])));
        continue;
      }
      const json::object& fo = arr[i].get_object();
      FieldSpec f;
      for (const auto& kv : fo) {
        std::string_view k = kv.key();
        bool known = std::find(std::begin(kFieldMembers), std::end(kFieldMembers), k) !=
                     std::end(kFieldMembers);
        bool allowed = known && !(k == "pointer" && c->format != PayloadFormat::kJson) &&
                       !(k == "field" && !lp) &&
                       !(k == "optional" && c->format == PayloadFormat::kNumber);
        if (!known) {
          invalid(core::PointerAppend(base, k),
                  fmt::format("unknown member '{}'; a field has {}element, unit, targetUnit, "
                              "min, max{}",
                              k,
                              c->format == PayloadFormat::kJson ? "pointer, "
                              : lp                              ? "field, "
                                                                : "",
                              c->format == PayloadFormat::kNumber ? "" : ", optional"));
        } else if (!allowed) {
          invalid(core::PointerAppend(base, k),
                  fmt::format("'{}' is not used with format {}", k, format_name));
        }
      }
      // Where the value comes from.
      if (c->format == PayloadFormat::kJson) {
        if (auto p = string_member(fo, base, "pointer", true)) {
          std::string why;
          if (!ParsePointer(*p, &f.tokens, &why)) invalid(base + "/pointer", why);
          f.pointer = std::string(*p);
          c->needs_container = c->needs_container || !f.tokens.empty();
          f.origin_suffix = " field " + f.pointer;
        }
      } else if (lp) {
        if (auto k = string_member(fo, base, "field", true)) {
          if (k->empty()) invalid(base + "/field", "'field' is empty");
          f.key = std::string(*k);
          f.origin_suffix = " field " + f.key;
        }
      }
      // The element.
      if (auto e = string_member(fo, base, "element", !lp)) {
        if (e->empty()) {
          invalid(base + "/element", "'element' is empty");
        } else {
          f.element = Template::Parse(*e, topic, lp, base + "/element", &problems);
        }
      } else if (lp && !fo.contains("element")) {
        f.element = Template::Literal(f.key);
      }
      if (c->format != PayloadFormat::kNumber) f.optional = bool_member(fo, base, "optional");
      // Range.
      for (std::string_view key : {"min", "max"}) {
        const json::value* v = fo.if_contains(key);
        if (v == nullptr) continue;
        std::string ptr = core::PointerAppend(base, key);
        if (!v->is_number() || !std::isfinite(v->to_number<double>())) {
          invalid(ptr,
                  fmt::format("'{}' must be a finite number, not {}", key, core::Abbreviate(*v)));
          continue;
        }
        (key == "min" ? f.min : f.max) = v->to_number<double>();
      }
      if (f.min && f.max && *f.min > *f.max) {
        invalid(base + "/max", fmt::format("'max' {} is less than 'min' {}", *f.max, *f.min));
      }
      auto unit = string_member(fo, base, "unit", false);
      auto target = string_member(fo, base, "targetUnit", false);
      const bool element_literal = f.element.is_literal() && !f.element.text().empty();

      // Duplicates: the same literal element twice would write one element twice per message.
      if (element_literal) {
        auto dup = std::find_if(literal_elements.begin(), literal_elements.end(),
                                [&](const auto& p) { return p.first == f.element.text(); });
        if (dup != literal_elements.end()) {
          invalid(base + "/element", fmt::format("element '{}' is already mapped by /fields/{}",
                                                 f.element.text(), dup->second));
        } else {
          literal_elements.emplace_back(f.element.text(), i);
        }
      }

      // The model: element, schema, unit.
      bool model_checked = false;  // the element was found in the model
      bool element_failed = false;
      std::string model_unit;
      if (resolved && element_literal) {
        const model::Content* content = FindElement(*resolved, f.element.text());
        if (content == nullptr) {
          element_failed = true;
          problems.emplace_back(
              "MAPPING_ELEMENT",
              fmt::format("model '{}' has no Property or Telemetry '{}' (it has: {})", c->model,
                          f.element.text(), ElementNames(*resolved)),
              base + "/element");
        } else {
          model_checked = true;
          const model::Schema* schema = content->schema.schema;
          bool numeric = schema != nullptr && model::IsNumeric(schema->kind);
          if (!numeric) {
            for (std::string_view key : {"unit", "targetUnit", "min", "max"}) {
              if (!fo.contains(key)) continue;
              element_failed = true;
              problems.emplace_back(
                  "MAPPING_ELEMENT",
                  fmt::format("'{}' of model '{}' has schema {}; '{}' needs a numeric schema "
                              "(double, float, integer, long)",
                              f.element.text(), c->model,
                              schema != nullptr ? model::SchemaKindName(schema->kind) : "(none)",
                              key),
                  core::PointerAppend(base, key));
              break;
            }
          } else {
            f.round_to_integer = schema->kind == model::SchemaKind::kInteger ||
                                 schema->kind == model::SchemaKind::kLong;
          }
          if (content->semantic) model_unit = content->semantic->unit;
        }
      }
      // Units.
      if (target && !unit) {
        problems.emplace_back("MAPPING_UNIT",
                              "'targetUnit' without 'unit': say which unit the device sends",
                              base + "/targetUnit");
      }
      if (unit) {
        bool units_known = true;
        if (!FindUnit(*unit)) {
          problems.push_back(UnknownUnit(*unit, base + "/unit"));
          units_known = false;
        }
        if (target && !FindUnit(*target)) {
          problems.push_back(UnknownUnit(*target, base + "/targetUnit"));
          units_known = false;
        }
        std::string to;
        if (model_checked && !model_unit.empty()) {
          if (target && *target != model_unit) {
            problems.emplace_back(
                "MAPPING_UNIT",
                fmt::format("model '{}' gives '{}' the unit {}; 'targetUnit' {} contradicts it "
                            "(leave 'targetUnit' out)",
                            c->model, f.element.text(), model_unit, *target),
                base + "/targetUnit");
            units_known = false;
          }
          to = model_unit;
        } else if (target) {
          to = std::string(*target);
        } else if (model_checked) {
          problems.emplace_back(
              "MAPPING_UNIT",
              fmt::format("'{}' has no unit in model '{}': give 'targetUnit' to convert {} into",
                          f.element.text(), c->model, *unit),
              base + "/unit");
          units_known = false;
        } else if (!element_failed && !(model_given && element_literal)) {
          problems.emplace_back(
              "MAPPING_UNIT",
              fmt::format("no unit to convert {} into: give 'targetUnit'{}", *unit,
                          model_given ? " (the element is a template, so the model cannot say)"
                                      : " or a 'model' with the element's unit"),
              base + "/unit");
          units_known = false;
        } else {
          units_known = false;  // the model problem is reported already
        }
        if (units_known && !element_failed) {
          auto conv = ConversionBetween(*unit, to);
          if (!conv.ok()) {
            problems.emplace_back(conv.status().code(), conv.status().message(), base + "/unit");
          } else if (!conv->identity()) {
            f.conversion = *conv;
          }
          f.unit = std::string(*unit);
          f.target_unit = std::move(to);
        }
      }
      c->fields.push_back(std::move(f));
    }
  }

  if (!problems.empty()) return Failure(std::move(problems));
  return Mapping(std::move(c));
}

const std::string& Mapping::id() const { return c_->id; }
const TopicPattern& Mapping::topic() const { return c_->topic; }
PayloadFormat Mapping::format() const { return c_->format; }
int Mapping::qos() const { return c_->qos; }
const std::string& Mapping::model() const { return c_->model; }
const json::value& Mapping::document() const { return c_->document; }
const OutboundRoutes* Mapping::outbound() const { return c_->outbound.get(); }
std::optional<std::chrono::milliseconds> Mapping::expected_interval() const {
  return c_->expected_interval;
}
std::optional<double> Mapping::max_rate_per_topic() const { return c_->max_rate_per_topic; }
std::optional<double> Mapping::burst_per_topic() const { return c_->burst_per_topic; }
std::optional<std::size_t> Mapping::max_payload_bytes() const { return c_->max_payload_bytes; }
std::optional<std::string> Mapping::TwinOfTopic(std::string_view topic) const {
  std::vector<std::string_view> captures;
  if (!c_->topic.Match(topic, &captures)) return std::nullopt;
  std::string twin;
  std::string_view missing_tag;
  if (!c_->twin.Expand(captures, {}, &twin, &missing_tag) || twin.empty()) return std::nullopt;
  return twin;
}
bool Mapping::Matches(std::string_view topic) const { return c_->topic.Match(topic); }

core::Result<MappedMessage> Mapping::Apply(std::string_view topic, std::string_view payload,
                                           Clock::time_point arrival,
                                           std::string_view source) const {
  const Compiled& c = *c_;
  std::vector<std::string_view> captures;
  if (!c.topic.Match(topic, &captures)) {
    return Status("MAPPING_NO_MATCH",
                  fmt::format("topic '{}' does not match '{}' of mapping '{}'",
                              AbbreviateText(topic, 200), c.topic.pattern(), c.id));
  }
  MappedMessage out;
  const std::string origin = fmt::format("{} {}", source, topic);
  std::string_view missing_tag;
  // A rejection of the whole message (or of one line).
  auto reject_message = [&](std::string code, std::string message, std::string twin = {}) {
    out.rejected.push_back({std::nullopt,
                            std::move(twin),
                            {},
                            origin,
                            AbbreviateText(payload),
                            Status(std::move(code), std::move(message))});
  };

  if (c.format == PayloadFormat::kLineProtocol) {
    std::string twin, element;
    ParseLinesInto(
        payload, c.precision,
        [&](const LinePointView& p) {
          if (!c.measurement.empty() && p.measurement != c.measurement) {
            ++out.skipped_lines;
            return;
          }
          const std::string line_origin = fmt::format("{} line {}", origin, p.line);
          if (!c.twin.Expand(captures, p.tags, &twin, &missing_tag)) {
            out.rejected.push_back(
                {std::nullopt,
                 {},
                 {},
                 line_origin,
                 {},
                 Status("MAPPING_PAYLOAD", fmt::format("line {} has no tag '{}' (the twin "
                                                       "template '{}' needs it)",
                                                       p.line, missing_tag, c.twin.text()))});
            return;
          }
          const Clock::time_point t = p.timestamp_ns ? FromNanos(*p.timestamp_ns) : arrival;
          if (c.all_fields) {
            for (const LineFieldView& fv : p.fields) {
              out.readings.push_back({twin, std::string(fv.key), ToJson(fv.value), t,
                                      fmt::format("{} field {}", line_origin, fv.key)});
            }
            return;
          }
          for (std::size_t i = 0; i < c.fields.size(); ++i) {
            const FieldSpec& f = c.fields[i];
            auto it = std::find_if(p.fields.begin(), p.fields.end(),
                                   [&](const LineFieldView& fv) { return fv.key == f.key; });
            if (it == p.fields.end()) {
              if (f.optional) {
                ++out.skipped_fields;
              } else {
                out.rejected.push_back(
                    {i,
                     twin,
                     f.element.is_literal() ? f.element.text() : std::string(),
                     line_origin + f.origin_suffix,
                     {},
                     Status("MAPPING_PAYLOAD",
                            fmt::format("line {} has no field '{}'", p.line, f.key))});
              }
              continue;
            }
            if (!f.element.Expand(captures, p.tags, &element, &missing_tag)) {
              out.rejected.push_back(
                  {i,
                   twin,
                   {},
                   line_origin + f.origin_suffix,
                   {},
                   Status("MAPPING_PAYLOAD",
                          fmt::format("line {} has no tag '{}' (the element template '{}' "
                                      "needs it)",
                                      p.line, missing_tag, f.element.text()))});
              continue;
            }
            json::value v = ToJson(it->value);
            Status s = ConvertValue(
                f, &v, [&] { return fmt::format("field '{}' of line {}", f.key, p.line); }, "");
            if (!s.ok()) {
              out.rejected.push_back({i, twin, element, line_origin + f.origin_suffix,
                                      core::Abbreviate(ToJson(it->value)), std::move(s)});
              continue;
            }
            out.readings.push_back({twin, element, std::move(v), t, line_origin + f.origin_suffix});
          }
        },
        [&](const LineError& e) {
          out.rejected.push_back({std::nullopt,
                                  {},
                                  {},
                                  fmt::format("{} line {}", origin, e.line),
                                  {},
                                  Status("MAPPING_PAYLOAD", e.ToString())});
        });
    return out;
  }

  std::string twin;
  c.twin.Expand(captures, {}, &twin, &missing_tag);  // no tags outside line-protocol

  if (c.format == PayloadFormat::kNumber) {
    const FieldSpec& f = c.fields.front();
    std::string element;
    f.element.Expand(captures, {}, &element, &missing_tag);
    std::string why;
    auto v = ParseNumberText(payload, &why);
    if (!v) {
      reject_message("MAPPING_PAYLOAD", "payload: " + why, twin);
      out.rejected.back().element = element;
      return out;
    }
    json::value value = std::move(*v);
    Status s = ConvertValue(
        f, &value, [] { return std::string("payload"); }, "");
    if (!s.ok()) {
      out.rejected.push_back({0, twin, element, origin, AbbreviateText(payload), std::move(s)});
      return out;
    }
    out.readings.push_back(
        {std::move(twin), std::move(element), std::move(value), arrival, origin});
    return out;
  }

  // json
  auto doc = core::ParseJson(payload);
  if (!doc.ok()) {
    reject_message("MAPPING_PAYLOAD", "payload is not JSON: " + doc.status().message(), twin);
    return out;
  }
  if (c.needs_container && !doc->is_object() && !doc->is_array()) {
    reject_message("MAPPING_PAYLOAD",
                   fmt::format("payload is a {}, not an object or array", core::KindName(*doc)),
                   twin);
    return out;
  }
  Clock::time_point t = arrival;
  if (c.timestamp) {
    auto ts = ReadTimestamp(*c.timestamp, *doc);
    if (!ts.ok()) {
      const json::value* tv = Resolve(*doc, c.timestamp->tokens);
      out.rejected.push_back({std::nullopt,
                              twin,
                              {},
                              origin,
                              tv != nullptr ? core::Abbreviate(*tv) : std::string(),
                              ts.status()});
      return out;
    }
    if (*ts) t = **ts;
  }
  std::string element;
  for (std::size_t i = 0; i < c.fields.size(); ++i) {
    const FieldSpec& f = c.fields[i];
    f.element.Expand(captures, {}, &element, &missing_tag);
    const json::value* v = Resolve(*doc, f.tokens);
    if (v == nullptr || v->is_null()) {
      if (f.optional) {
        ++out.skipped_fields;
      } else {
        out.rejected.push_back({i, twin, element, origin + f.origin_suffix,
                                v != nullptr ? "null" : "",
                                Status("MAPPING_PAYLOAD",
                                       fmt::format("payload has {} at '{}'",
                                                   v == nullptr ? "no value" : "null", f.pointer),
                                       f.pointer)});
      }
      continue;
    }
    if (v->is_double() && !std::isfinite(v->get_double())) {
      out.rejected.push_back(
          {i, twin, element, origin + f.origin_suffix, core::Abbreviate(*v),
           Status("MAPPING_PAYLOAD",
                  fmt::format("value at '{}' is out of the range of a double", f.pointer),
                  f.pointer)});
      continue;
    }
    json::value value = *v;
    Status s = ConvertValue(
        f, &value, [&] { return fmt::format("value at '{}'", f.pointer); }, f.pointer);
    if (!s.ok()) {
      out.rejected.push_back(
          {i, twin, element, origin + f.origin_suffix, core::Abbreviate(*v), std::move(s)});
      continue;
    }
    out.readings.push_back({twin, element, std::move(value), t, origin + f.origin_suffix});
  }
  return out;
}

// ---- MappingSet ------------------------------------------------------------------------------

std::shared_ptr<const MappingSet::Snapshot> MappingSet::Current() const {
  std::shared_lock lock(mu_);
  return snapshot_;
}

MappingPtr MappingSet::Put(Mapping mapping) {
  auto m = std::make_shared<const Mapping>(std::move(mapping));
  std::unique_lock lock(mu_);
  auto next = std::make_shared<Snapshot>(*snapshot_);
  auto it =
      std::lower_bound(next->begin(), next->end(), m->id(),
                       [](const MappingPtr& a, const std::string& id) { return a->id() < id; });
  MappingPtr old;
  if (it != next->end() && (*it)->id() == m->id()) {
    old = std::move(*it);
    *it = std::move(m);
  } else {
    next->insert(it, std::move(m));
  }
  snapshot_ = std::move(next);
  return old;
}

MappingPtr MappingSet::Remove(std::string_view id) {
  std::unique_lock lock(mu_);
  auto it = std::lower_bound(snapshot_->begin(), snapshot_->end(), id,
                             [](const MappingPtr& a, std::string_view k) { return a->id() < k; });
  if (it == snapshot_->end() || (*it)->id() != id) return nullptr;
  MappingPtr old = *it;
  auto next = std::make_shared<Snapshot>();
  next->reserve(snapshot_->size() - 1);
  for (const auto& m : *snapshot_) {
    if (m != old) next->push_back(m);
  }
  snapshot_ = std::move(next);
  return old;
}

MappingPtr MappingSet::Get(std::string_view id) const {
  auto snap = Current();
  auto it = std::lower_bound(snap->begin(), snap->end(), id,
                             [](const MappingPtr& a, std::string_view k) { return a->id() < k; });
  if (it == snap->end() || (*it)->id() != id) return nullptr;
  return *it;
}

std::vector<MappingPtr> MappingSet::List() const { return *Current(); }

std::vector<MappingPtr> MappingSet::Match(std::string_view topic) const {
  auto snap = Current();
  std::vector<MappingPtr> out;
  for (const auto& m : *snap) {
    if (m->Matches(topic)) out.push_back(m);
  }
  return out;
}

std::vector<std::pair<std::string, int>> MappingSet::Subscriptions() const {
  auto snap = Current();
  std::vector<std::pair<std::string, int>> out;
  for (const auto& m : *snap) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& s) { return s.first == m->subscription_filter(); });
    if (it == out.end()) {
      out.emplace_back(m->subscription_filter(), m->qos());
    } else {
      it->second = std::max(it->second, m->qos());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t MappingSet::size() const { return Current()->size(); }

}  // namespace doppel::sync
