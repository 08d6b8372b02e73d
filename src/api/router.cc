#include "api/router.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace doppel::api {

Reply Reply::Json(unsigned status, const boost::json::value& v) {
  Reply r;
  r.status = status;
  r.body = boost::json::serialize(v);
  return r;
}

Reply Reply::Empty(unsigned status) {
  Reply r;
  r.status = status;
  r.content_type.clear();
  return r;
}

const std::string* Request::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? nullptr : &it->second;
}

const std::string* Request::Query(std::string_view name) const {
  auto it = query.find(std::string(name));
  return it == query.end() ? nullptr : &it->second;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == ';') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::optional<std::vector<std::string>> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (!seg.empty() || end != path.size()) out.push_back(PercentDecode(seg, false));
    start = end + 1;
  }
  return out;
}

void Router::Add(Route r) {
  segments_.push_back(SplitPath(r.path).value_or(std::vector<std::string>{}));
  routes_.push_back(std::move(r));
}

core::Result<const Route*> Router::Match(std::string_view method, std::string_view path,
                                         std::vector<std::string>* params,
                                         std::string* allow) const {
  auto segs = SplitPath(path);
  if (!segs) return core::Status("ROUTE_NOT_FOUND", fmt::format("no route for '{}'", path));
  std::vector<std::string> methods;
  const Route* found = nullptr;
  for (std::size_t ri = 0; ri < routes_.size(); ++ri) {
    const Route& r = routes_[ri];
    const std::vector<std::string>* tsegs = &segments_[ri];
    if (tsegs->size() != segs->size()) continue;
    std::vector<std::string> p;
    bool ok = true;
    for (std::size_t i = 0; i < segs->size() && ok; ++i) {
      const std::string& t = (*tsegs)[i];
      if (t.size() > 2 && t.front() == '{' && t.back() == '}') {
        if ((*segs)[i].empty()) ok = false;
        p.push_back((*segs)[i]);
      } else {
        ok = t == (*segs)[i];
      }
    }
    if (!ok) continue;
    methods.push_back(r.method);
    if (r.method == method && found == nullptr) {
      found = &r;
      *params = std::move(p);
    }
  }
  if (found != nullptr) return found;
  if (methods.empty()) {
    return core::Status("ROUTE_NOT_FOUND", fmt::format("no route for '{}'", path));
  }
  for (const auto& m : methods) *allow += (allow->empty() ? "" : ", ") + m;
  return core::Status("METHOD_NOT_ALLOWED",
                      fmt::format("{} is not allowed on '{}'; allowed: {}", method, path, *allow));
}

}  // namespace doppel::api
