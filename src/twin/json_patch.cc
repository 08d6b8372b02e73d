#include "twin/json_patch.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "core/json.h"

namespace doppel::twin {

namespace json = boost::json;
using core::Result;
using core::Status;

namespace {

enum class OpKind { kAdd, kRemove, kReplace, kMove, kCopy, kTest };

// One operation after the well-formedness pass; pointers into the patch, which outlives it.
struct Operation {
  OpKind kind = OpKind::kAdd;
  std::string_view op;
  std::string_view path_text;
  std::string_view from_text;  // move/copy only
  std::vector<std::string> path;
  std::vector<std::string> from;       // move/copy only
  const json::value* value = nullptr;  // add/replace/test only
};

constexpr std::size_t kMaxShownPointer = 120;

// Paths appear in every message; a hostile multi-megabyte path must not make a multi-megabyte
// log line, and "" would otherwise read as nothing at all.
std::string ShowPointer(std::string_view p) {
  if (p.empty()) return "\"\"";
  if (p.size() <= kMaxShownPointer) return std::string(p);
  return std::string(p.substr(0, kMaxShownPointer)) + "...";
}

// Tokens are unescaped; messages and Status pointers use the escaped RFC 6901 form.
std::string JoinPointer(const std::vector<std::string>& tokens, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out = core::PointerAppend(out, tokens[i]);
  return out;
}

std::string Where(const std::vector<std::string>& tokens, std::size_t n) {
  if (n == 0) return "the document";
  return ShowPointer(JoinPointer(tokens, n));
}

std::string ShowToken(std::string_view t) {
  if (t.size() <= kMaxShownPointer) return std::string(t);
  return std::string(t.substr(0, kMaxShownPointer)) + "...";
}

// RFC 6901 §4: an array index is "0" or digits without a leading zero. Anything else ("01",
// "1e0", "-1", " 1") is not an index at all, rather than an index to be coerced.
std::optional<std::size_t> ParseArrayIndex(std::string_view t) {
  if (t.empty() || (t.size() > 1 && t[0] == '0')) return std::nullopt;
  std::size_t n = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    // Saturate: any index this large is out of range for every array anyway.
    if (n > (std::numeric_limits<std::size_t>::max() - 9) / 10) {
      n = std::numeric_limits<std::size_t>::max();
    } else {
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
  }
  return n;
}

Status NotFound(std::string detail) { return Status("PATCH_PATH_NOT_FOUND", std::move(detail)); }

// Index of the existing array element `token` names, for everything but add's last token.
Result<std::size_t> ExistingIndex(const json::array& arr, const std::string& token,
                                  const std::vector<std::string>& tokens, std::size_t depth) {
  if (token == "-") {
    return NotFound(
        fmt::format("'-' names the nonexistent element after the end of {}", Where(tokens, depth)));
  }
  auto idx = ParseArrayIndex(token);
  if (!idx) {
    return NotFound(fmt::format("'{}' is not an array index ({} is an array)", ShowToken(token),
                                Where(tokens, depth)));
  }
  if (*idx >= arr.size()) {
    return NotFound(fmt::format("index {} is out of range: {} has {} element{}", ShowToken(token),
                                Where(tokens, depth), arr.size(), arr.size() == 1 ? "" : "s"));
  }
  return *idx;
}

// The value the first `n` tokens refer to. Errors are PATCH_PATH_NOT_FOUND with a bare detail.
Result<json::value*> Walk(json::value& root, const std::vector<std::string>& tokens,
                          std::size_t n) {
  json::value* cur = &root;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& t = tokens[i];
    if (json::object* obj = cur->if_object()) {
      auto it = obj->find(t);
      if (it == obj->end()) {
        return NotFound(fmt::format("no member '{}' in {}", ShowToken(t), Where(tokens, i)));
      }
      cur = &it->value();
    } else if (json::array* arr = cur->if_array()) {
      auto idx = ExistingIndex(*arr, t, tokens, i);
      if (!idx.ok()) return idx.status();
      cur = &(*arr)[*idx];
    } else {
      return NotFound(fmt::format("{} is a {}, so it has no member '{}'", Where(tokens, i),
                                  core::KindName(*cur), ShowToken(t)));
    }
  }
  return cur;
}

Result<json::value*> Get(json::value& root, const std::vector<std::string>& tokens) {
  return Walk(root, tokens, tokens.size());
}

// RFC 6902 §4.1.
Status Add(json::value& root, const std::vector<std::string>& tokens, json::value v) {
  if (tokens.empty()) {
    root = std::move(v);
    return Status::Ok();
  }
  std::size_t last = tokens.size() - 1;
  auto parent = Walk(root, tokens, last);
  if (!parent.ok()) return parent.status();
  const std::string& t = tokens[last];
  if (json::object* obj = (*parent)->if_object()) {
    (*obj)[t] = std::move(v);  // replaces an existing member, as §4.1 requires
    return Status::Ok();
  }
  if (json::array* arr = (*parent)->if_array()) {
    if (t == "-") {
      arr->push_back(std::move(v));
      return Status::Ok();
    }
    auto idx = ParseArrayIndex(t);
    if (!idx) {
      return NotFound(fmt::format("'{}' is not an array index ({} is an array)", ShowToken(t),
                                  Where(tokens, last)));
    }
    if (*idx > arr->size()) {
      std::size_t n = arr->size();
      return NotFound(fmt::format("index {} is out of range: {} has {} element{} (add allows {})",
                                  ShowToken(t), Where(tokens, last), n, n == 1 ? "" : "s", n));
    }
    arr->insert(arr->begin() + static_cast<std::ptrdiff_t>(*idx), std::move(v));
    return Status::Ok();
  }
  return NotFound(fmt::format("{} is a {}, so '{}' cannot be added to it", Where(tokens, last),
                              core::KindName(**parent), ShowToken(t)));
}

// RFC 6902 §4.2. Returns the removed value so move can re-add it without another copy.
Result<json::value> Remove(json::value& root, const std::vector<std::string>& tokens) {
  if (tokens.empty()) {
    // The root always exists; with nothing left the document is null (community suite).
    return std::exchange(root, json::value());
  }
  std::size_t last = tokens.size() - 1;
  auto parent = Walk(root, tokens, last);
  if (!parent.ok()) return parent.status();
  const std::string& t = tokens[last];
  if (json::object* obj = (*parent)->if_object()) {
    auto it = obj->find(t);
    if (it == obj->end()) {
      return NotFound(fmt::format("no member '{}' in {}", ShowToken(t), Where(tokens, last)));
    }
    json::value removed = std::move(it->value());
    obj->erase(it);
    return removed;
  }
  if (json::array* arr = (*parent)->if_array()) {
    auto idx = ExistingIndex(*arr, t, tokens, last);
    if (!idx.ok()) return idx.status();
    auto it = arr->begin() + static_cast<std::ptrdiff_t>(*idx);
    json::value removed = std::move(*it);
    arr->erase(it);
    return removed;
  }
  return NotFound(fmt::format("{} is a {}, so it has no member '{}'", Where(tokens, last),
                              core::KindName(**parent), ShowToken(t)));
}

bool NumbersEqual(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double()) return a.get_double() == b.get_double();
  if (a.is_double() || b.is_double()) {
    // Exact comparison of a double with an integer: converting the integer to double would make
    // 2^53 + 1 equal 2^53.
    double d = a.is_double() ? a.get_double() : b.get_double();
    const json::value& i = a.is_double() ? b : a;
    if (std::trunc(d) != d) return false;
    constexpr double kTwo63 = 9223372036854775808.0;
    if (i.is_int64()) {
      if (d < -kTwo63 || d >= kTwo63) return false;
      return static_cast<std::int64_t>(d) == i.get_int64();
    }
    if (d < 0 || d >= 2 * kTwo63) return false;
    return static_cast<std::uint64_t>(d) == i.get_uint64();
  }
  if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
  if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
  const json::value& s = a.is_int64() ? a : b;
  const json::value& u = a.is_int64() ? b : a;
  return s.get_int64() >= 0 && static_cast<std::uint64_t>(s.get_int64()) == u.get_uint64();
}

// RFC 6902 §4.6 equality. boost::json's operator== distinguishes 1 from 1.0, so it cannot be used.
bool JsonEqual(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return NumbersEqual(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.get_bool() == b.get_bool();
    case json::kind::string:
      return a.get_string() == b.get_string();
    case json::kind::array: {
      const json::array& x = a.get_array();
      const json::array& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!JsonEqual(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::object: {
      const json::object& x = a.get_object();
      const json::object& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (const auto& m : x) {
        const json::value* other = y.if_contains(m.key());
        if (other == nullptr || !JsonEqual(m.value(), *other)) return false;
      }
      return true;
    }
    default:
      return false;  // numbers were handled above
  }
}

bool IsProperPrefix(const std::vector<std::string>& prefix, const std::vector<std::string>& v) {
  if (prefix.size() >= v.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (prefix[i] != v[i]) return false;
  }
  return true;
}

std::optional<OpKind> KindOf(std::string_view op) {
  if (op == "add") return OpKind::kAdd;
  if (op == "remove") return OpKind::kRemove;
  if (op == "replace") return OpKind::kReplace;
  if (op == "move") return OpKind::kMove;
  if (op == "copy") return OpKind::kCopy;
  if (op == "test") return OpKind::kTest;
  return std::nullopt;
}

// Builds the per-operation errors: code, "operation i (op path): detail", pointer /i[/member].
class OpErrors {
 public:
  explicit OpErrors(std::size_t index) : index_(index) {}

  void set_op(std::string_view op) { op_ = op; }
  void set_path(std::string_view path) {
    path_ = path;
    has_path_ = true;
  }

  Status Make(std::string code, std::string_view detail, std::string_view member = {}) const {
    std::string pointer = core::PointerAppend("", index_);
    if (!member.empty()) pointer = core::PointerAppend(pointer, member);
    std::string label;
    if (!op_.empty() && has_path_) {
      label = fmt::format(" ({} {})", ShowToken(op_), ShowPointer(path_));
    } else if (!op_.empty()) {
      label = fmt::format(" ({})", ShowToken(op_));
    }
    return Status(std::move(code), fmt::format("operation {}{}: {}", index_, label, detail),
                  std::move(pointer));
  }

  // Re-labels a bare Status from the document walkers with this operation. The label shows
  // "path", so a failure at "from" says so in the detail.
  Status Wrap(const Status& inner, std::string_view member) const {
    if (member == "from") {
      return Make(inner.code(), fmt::format("from {}: {}", ShowPointer(from_), inner.message()),
                  member);
    }
    return Make(inner.code(), inner.message(), member);
  }
  void set_from(std::string_view from) { from_ = from; }

 private:
  std::size_t index_;
  std::string_view op_;
  std::string_view path_;
  std::string_view from_;
  bool has_path_ = false;
};

// A member that must be a string; missing and ill-typed are both PATCH_INVALID_OPERATION.
Result<std::string_view> StringMember(const json::object& obj, std::string_view name,
                                      const OpErrors& err) {
  const json::value* v = obj.if_contains(name);
  if (v == nullptr) {
    return err.Make("PATCH_INVALID_OPERATION", fmt::format("missing member '{}'", name));
  }
  const json::string* s = v->if_string();
  if (s == nullptr) {
    return err.Make("PATCH_INVALID_OPERATION",
                    fmt::format("member '{}' must be a string, not {}", name, core::KindName(*v)),
                    name);
  }
  return std::string_view(*s);
}

// A string member holding an RFC 6901 pointer; its text goes to `*text_out` for messages.
Result<std::vector<std::string>> PointerMember(const json::object& obj, std::string_view name,
                                               const OpErrors& err, std::string_view* text_out) {
  auto text = StringMember(obj, name, err);
  if (!text.ok()) return text.status();
  *text_out = *text;
  auto tokens = ParsePointer(*text);
  if (!tokens.ok()) {
    return err.Make("PATCH_INVALID_POINTER",
                    fmt::format("member '{}': {}", name, tokens.status().message()), name);
  }
  return std::move(tokens).value();
}

Result<Operation> ParseOperation(const json::value& v, std::size_t index) {
  OpErrors err(index);
  const json::object* obj = v.if_object();
  if (obj == nullptr) {
    return err.Make("PATCH_INVALID_OPERATION",
                    fmt::format("an operation must be an object, not {}", core::KindName(v)));
  }
  auto op = StringMember(*obj, "op", err);
  if (!op.ok()) return op.status();
  err.set_op(*op);
  auto kind = KindOf(*op);
  if (!kind) {
    return err.Make("PATCH_INVALID_OPERATION",
                    fmt::format("unknown op '{}' (the ops are {})", ShowToken(*op),
                                "add, remove, replace, move, copy, test"),
                    "op");
  }
  Operation out;
  out.kind = *kind;
  out.op = *op;
  // The label gets the path before it is validated, so a bad pointer is shown as written.
  if (const json::value* p = obj->if_contains("path"); p != nullptr && p->is_string()) {
    err.set_path(p->get_string());
  }
  auto path = PointerMember(*obj, "path", err, &out.path_text);
  if (!path.ok()) return path.status();
  out.path = std::move(path).value();

  if (*kind == OpKind::kMove || *kind == OpKind::kCopy) {
    auto from = PointerMember(*obj, "from", err, &out.from_text);
    if (!from.ok()) return from.status();
    out.from = std::move(from).value();
    // RFC 6902 §4.4: a location cannot be moved into one of its children. Known without the
    // document, so it is a malformed operation rather than a missing path.
    if (*kind == OpKind::kMove && IsProperPrefix(out.from, out.path)) {
      return err.Make("PATCH_INVALID_OPERATION",
                      fmt::format("cannot move {} into its own child",
                                  ShowPointer(JoinPointer(out.from, out.from.size()))),
                      "path");
    }
  }
  if (*kind == OpKind::kAdd || *kind == OpKind::kReplace || *kind == OpKind::kTest) {
    // Present-but-null is a value; only absence is an error.
    out.value = obj->if_contains("value");
    if (out.value == nullptr) {
      return err.Make("PATCH_INVALID_OPERATION", "missing member 'value'");
    }
  }
  return out;
}

Status Apply(json::value& doc, const Operation& op, std::size_t index) {
  OpErrors err(index);
  err.set_op(op.op);
  err.set_path(op.path_text);
  err.set_from(op.from_text);
  switch (op.kind) {
    case OpKind::kAdd: {
      Status s = Add(doc, op.path, *op.value);
      return s.ok() ? s : err.Wrap(s, "path");
    }
    case OpKind::kRemove: {
      auto r = Remove(doc, op.path);
      return r.ok() ? Status::Ok() : err.Wrap(r.status(), "path");
    }
    case OpKind::kReplace: {
      // Same as remove-then-add (§4.3) but keeps the member's position in the object.
      auto target = Get(doc, op.path);
      if (!target.ok()) return err.Wrap(target.status(), "path");
      **target = *op.value;
      return Status::Ok();
    }
    case OpKind::kMove: {
      if (op.from == op.path) {
        auto src = Get(doc, op.from);
        return src.ok() ? Status::Ok() : err.Wrap(src.status(), "from");
      }
      auto removed = Remove(doc, op.from);
      if (!removed.ok()) return err.Wrap(removed.status(), "from");
      Status s = Add(doc, op.path, std::move(removed).value());
      return s.ok() ? s : err.Wrap(s, "path");
    }
    case OpKind::kCopy: {
      auto src = Get(doc, op.from);
      if (!src.ok()) return err.Wrap(src.status(), "from");
      json::value copy = **src;  // before Add, which may reallocate the container holding *src
      Status s = Add(doc, op.path, std::move(copy));
      return s.ok() ? s : err.Wrap(s, "path");
    }
    case OpKind::kTest: {
      auto target = Get(doc, op.path);
      if (!target.ok()) return err.Wrap(target.status(), "path");
      if (!JsonEqual(**target, *op.value)) {
        return err.Make("PATCH_TEST_FAILED",
                        fmt::format("value is {}, expected {}", core::Abbreviate(**target),
                                    core::Abbreviate(*op.value)),
                        "value");
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer.front() != '/') {
    return Status(
        "INVALID_POINTER",
        fmt::format("JSON pointer '{}' must be empty or start with '/'", ShowPointer(pointer)));
  }
  std::string cur;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    char c = pointer[i];
    if (c != '~') {
      cur += c;
      continue;
    }
    // Decoding left to right is what makes "~01" mean "~1" rather than "/" (RFC 6901 §4).
    char next = i + 1 < pointer.size() ? pointer[i + 1] : '\0';
    if (next != '0' && next != '1') {
      return Status("INVALID_POINTER",
                    fmt::format("JSON pointer '{}': '~' at offset {} must be followed by {}",
                                ShowPointer(pointer), i, "'0' or '1'"));
    }
    cur += next == '0' ? '~' : '/';
    ++i;
  }
  return tokens;
}

Result<json::value> ApplyJsonPatch(const json::value& doc, const json::value& patch,
                                   const PatchLimits& limits) {
  const json::array* ops = patch.if_array();
  if (ops == nullptr) {
    return Status(
        "PATCH_NOT_ARRAY",
        fmt::format("a JSON patch must be an array of operations, not {}", core::KindName(patch)));
  }
  if (ops->size() > limits.max_ops) {
    return Status(
        "PATCH_TOO_MANY_OPERATIONS",
        fmt::format("patch has {} operations; the limit is {}", ops->size(), limits.max_ops));
  }
  std::vector<Operation> parsed;
  parsed.reserve(ops->size());
  for (std::size_t i = 0; i < ops->size(); ++i) {
    auto op = ParseOperation((*ops)[i], i);
    if (!op.ok()) return op.status();
    parsed.push_back(std::move(op).value());
  }
  json::value working = doc;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    Status s = Apply(working, parsed[i], i);
    if (!s.ok()) return s;
  }
  return working;
}

std::vector<std::string> TouchedPaths(const json::value& patch) {
  std::vector<std::string> out;
  const json::array* ops = patch.if_array();
  if (ops == nullptr) return out;
  for (const json::value& v : *ops) {
    const json::object* obj = v.if_object();
    if (obj == nullptr) continue;
    const json::value* path = obj->if_contains("path");
    if (path == nullptr || !path->is_string()) continue;
    out.emplace_back(path->get_string());
    const json::value* op = obj->if_contains("op");
    if (op != nullptr && op->is_string() && op->get_string() == "move") {
      const json::value* from = obj->if_contains("from");
      if (from != nullptr && from->is_string()) out.emplace_back(from->get_string());
    }
  }
  return out;
}

}  // namespace doppel::twin
