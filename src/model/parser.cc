#include "model/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "model/semantic_units.h"

namespace doppel::model {
namespace {

namespace json = boost::json;
using core::PointerAppend;

constexpr std::string_view kDtdlContextPrefix = "dtmi:dtdl:context;";
constexpr std::string_view kExtensionPrefix = "dtmi:dtdl:extension:";
constexpr std::string_view kQuantitativeTypes = "dtmi:dtdl:extension:quantitativeTypes;1";
constexpr std::size_t kMaxInterfaceJsonBytes = 1u << 20;
constexpr int kMaxSchemaDepth = 5;

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// ^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$
bool IsValidName(std::string_view n) {
  if (n.empty()) return false;
  char f = n.front();
  if (!((f >= 'A' && f <= 'Z') || (f >= 'a' && f <= 'z'))) return false;
  if (n.back() == '_') return false;
  return std::all_of(n.begin(), n.end(), IsNameChar);
}

// ^[a-z]{2,4}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$
bool IsValidLanguageTag(std::string_view t) {
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0;
  while (i < t.size() && lower(t[i])) ++i;
  if (i < 2 || i > 4) return false;
  if (i == t.size()) return true;
  // optional script
  if (t.size() >= i + 5 && t[i] == '-' && upper(t[i + 1]) && lower(t[i + 2]) &&
      lower(t[i + 3]) && lower(t[i + 4])) {
    i += 5;
    if (i == t.size()) return true;
  }
  if (t[i] != '-') return false;
  std::string_view region = t.substr(i + 1);
  if (region.size() == 2) return upper(region[0]) && upper(region[1]);
  if (region.size() == 3) return digit(region[0]) && digit(region[1]) && digit(region[2]);
  return false;
}

// The term a member key stands for: "contents" or "dtmi:dtdl:property:contents;3" -> "contents".
// Returns the key unchanged if it is not a full-DTMI spelling.
std::string_view TermOfKey(std::string_view key, DtdlVersion version, bool* full_form) {
  constexpr std::string_view kPrefix = "dtmi:dtdl:property:";
  *full_form = false;
  if (!key.starts_with(kPrefix)) return key;
  std::string_view rest = key.substr(kPrefix.size());
  std::size_t semi = rest.find(';');
  if (semi == std::string_view::npos) return key;
  std::string_view ver = rest.substr(semi + 1);
  if (ver != (version == DtdlVersion::kV2 ? "2" : "3")) return key;
  *full_form = true;
  return rest.substr(0, semi);
}

// Class name from an @type entry: "Property" or "dtmi:dtdl:class:Property;3" -> "Property".
std::string_view ClassOfType(std::string_view t, DtdlVersion version) {
  constexpr std::string_view kPrefix = "dtmi:dtdl:class:";
  if (!t.starts_with(kPrefix)) return t;
  std::string_view rest = t.substr(kPrefix.size());
  std::size_t semi = rest.find(';');
  if (semi == std::string_view::npos) return t;
  if (rest.substr(semi + 1) != (version == DtdlVersion::kV2 ? "2" : "3")) return t;
  return rest.substr(0, semi);
}

// Semantic type from a co-type: "Temperature" or "dtmi:standard:class:Temperature;2".
// Likewise for units with prefix "dtmi:standard:unit:".
std::string_view SemanticTypeName(std::string_view t,
                                  std::string_view kPrefix = "dtmi:standard:class:") {
  if (!t.starts_with(kPrefix)) return t;
  std::string_view rest = t.substr(kPrefix.size());
  std::size_t semi = rest.find(';');
  return semi == std::string_view::npos ? t : rest.substr(0, semi);
}

constexpr std::array<std::string_view, 17> kDtdlClassNames = {
    "Interface", "Property",        "Telemetry", "Command",   "Relationship", "Component",
    "Array",     "Enum",            "Map",       "Object",    "Field",        "EnumValue",
    "MapKey",    "MapValue",        "CommandRequest", "CommandResponse", "CommandPayload"};

bool IsDtdlClassName(std::string_view s) {
  return std::find(kDtdlClassNames.begin(), kDtdlClassNames.end(), s) != kDtdlClassNames.end();
}

// A JSON object's members by term, after checking keys against the allowed terms of its class.
class Terms {
 public:
  const json::value* Get(std::string_view term) const {
    auto it = members_.find(std::string(term));
    return it == members_.end() ? nullptr : it->second.value;
  }
  // Pointer of the member as written.
  std::string PointerOf(std::string_view base, std::string_view term) const {
    auto it = members_.find(std::string(term));
    return PointerAppend(base, it == members_.end() ? std::string(term) : it->second.key);
  }
  struct Member {
    std::string key;
    const json::value* value;
  };
  std::unordered_map<std::string, Member> members_;
};

// Reads one batch of documents. Holds the per-element context (version, extension set, the
// Interface being built) while walking the JSON.
class Reader {
 public:
  Reader(Diagnostics& diags, std::vector<std::shared_ptr<Interface>>& out)
      : diags_(diags), out_(out) {}

  void ReadDocument(const std::string& name, const json::value& doc, std::size_t text_bytes);

 private:
  struct Scope {
    DtdlVersion version = DtdlVersion::kV3;
    bool quantitative = false;
    std::string dtmi;  // nearest element id, for diagnostics
    // DTDL v2 permits arbitrary undefined co-types, and an element that has one may also carry
    // arbitrary undefined members (DTDL.v2.md, "Additional concerns").
    bool open_element = false;
  };

  // Sets scope_.open_element for an element with these co-types (v2 only): true when one of
  // them is not a DTDL v2 semantic type.
  void OpenIfUndefinedCotypes(const std::vector<std::string>& cotypes) {
    scope_.open_element = false;
    if (scope_.version != DtdlVersion::kV2) return;
    for (const auto& c : cotypes) {
      if (!UnitTypeOf(SemanticTable::kDtdlV2, SemanticTypeName(c))) scope_.open_element = true;
    }
  }

  void Error(const std::string& code, const std::string& pointer, std::string message) {
    diags_.push_back(Diagnostic{Severity::kError, code, std::move(message), document_, pointer,
                                scope_.dtmi});
  }

  // Returns false when the context is unusable.
  bool ReadContext(const json::value& ctx, const std::string& ptr, Scope* scope,
                   std::vector<std::string>* written);
  std::optional<Terms> ReadTerms(const json::object& obj, const std::string& ptr,
                                 std::string_view class_name,
                                 std::initializer_list<std::string_view> allowed);
  std::optional<std::vector<std::string>> ReadTypes(const json::object& obj,
                                                    const std::string& ptr, bool required,
                                                    std::string_view what);
  // Checks @type includes `class_name` (when present) and returns the co-types.
  std::optional<std::vector<std::string>> CheckClass(const std::vector<std::string>& types,
                                                     const std::string& ptr,
                                                     std::string_view class_name);
  std::optional<SemanticInfo> ReadSemantic(const std::vector<std::string>& cotypes,
                                           const Terms& terms, const std::string& ptr,
                                           std::string_view class_name, bool allowed);
  void ReadElementInfo(const Terms& terms, const std::string& ptr, ElementInfo* info,
                       const std::string& auto_id);
  void ReadLocalized(const json::value& v, const std::string& ptr, std::size_t max_len,
                     std::string_view what, LocalizedText* out);
  bool ReadString(const Terms& t, std::string_view term, const std::string& base,
                  std::string* out);
  bool ReadBool(const Terms& t, std::string_view term, const std::string& base, bool* out);
  bool ReadName(const Terms& t, const std::string& base, std::string* out, bool required,
                std::string_view what);
  std::optional<std::string> ReadId(const Terms& t, const std::string& base, bool required,
                                    std::size_t max_len);

  std::shared_ptr<Interface> ReadInterface(const json::value& v, const std::string& ptr,
                                           bool top_level, const std::string& auto_id,
                                           const std::string& parent_id);
  std::unique_ptr<Content> ReadContent(const json::value& v, const std::string& ptr,
                                       const std::string& parent_id, Interface& iface,
                                       bool relationship_property);
  std::optional<NamedSchema> ReadNamedSchema(const json::value& v, const std::string& ptr,
                                             std::string_view class_name,
                                             std::initializer_list<std::string_view> alt_classes,
                                             const std::string& auto_id, Interface& iface,
                                             bool semantic_allowed, bool schema_required);
  SchemaRef ReadSchemaValue(const json::value& v, const std::string& ptr,
                            const std::string& auto_id, Interface& iface);
  const Schema* ReadComplexSchema(const json::object& obj, const std::string& ptr,
                                  const std::string& auto_id, Interface& iface,
                                  bool id_required);
  std::string ReadInterfaceRef(const json::value& v, const std::string& ptr,
                               const std::string& auto_id, const std::string& parent_id,
                               std::string_view what);

  // After an Interface is read: link DTMI schema references inside it, check depth, cycles
  // and the v2 Array rule.
  void LinkSchemas(Interface& iface);
  // An element with a semantic type needs a numeric schema (a DTMI reference names a complex
  // schema, which never is).
  void CheckSemanticSchema(const SchemaRef& schema, const std::string& name,
                           const std::string& semantic_type) {
    if (schema.ref.empty() && (schema.schema == nullptr || IsNumeric(schema.schema->kind))) return;
    Error("NON_NUMERIC_SEMANTIC_SCHEMA", schema.pointer,
          fmt::format("'{}' has semantic type {} but schema {}; it must be numeric (double, "
                      "float, integer or long)",
                      name, semantic_type,
                      schema.ref.empty() ? SchemaKindName(schema.schema->kind) : schema.ref));
  }
  void CheckUniqueNames(const std::vector<std::pair<std::string, std::string>>& names,
                        std::string_view what);
  std::string AutoId(const std::string& parent, std::string_view prop,
                     std::string_view name = {}) const;
  void NoteId(const std::string& id, const std::string& ptr);
  void CheckLimit(std::size_t n, std::size_t max, const std::string& ptr, std::string_view what);

  Diagnostics& diags_;
  std::vector<std::shared_ptr<Interface>>& out_;
  std::string document_;
  Scope scope_;
  std::unordered_map<std::string, std::string> ids_seen_;  // explicit @id -> document:pointer
};

std::string Reader::AutoId(const std::string& parent, std::string_view prop,
                           std::string_view name) const {
  auto [path, ver] = SplitDtmiVersion(parent);
  std::string id(path);
  id += ":_";
  id += prop;
  if (!name.empty()) {
    id += ":__";
    id += name;
  }
  id += ver;
  return id;
}

void Reader::NoteId(const std::string& id, const std::string& ptr) {
  std::string where = document_ + ":" + ptr;
  auto [it, inserted] = ids_seen_.emplace(id, where);
  if (!inserted) {
    Error("DUPLICATE_ID", ptr,
          fmt::format("'{}' is already the @id of another element (at {})", id, it->second));
  }
}

void Reader::CheckLimit(std::size_t n, std::size_t max, const std::string& ptr,
                        std::string_view what) {
  if (n > max) {
    Error("TOO_MANY_ELEMENTS", ptr,
          fmt::format("{} {}; DTDL v2 allows at most {}", n, what, max));
  }
}

bool Reader::ReadContext(const json::value& ctx, const std::string& ptr, Scope* scope,
                         std::vector<std::string>* written) {
  std::vector<std::pair<std::string, std::string>> entries;  // value, pointer
  if (ctx.is_string()) {
    entries.emplace_back(std::string(ctx.get_string()), ptr);
  } else if (ctx.is_array()) {
    const auto& arr = ctx.get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      if (!arr[i].is_string()) {
        Error("INVALID_CONTEXT", PointerAppend(ptr, i),
              fmt::format("@context entries must be strings, not {}", core::KindName(arr[i])));
        return false;
      }
      entries.emplace_back(std::string(arr[i].get_string()), PointerAppend(ptr, i));
    }
  } else {
    Error("INVALID_CONTEXT", ptr,
          fmt::format("@context must be a string or an array of strings, not {}",
                      core::KindName(ctx)));
    return false;
  }
  if (entries.empty()) {
    Error("INVALID_CONTEXT", ptr, "@context is empty; it must name dtmi:dtdl:context;2 or ;3");
    return false;
  }
  std::optional<int> dtdl_version;
  std::size_t dtdl_index = 0;
  bool ok = true;
  std::vector<std::size_t> extensions;  // indices into entries
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& [c, p] = entries[i];
    written->push_back(c);
    if (c.starts_with(kDtdlContextPrefix)) {
      std::string_view v = std::string_view(c).substr(kDtdlContextPrefix.size());
      // Several DTDL contexts may be listed (SHOULD NOT); the last one decides the version.
      if (v == "2" || v == "3") {
        dtdl_version = v[0] - '0';
        dtdl_index = i;
      } else {
        Error("UNSUPPORTED_DTDL_VERSION", p,
              fmt::format("'{}' is not a DTDL version doppel reads; use dtmi:dtdl:context;2 "
                          "or dtmi:dtdl:context;3",
                          c));
        return false;
      }
    } else if (!LooksLikeDtmi(c) || SplitDtmiVersion(c).second.empty()) {
      Error("INVALID_CONTEXT", p,
            fmt::format("'{}' is not a context: entries must be DTMIs with a version", c));
      ok = false;
    } else {
      extensions.push_back(i);
    }
  }
  if (!dtdl_version) {
    if (ok) {
      Error("MISSING_DTDL_CONTEXT", ptr,
            "@context does not name the DTDL language: add dtmi:dtdl:context;3 (or ;2) first");
    }
    return false;
  }
  scope->version = *dtdl_version == 2 ? DtdlVersion::kV2 : DtdlVersion::kV3;
  scope->quantitative = false;
  for (std::size_t i : extensions) {
    const auto& [c, p] = entries[i];
    if (scope->version == DtdlVersion::kV3 && i < dtdl_index) {
      Error("CONTEXT_ORDER", p,
            fmt::format("'{}' comes before dtmi:dtdl:context;3; the DTDL context must be first",
                        c));
      ok = false;
    }
    if (c.starts_with(kExtensionPrefix)) {
      if (c == kQuantitativeTypes && scope->version == DtdlVersion::kV3) {
        scope->quantitative = true;
      } else if (c == kQuantitativeTypes) {
        Error("UNSUPPORTED_EXTENSION", p,
              "the quantitativeTypes extension is for DTDL v3; DTDL v2 has semantic types "
              "built in");
        ok = false;
      } else {
        Error("UNSUPPORTED_EXTENSION", p,
              fmt::format("extension '{}' is not supported by doppel (supported: {})", c,
                          kQuantitativeTypes));
        ok = false;
      }
    } else if (scope->version == DtdlVersion::kV3) {
      Error("UNKNOWN_CONTEXT", p,
            fmt::format("'{}' is not a DTDL extension doppel knows; DTDL v3 rejects unknown "
                        "contexts",
                        c));
      ok = false;
    }
    // v2 tolerates unknown non-DTDL contexts.
  }
  return ok;
}

std::optional<Terms> Reader::ReadTerms(const json::object& obj, const std::string& ptr,
                                       std::string_view class_name,
                                       std::initializer_list<std::string_view> allowed) {
  Terms terms;
  bool ok = true;
  for (const auto& kv : obj) {
    std::string_view key = kv.key();
    std::string member_ptr = PointerAppend(ptr, key);
    if (key.starts_with("@")) {
      // v2 only discourages other @-keywords (SHOULD NOT), except @graph.
      bool tolerated = scope_.version == DtdlVersion::kV2 && key != "@graph";
      if (key != "@context" && key != "@id" && key != "@type" && !tolerated) {
        Error("UNDEFINED_TERM", member_ptr,
              fmt::format("'{}' is not allowed: the only @-keywords in DTDL are @context, @id "
                          "and @type",
                          key));
        ok = false;
        continue;
      }
      terms.members_[std::string(key)] = {std::string(key), &kv.value()};
      continue;
    }
    bool full = false;
    std::string_view term = TermOfKey(key, scope_.version, &full);
    if (std::find(allowed.begin(), allowed.end(), term) == allowed.end()) {
      if (scope_.open_element) continue;  // v2 element with an undefined co-type
      std::string list;
      for (auto a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      Error("UNDEFINED_TERM", member_ptr,
            fmt::format("'{}' is not a member of {} (DTDL v{}); allowed: {}", key, class_name,
                        static_cast<int>(scope_.version), list));
      ok = false;
      continue;
    }
    auto [it, inserted] = terms.members_.emplace(std::string(term),
                                                 Terms::Member{std::string(key), &kv.value()});
    if (!inserted) {
      Error("DUPLICATE_TERM", member_ptr,
            fmt::format("'{}' is given twice, as '{}' and as '{}'", term, it->second.key, key));
      ok = false;
    }
  }
  (void)ok;  // unknown members are reported; the known ones are still read
  return terms;
}

std::optional<std::vector<std::string>> Reader::ReadTypes(const json::object& obj,
                                                          const std::string& ptr, bool required,
                                                          std::string_view what) {
  auto it = obj.find("@type");
  if (it == obj.end()) {
    if (required) {
      Error("MISSING_TYPE", ptr, fmt::format("{} has no @type", what));
      return std::nullopt;
    }
    return std::vector<std::string>{};
  }
  std::string tptr = PointerAppend(ptr, "@type");
  std::vector<std::string> types;
  if (it->value().is_string()) {
    types.emplace_back(ClassOfType(it->value().get_string(), scope_.version));
  } else if (it->value().is_array() && !it->value().get_array().empty()) {
    for (const auto& t : it->value().get_array()) {
      if (!t.is_string()) {
        Error("INVALID_TYPE", tptr, "@type entries must be strings");
        return std::nullopt;
      }
      types.emplace_back(ClassOfType(t.get_string(), scope_.version));
    }
  } else {
    Error("INVALID_TYPE", tptr,
          fmt::format("@type must be a string or a non-empty array of strings, not {}",
                      core::Abbreviate(it->value())));
    return std::nullopt;
  }
  return types;
}

std::optional<std::vector<std::string>> Reader::CheckClass(const std::vector<std::string>& types,
                                                           const std::string& ptr,
                                                           std::string_view class_name) {
  std::vector<std::string> cotypes;
  bool found = types.empty();  // @type absent where optional
  for (const auto& t : types) {
    if (t == class_name) {
      found = true;
    } else if (IsDtdlClassName(t)) {
      Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
            fmt::format("@type '{}' is not allowed here; expected {}", t, class_name));
      return std::nullopt;
    } else {
      cotypes.push_back(t);
    }
  }
  if (!found) {
    Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
          fmt::format("@type must include '{}'", class_name));
    return std::nullopt;
  }
  return cotypes;
}

std::optional<SemanticInfo> Reader::ReadSemantic(const std::vector<std::string>& cotypes,
                                                 const Terms& terms, const std::string& ptr,
                                                 std::string_view class_name, bool allowed) {
  const bool v2 = scope_.version == DtdlVersion::kV2;
  const bool semantics_loaded = v2 || scope_.quantitative;
  SemanticTable table = v2 ? SemanticTable::kDtdlV2 : SemanticTable::kQuantitativeTypesV1;
  std::optional<SemanticInfo> sem;
  std::string type_ptr = PointerAppend(ptr, "@type");
  for (const auto& written : cotypes) {
    std::string c(SemanticTypeName(written));
    bool known = semantics_loaded && UnitTypeOf(table, c).has_value();
    if (!known && v2) continue;  // v2 permits arbitrary undefined co-types
    if (!known) {
      if (!v2 && !scope_.quantitative &&
          UnitTypeOf(SemanticTable::kQuantitativeTypesV1, c).has_value()) {
        Error("UNDEFINED_COTYPE", type_ptr,
              fmt::format("'{}' is a semantic type of the quantitativeTypes extension, which "
                          "this document does not load; add '{}' to @context",
                          c, kQuantitativeTypes));
      } else {
        Error("UNDEFINED_COTYPE", type_ptr,
              fmt::format("co-type '{}' is not defined by DTDL v{} or a loaded extension", c,
                          static_cast<int>(scope_.version)));
      }
      continue;
    }
    if (!allowed) {
      Error("SEMANTIC_TYPE_NOT_ALLOWED", type_ptr,
            fmt::format("a {} cannot have the semantic type '{}'", class_name, c));
      continue;
    }
    if (sem) {
      Error("INVALID_TYPE", type_ptr,
            fmt::format("more than one semantic type ('{}' and '{}')", sem->semantic_type, c));
      continue;
    }
    sem = SemanticInfo{c, {}};
  }
  const json::value* unit = terms.Get("unit");
  std::string unit_ptr = terms.PointerOf(ptr, "unit");
  if (sem) {
    if (unit == nullptr) {
      Error("MISSING_UNIT", ptr,
            fmt::format("a {} with semantic type '{}' needs a 'unit'", class_name,
                        sem->semantic_type));
    } else if (!unit->is_string()) {
      Error("WRONG_VALUE_TYPE", unit_ptr, "'unit' must be a string");
    } else {
      std::string_view unit_type = *UnitTypeOf(table, sem->semantic_type);
      // Units may be spelled as DTMIs too: dtmi:standard:unit:degreeCelsius;2.
      std::string_view u = SemanticTypeName(unit->get_string(), "dtmi:standard:unit:");
      if (!IsUnitOf(table, unit_type, u)) {
        std::string valid;
        for (auto x : UnitsOf(table, unit_type)) {
          if (!valid.empty()) valid += ", ";
          valid += x;
        }
        Error("INVALID_UNIT", unit_ptr,
              fmt::format("'{}' is not a unit of {} ({}); valid units: {}", u,
                          sem->semantic_type, unit_type, valid));
      } else {
        sem->unit = std::string(u);
      }
    }
  } else if (unit != nullptr) {
    if (!semantics_loaded) {
      Error("UNDEFINED_TERM", unit_ptr,
            fmt::format("'unit' is not a member of {} unless the quantitativeTypes extension is "
                        "loaded ({})",
                        class_name, kQuantitativeTypes));
    } else if (!allowed) {
      Error("UNDEFINED_TERM", unit_ptr,
            fmt::format("'unit' is not a member of {}", class_name));
    } else {
      Error("UNIT_WITHOUT_SEMANTIC_TYPE", unit_ptr,
            "'unit' is only allowed together with a semantic type in @type, e.g. "
            "[\"Telemetry\", \"Temperature\"]");
    }
  }
  return sem;
}

void Reader::ReadLocalized(const json::value& v, const std::string& ptr, std::size_t max_len,
                           std::string_view what, LocalizedText* out) {
  std::set<std::string> langs;
  auto add = [&](const std::string& lang, std::string_view text, const std::string& p) {
    if (!lang.empty() && !IsValidLanguageTag(lang)) {
      Error("INVALID_LANGUAGE_TAG", p,
            fmt::format("'{}' is not a valid language code (e.g. 'en', 'de-CH')", lang));
      return;
    }
    std::string key = lang.empty() ? "en" : lang;
    if (!langs.insert(lang.empty() ? std::string("@default") : key).second) {
      Error("DUPLICATE_LANGUAGE", p,
            fmt::format("{} gives language '{}' more than once", what, key));
      return;
    }
    if (std::size_t len = core::Utf8Length(text); len > max_len) {
      Error("STRING_TOO_LONG", p,
            fmt::format("{} is {} characters; the limit is {}", what, len, max_len));
      return;
    }
    out->values.emplace_back(key, std::string(text));
  };
  if (v.is_string()) {
    add("", v.get_string(), ptr);
  } else if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      std::string p = PointerAppend(ptr, kv.key());
      if (!kv.value().is_string()) {
        Error("WRONG_VALUE_TYPE", p, fmt::format("{} values must be strings", what));
        continue;
      }
      if (kv.key().empty() || !IsValidLanguageTag(kv.key())) {
        Error("INVALID_LANGUAGE_TAG", p,
              fmt::format("'{}' is not a valid language code (e.g. 'en', 'de-CH')", kv.key()));
        continue;
      }
      add(std::string(kv.key()), kv.value().get_string(), p);
    }
  } else if (v.is_array()) {
    const auto& arr = v.get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string p = PointerAppend(ptr, i);
      if (arr[i].is_string()) {
        add("", arr[i].get_string(), p);
      } else if (arr[i].is_object()) {
        const auto& o = arr[i].get_object();
        const json::value* val = o.if_contains("@value");
        const json::value* lang = o.if_contains("@language");
        if (val == nullptr || !val->is_string() || (lang != nullptr && !lang->is_string()) ||
            o.size() != 1u + (lang != nullptr ? 1u : 0u)) {
          Error("WRONG_VALUE_TYPE", p,
                fmt::format("{} entries must be strings or {{\"@value\": string, "
                            "\"@language\": string}}",
                            what));
          continue;
        }
        if (lang != nullptr && lang->get_string().empty()) {
          Error("INVALID_LANGUAGE_TAG", p, "@language is empty");
          continue;
        }
        add(lang != nullptr ? std::string(lang->get_string()) : "", val->get_string(), p);
      } else {
        Error("WRONG_VALUE_TYPE", p,
              fmt::format("{} entries must be strings or language objects", what));
      }
    }
  } else {
    Error("WRONG_VALUE_TYPE", ptr,
          fmt::format("{} must be a string, a language map or an array, not {}", what,
                      core::KindName(v)));
  }
}

void Reader::ReadElementInfo(const Terms& terms, const std::string& ptr, ElementInfo* info,
                             const std::string& auto_id) {
  info->pointer = ptr;
  if (info->id.empty()) info->id = auto_id;
  const bool v2 = scope_.version == DtdlVersion::kV2;
  if (const auto* v = terms.Get("displayName")) {
    ReadLocalized(*v, terms.PointerOf(ptr, "displayName"), v2 ? 64 : 512, "displayName",
                  &info->display_name);
  }
  if (const auto* v = terms.Get("description")) {
    ReadLocalized(*v, terms.PointerOf(ptr, "description"), 512, "description",
                  &info->description);
  }
  if (terms.Get("comment") != nullptr) {
    std::string p = terms.PointerOf(ptr, "comment");
    if (ReadString(terms, "comment", ptr, &info->comment) &&
        core::Utf8Length(info->comment) > 512) {
      Error("STRING_TOO_LONG", p,
            fmt::format("comment is {} characters; the limit is 512",
                        core::Utf8Length(info->comment)));
    }
  }
}

bool Reader::ReadString(const Terms& t, std::string_view term, const std::string& base,
                        std::string* out) {
  const json::value* v = t.Get(term);
  if (v == nullptr) return false;
  if (!v->is_string()) {
    Error("WRONG_VALUE_TYPE", t.PointerOf(base, term),
          fmt::format("'{}' must be a string, not {}", term, core::KindName(*v)));
    return false;
  }
  *out = std::string(v->get_string());
  return true;
}

bool Reader::ReadBool(const Terms& t, std::string_view term, const std::string& base,
                      bool* out) {
  const json::value* v = t.Get(term);
  if (v == nullptr) return false;
  if (!v->is_bool()) {
    Error("WRONG_VALUE_TYPE", t.PointerOf(base, term),
          fmt::format("'{}' must be true or false, not {}", term, core::Abbreviate(*v)));
    return false;
  }
  *out = v->get_bool();
  return true;
}

bool Reader::ReadName(const Terms& t, const std::string& base, std::string* out, bool required,
                      std::string_view what) {
  if (t.Get("name") == nullptr) {
    if (required) Error("MISSING_PROPERTY", base, fmt::format("{} has no 'name'", what));
    return false;
  }
  std::string name;
  if (!ReadString(t, "name", base, &name)) return false;
  std::string p = t.PointerOf(base, "name");
  std::size_t max = scope_.version == DtdlVersion::kV2 ? 64 : 512;
  if (name.size() > max) {
    Error("STRING_TOO_LONG", p,
          fmt::format("name is {} characters; DTDL v{} allows {}", name.size(),
                      static_cast<int>(scope_.version), max));
    return false;
  }
  if (!IsValidName(name)) {
    Error("INVALID_NAME", p,
          fmt::format("'{}' is not a valid name: it must start with a letter, contain only "
                      "letters, digits and '_', and not end with '_'",
                      name.substr(0, 100)));
    return false;
  }
  *out = std::move(name);
  return true;
}

std::optional<std::string> Reader::ReadId(const Terms& t, const std::string& base,
                                          bool required, std::size_t max_len) {
  const json::value* v = t.Get("@id");
  std::string p = PointerAppend(base, "@id");
  if (v == nullptr) {
    if (required) Error("MISSING_PROPERTY", base, "an Interface must have an @id");
    return std::nullopt;
  }
  if (!v->is_string()) {
    Error("WRONG_VALUE_TYPE", p, fmt::format("@id must be a string, not {}", core::KindName(*v)));
    return std::nullopt;
  }
  std::string id(v->get_string());
  if (auto problem = CheckDtmi(id, scope_.version, /*is_definition=*/true, max_len)) {
    std::string msg = problem->message;
    if (problem->code == "STRING_TOO_LONG" && max_len == kMaxInterfaceIdLength) {
      msg = fmt::format("Interface @id is {} characters; the limit is {}", id.size(), max_len);
    }
    Error(problem->code, p, msg);
    return std::nullopt;
  }
  NoteId(id, p);
  return id;
}

std::string Reader::ReadInterfaceRef(const json::value& v, const std::string& ptr,
                                     const std::string& auto_id, const std::string& parent_id,
                                     std::string_view what) {
  if (v.is_string()) {
    std::string ref(v.get_string());
    if (auto problem = CheckDtmi(ref, scope_.version, /*is_definition=*/false)) {
      Error(problem->code, ptr, fmt::format("{}: {}", what, problem->message));
      return {};
    }
    return ref;
  }
  if (v.is_object()) {
    if (what == "extends") {
      const json::value* t = v.get_object().if_contains("@type");
      bool is_interface = t != nullptr &&
                          ((t->is_string() && ClassOfType(t->get_string(), scope_.version) ==
                                                  "Interface") ||
                           (t->is_array() && std::any_of(t->get_array().begin(),
                                                         t->get_array().end(), [&](const auto& x) {
                                                           return x.is_string() &&
                                                                  ClassOfType(x.get_string(),
                                                                              scope_.version) ==
                                                                      "Interface";
                                                         })));
      if (t != nullptr && !is_interface) {
        Error("EXTENDS_NOT_INTERFACE", ptr,
              fmt::format("extends holds an inline {}, not an Interface", core::Abbreviate(*t)));
        return {};
      }
    }
    auto inner = ReadInterface(v, ptr, /*top_level=*/false, auto_id, parent_id);
    return inner ? inner->info.id : std::string();
  }
  Error("WRONG_VALUE_TYPE", ptr,
        fmt::format("{} must be an Interface DTMI or an inline Interface, not {}", what,
                    core::KindName(v)));
  return {};
}

std::shared_ptr<Interface> Reader::ReadInterface(const json::value& v, const std::string& ptr,
                                                 bool top_level, const std::string& auto_id,
                                                 const std::string& parent_id) {
  if (!v.is_object()) {
    Error("NOT_AN_OBJECT", ptr,
          fmt::format("expected an Interface object, found {}", core::KindName(v)));
    return nullptr;
  }
  const json::object& obj = v.get_object();
  Scope saved = scope_;
  struct Restore {
    Scope& s;
    Scope saved;
    ~Restore() { s = saved; }
  } restore{scope_, saved};

  auto iface = std::make_shared<Interface>();
  const json::value* ctx = obj.if_contains("@context");
  if (ctx != nullptr) {
    if (!ReadContext(*ctx, PointerAppend(ptr, "@context"), &scope_, &iface->context)) {
      return nullptr;
    }
  } else if (top_level) {
    Error("MISSING_CONTEXT", ptr,
          "a top-level Interface must have @context, e.g. \"dtmi:dtdl:context;3\"");
    return nullptr;
  }
  auto types = ReadTypes(obj, ptr, true, "the Interface");
  if (!types) return nullptr;
  if (top_level && std::find(types->begin(), types->end(), "Interface") == types->end()) {
    Error("TOP_LEVEL_NOT_INTERFACE", ptr,
          fmt::format("a top-level element must be an Interface, not {}",
                      types->empty() ? std::string("untyped") : (*types)[0]));
    return nullptr;
  }
  auto cotypes = CheckClass(*types, ptr, "Interface");
  if (!cotypes) return nullptr;
  for (const auto& c : *cotypes) {
    Error("UNDEFINED_COTYPE", PointerAppend(ptr, "@type"),
          fmt::format("co-type '{}' is not defined for an Interface", c));
  }

  iface->version = scope_.version;
  iface->quantitative_types = scope_.quantitative;
  iface->document = document_;
  iface->parent_id = parent_id;
  iface->info.types = *types;
  auto terms = ReadTerms(obj, ptr, "Interface",
                         {"@context", "@id", "@type", "contents", "extends", "schemas",
                          "displayName", "description", "comment"});
  auto id = ReadId(*terms, ptr, top_level, kMaxInterfaceIdLength);
  if (!id && (top_level || terms->Get("@id") != nullptr)) return nullptr;
  iface->info.id = id ? *id : auto_id;
  iface->info.explicit_id = id.has_value();
  scope_.dtmi = iface->info.id;
  if (top_level) {
    iface->json_bytes = json::serialize(v).size();
    if (iface->json_bytes > kMaxInterfaceJsonBytes) {
      Error("INTERFACE_TOO_LARGE", ptr,
            fmt::format("the Interface's JSON text is {} bytes; DTDL allows 1 MiB ({} bytes)",
                        iface->json_bytes, kMaxInterfaceJsonBytes));
    }
  }
  ReadElementInfo(*terms, ptr, &iface->info, iface->info.id);


  // extends
  if (const json::value* ext = terms->Get("extends")) {
    std::string eptr = terms->PointerOf(ptr, "extends");
    std::vector<std::pair<const json::value*, std::string>> items;
    if (ext->is_array()) {
      const auto& arr = ext->get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) items.emplace_back(&arr[i], PointerAppend(eptr, i));
    } else {
      items.emplace_back(ext, eptr);
    }
    if (scope_.version == DtdlVersion::kV2 && items.size() > 2) {
      Error("TOO_MANY_EXTENDS", eptr,
            fmt::format("the Interface extends {} Interfaces; DTDL v2 allows at most 2",
                        items.size()));
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::string ref = ReadInterfaceRef(*items[i].first, items[i].second,
                                         AutoId(iface->info.id, "extends", fmt::format("{}", i)),
                                         iface->info.id, "extends");
      if (!ref.empty()) {
        iface->extends.push_back(ref);
        iface->extends_pointers.push_back(items[i].second);
      }
    }
  }

  // schemas (reusable complex schemas; @id required)
  if (const json::value* sch = terms->Get("schemas")) {
    std::string sptr = terms->PointerOf(ptr, "schemas");
    std::vector<std::pair<const json::value*, std::string>> items;
    if (sch->is_array()) {
      const auto& arr = sch->get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) items.emplace_back(&arr[i], PointerAppend(sptr, i));
    } else {
      items.emplace_back(sch, sptr);
    }
    for (const auto& [item, p] : items) {
      if (!item->is_object()) {
        Error("WRONG_VALUE_TYPE", p,
              fmt::format("entries of 'schemas' must be Array, Enum, Map or Object objects, not "
                          "{}",
                          core::KindName(*item)));
        continue;
      }
      const Schema* s = ReadComplexSchema(item->get_object(), p, {}, *iface, true);
      if (s != nullptr) iface->schemas.push_back(s);
    }
  }

  // contents
  if (const json::value* con = terms->Get("contents")) {
    std::string cptr = terms->PointerOf(ptr, "contents");
    std::vector<std::pair<const json::value*, std::string>> items;
    if (con->is_array()) {
      const auto& arr = con->get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) items.emplace_back(&arr[i], PointerAppend(cptr, i));
    } else if (con->is_object()) {
      items.emplace_back(con, cptr);
    } else {
      Error("WRONG_VALUE_TYPE", cptr,
            fmt::format("'contents' must be an array of content elements, not {}",
                        core::KindName(*con)));
    }
    std::vector<std::pair<std::string, std::string>> names;
    for (const auto& [item, p] : items) {
      if (item->is_string() && item->get_string().starts_with("dtmi:")) {
        // A content element given by reference: only elements of this Interface could be
        // referenced, and those are written inline; the resolver classifies the reference.
        if (auto problem = CheckDtmi(item->get_string(), scope_.version, false)) {
          Error(problem->code, p, problem->message);
        } else {
          iface->foreign_refs.push_back({std::string(item->get_string()), p, "contents"});
        }
        continue;
      }
      auto c = ReadContent(*item, p, iface->info.id, *iface, false);
      if (c) {
        names.emplace_back(c->name, p);
        iface->contents.push_back(std::move(c));
      }
    }
    CheckUniqueNames(names, "contents");
    if (scope_.version == DtdlVersion::kV2 && items.size() > 300) {
      Error("TOO_MANY_CONTENTS", cptr,
            fmt::format("the Interface has {} contents; DTDL v2 allows at most 300",
                        items.size()));
    }
  }

  LinkSchemas(*iface);
  out_.push_back(iface);
  return iface;
}

void Reader::CheckUniqueNames(const std::vector<std::pair<std::string, std::string>>& names,
                              std::string_view what) {
  std::unordered_map<std::string, std::string> seen;
  for (const auto& [name, p] : names) {
    auto [it, inserted] = seen.emplace(name, p);
    if (!inserted) {
      Error("DUPLICATE_NAME", p,
            fmt::format("name '{}' is used twice in {} (also at {})", name, what, it->second));
    }
  }
}

std::unique_ptr<Content> Reader::ReadContent(const json::value& v, const std::string& ptr,
                                             const std::string& parent_id, Interface& iface,
                                             bool relationship_property) {
  if (!v.is_object()) {
    Error("WRONG_VALUE_TYPE", ptr,
          fmt::format("a content element must be an object, not {}", core::KindName(v)));
    return nullptr;
  }
  const json::object& obj = v.get_object();
  Scope saved = scope_;
  struct Restore {
    Scope& s;
    Scope saved;
    ~Restore() { s = saved; }
  } restore{scope_, saved};
  if (const json::value* ctx = obj.if_contains("@context")) {
    std::vector<std::string> ignored;
    if (!ReadContext(*ctx, PointerAppend(ptr, "@context"), &scope_, &ignored)) return nullptr;
  }
  auto types = ReadTypes(obj, ptr, true, "a content element");
  if (!types) return nullptr;

  auto content = std::make_unique<Content>();
  std::string class_name;
  for (const auto& t : *types) {
    ContentKind k;
    if (t == "Property") {
      k = ContentKind::kProperty;
    } else if (t == "Telemetry") {
      k = ContentKind::kTelemetry;
    } else if (t == "Command") {
      k = ContentKind::kCommand;
    } else if (t == "Relationship") {
      k = ContentKind::kRelationship;
    } else if (t == "Component") {
      k = ContentKind::kComponent;
    } else {
      continue;
    }
    if (!class_name.empty()) {
      Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
            fmt::format("@type names two element classes, '{}' and '{}'", class_name, t));
      return nullptr;
    }
    class_name = t;
    content->kind = k;
  }
  if (relationship_property && !class_name.empty() && class_name != "Property") {
    Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
          fmt::format("relationship 'properties' must be Property elements, not {}", class_name));
    return nullptr;
  }
  if (class_name.empty()) {
    Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
          relationship_property
              ? std::string("@type must be 'Property'")
              : std::string("@type must be one of Property, Telemetry, Command, Relationship, "
                            "Component"));
    return nullptr;
  }
  auto cotypes = CheckClass(*types, ptr, class_name);
  if (!cotypes) return nullptr;
  content->info.types = *types;
  content->version = scope_.version;
  OpenIfUndefinedCotypes(*cotypes);

  const bool v2 = scope_.version == DtdlVersion::kV2;
  std::optional<Terms> terms;
  switch (content->kind) {
    case ContentKind::kProperty:
      terms = ReadTerms(obj, ptr, class_name,
                        {"@context", "@id", "@type", "name", "schema", "writable", "unit",
                         "displayName", "description", "comment"});
      break;
    case ContentKind::kTelemetry:
      terms = ReadTerms(obj, ptr, class_name,
                        {"@context", "@id", "@type", "name", "schema", "unit", "displayName",
                         "description", "comment"});
      break;
    case ContentKind::kCommand:
      if (v2) {
        terms = ReadTerms(obj, ptr, class_name,
                          {"@context", "@id", "@type", "name", "request", "response",
                           "commandType", "displayName", "description", "comment"});
      } else {
        terms = ReadTerms(obj, ptr, class_name,
                          {"@context", "@id", "@type", "name", "request", "response",
                           "displayName", "description", "comment"});
      }
      break;
    case ContentKind::kRelationship:
      terms = ReadTerms(obj, ptr, class_name,
                        {"@context", "@id", "@type", "name", "target", "minMultiplicity",
                         "maxMultiplicity", "properties", "writable", "displayName",
                         "description", "comment"});
      break;
    case ContentKind::kComponent:
      terms = ReadTerms(obj, ptr, class_name,
                        {"@context", "@id", "@type", "name", "schema", "displayName",
                         "description", "comment"});
      break;
  }

  auto id = ReadId(*terms, ptr, false, kMaxUserDtmiLength);
  bool has_name = ReadName(*terms, ptr, &content->name, true, class_name);
  std::string auto_id = AutoId(parent_id, relationship_property ? "properties" : "contents",
                               has_name ? content->name : "unnamed");
  content->info.id = id ? *id : auto_id;
  content->info.explicit_id = id.has_value();
  if (id) scope_.dtmi = *id;
  ReadElementInfo(*terms, ptr, &content->info, content->info.id);

  bool semantic_allowed =
      content->kind == ContentKind::kProperty || content->kind == ContentKind::kTelemetry;
  content->semantic = ReadSemantic(*cotypes, *terms, ptr, class_name, semantic_allowed);

  auto require_schema = [&]() -> bool {
    if (terms->Get("schema") == nullptr) {
      Error("MISSING_PROPERTY", ptr,
            fmt::format("{} '{}' has no 'schema'", class_name, content->name));
      return false;
    }
    return true;
  };

  switch (content->kind) {
    case ContentKind::kProperty:
      ReadBool(*terms, "writable", ptr, &content->writable);
      [[fallthrough]];
    case ContentKind::kTelemetry:
      if (require_schema()) {
        content->schema = ReadSchemaValue(*terms->Get("schema"), terms->PointerOf(ptr, "schema"),
                                          AutoId(content->info.id, "schema"), iface);
      }
      if (content->semantic) {
        CheckSemanticSchema(content->schema, content->name, content->semantic->semantic_type);
      }
      break;
    case ContentKind::kCommand: {
      if (const json::value* ct = terms->Get("commandType")) {
        if (!ct->is_string() ||
            (ct->get_string() != "synchronous" && ct->get_string() != "asynchronous")) {
          Error("INVALID_VALUE", terms->PointerOf(ptr, "commandType"),
                "'commandType' must be \"synchronous\" or \"asynchronous\"");
        }
      }
      const char* req_class = v2 ? "CommandPayload" : "CommandRequest";
      const char* resp_class = v2 ? "CommandPayload" : "CommandResponse";
      if (const json::value* r = terms->Get("request")) {
        content->request = ReadNamedSchema(*r, terms->PointerOf(ptr, "request"), req_class, {},
                                           AutoId(content->info.id, "request"), iface,
                                           !v2, true);
      }
      if (const json::value* r = terms->Get("response")) {
        content->response = ReadNamedSchema(*r, terms->PointerOf(ptr, "response"), resp_class,
                                            {}, AutoId(content->info.id, "response"), iface,
                                            !v2, true);
      }
      break;
    }
    case ContentKind::kRelationship: {
      ReadBool(*terms, "writable", ptr, &content->writable);
      if (terms->Get("target") != nullptr) {
        std::string target;
        if (ReadString(*terms, "target", ptr, &target)) {
          if (auto problem = CheckDtmi(target, scope_.version, false)) {
            Error(problem->code, terms->PointerOf(ptr, "target"),
                  fmt::format("target: {}", problem->message));
          } else {
            content->target = target;
          }
        }
      }
      auto read_int = [&](std::string_view term, std::optional<std::int64_t>* out) {
        const json::value* m = terms->Get(term);
        if (m == nullptr) return;
        if (!m->is_int64() && !m->is_uint64()) {
          Error("WRONG_VALUE_TYPE", terms->PointerOf(ptr, term),
                fmt::format("'{}' must be an integer, not {}", term, core::Abbreviate(*m)));
          return;
        }
        *out = m->is_int64() ? m->get_int64()
                             : static_cast<std::int64_t>(std::min<std::uint64_t>(
                                   m->get_uint64(), std::numeric_limits<std::int64_t>::max()));
      };
      std::optional<std::int64_t> min_m, max_m;
      read_int("minMultiplicity", &min_m);
      read_int("maxMultiplicity", &max_m);
      if (min_m && *min_m != 0) {
        Error("INVALID_MULTIPLICITY", terms->PointerOf(ptr, "minMultiplicity"),
              fmt::format("minMultiplicity is {}; DTDL requires it to be 0", *min_m));
      }
      if (max_m) {
        std::int64_t limit = v2 ? 500 : std::numeric_limits<std::int32_t>::max();
        if (*max_m < 1) {
          Error("INVALID_MULTIPLICITY", terms->PointerOf(ptr, "maxMultiplicity"),
                fmt::format("maxMultiplicity is {}; it must be at least 1", *max_m));
        } else if (*max_m > limit) {
          Error("INVALID_MULTIPLICITY", terms->PointerOf(ptr, "maxMultiplicity"),
                fmt::format("maxMultiplicity is {}; DTDL v{} allows at most {}", *max_m,
                            static_cast<int>(scope_.version), limit));
        } else {
          content->max_multiplicity = static_cast<int>(*max_m);
        }
      }
      if (const json::value* props = terms->Get("properties")) {
        std::string pptr = terms->PointerOf(ptr, "properties");
        std::vector<std::pair<const json::value*, std::string>> items;
        if (props->is_array()) {
          const auto& arr = props->get_array();
          for (std::size_t i = 0; i < arr.size(); ++i) {
            items.emplace_back(&arr[i], PointerAppend(pptr, i));
          }
        } else if (props->is_object()) {
          items.emplace_back(props, pptr);
        } else {
          Error("WRONG_VALUE_TYPE", pptr, "'properties' must be an array of Property elements");
        }
        if (v2) CheckLimit(items.size(), 300, pptr, "relationship properties");
        std::vector<std::pair<std::string, std::string>> names;
        for (const auto& [item, p] : items) {
          auto prop = ReadContent(*item, p, content->info.id, iface, true);
          if (prop) {
            names.emplace_back(prop->name, p);
            content->properties.push_back(std::move(prop));
          }
        }
        CheckUniqueNames(names, "relationship properties");
      }
      break;
    }
    case ContentKind::kComponent:
      if (require_schema()) {
        content->schema.pointer = terms->PointerOf(ptr, "schema");
        content->component_schema =
            ReadInterfaceRef(*terms->Get("schema"), terms->PointerOf(ptr, "schema"),
                             AutoId(content->info.id, "schema"), iface.info.id,
                             "a Component's schema");
      }
      break;
  }
  if (!has_name) return nullptr;
  return content;
}

std::optional<NamedSchema> Reader::ReadNamedSchema(
    const json::value& v, const std::string& ptr, std::string_view class_name,
    std::initializer_list<std::string_view> alt_classes, const std::string& auto_id,
    Interface& iface, bool semantic_allowed, bool schema_required) {
  (void)alt_classes;
  if (!v.is_object()) {
    Error("WRONG_VALUE_TYPE", ptr,
          fmt::format("a {} must be an object, not {}", class_name, core::KindName(v)));
    return std::nullopt;
  }
  const json::object& obj = v.get_object();
  auto types = ReadTypes(obj, ptr, false, class_name);
  if (!types) return std::nullopt;
  auto cotypes = CheckClass(*types, ptr, class_name);
  if (!cotypes) return std::nullopt;
  const bool saved_open = scope_.open_element;
  OpenIfUndefinedCotypes(*cotypes);
  struct RestoreOpen {
    bool& flag;
    bool saved;
    ~RestoreOpen() { flag = saved; }
  } restore_open{scope_.open_element, saved_open};
  NamedSchema out;
  out.info.types = *types;
  std::optional<Terms> terms;
  const bool v3 = scope_.version == DtdlVersion::kV3;
  if (class_name == "CommandRequest" || class_name == "CommandResponse") {
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "name", "schema", "nullable", "unit", "displayName",
                       "description", "comment"});
  } else if (class_name == "MapKey") {
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "name", "schema", "displayName", "description",
                       "comment"});
  } else {
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "name", "schema", "unit", "displayName", "description",
                       "comment"});
  }
  auto id = ReadId(*terms, ptr, false, kMaxUserDtmiLength);
  bool has_name = ReadName(*terms, ptr, &out.name, true, class_name);
  out.info.id = id ? *id : auto_id;
  out.info.explicit_id = id.has_value();
  ReadElementInfo(*terms, ptr, &out.info, out.info.id);
  if (v3 && (class_name == "CommandRequest" || class_name == "CommandResponse")) {
    ReadBool(*terms, "nullable", ptr, &out.nullable);
  }
  out.semantic = ReadSemantic(*cotypes, *terms, ptr, class_name, semantic_allowed);
  if (const json::value* s = terms->Get("schema")) {
    out.schema = ReadSchemaValue(*s, terms->PointerOf(ptr, "schema"), AutoId(out.info.id, "schema"),
                                 iface);
    if (out.semantic) CheckSemanticSchema(out.schema, out.name, out.semantic->semantic_type);
  } else if (schema_required) {
    Error("MISSING_PROPERTY", ptr, fmt::format("{} '{}' has no 'schema'", class_name, out.name));
    return std::nullopt;
  }
  if (!has_name) return std::nullopt;
  return out;
}

SchemaRef Reader::ReadSchemaValue(const json::value& v, const std::string& ptr,
                                  const std::string& auto_id, Interface& iface) {
  SchemaRef ref;
  ref.pointer = ptr;
  if (v.is_string()) {
    std::string_view s = v.get_string();
    if (auto k = PrimitiveSchemaFromTerm(s)) {
      ref.schema = PrimitiveSchema(*k);
      return ref;
    }
    if (s.starts_with("dtmi:")) {
      if (auto problem = CheckDtmi(s, scope_.version, false)) {
        Error(problem->code, ptr, fmt::format("schema: {}", problem->message));
        return ref;
      }
      ref.ref = std::string(s);
      return ref;  // linked by LinkSchemas; its pointer is stable (owned by the parent)
    }
    Error("INVALID_SCHEMA", ptr,
          fmt::format("'{}' is not a schema: use a primitive type (boolean, date, dateTime, "
                      "double, duration, float, integer, long, string, time), a geospatial type, "
                      "an Array/Enum/Map/Object, or the DTMI of one",
                      s.substr(0, 100)));
    return ref;
  }
  if (v.is_object()) {
    ref.schema = ReadComplexSchema(v.get_object(), ptr, auto_id, iface, false);
    return ref;
  }
  if (v.is_array() && v.get_array().size() == 1 && scope_.version == DtdlVersion::kV3) {
    return ReadSchemaValue(v.get_array()[0], PointerAppend(ptr, 0), auto_id, iface);
  }
  Error("WRONG_VALUE_TYPE", ptr,
        fmt::format("a schema must be a string or an object, not {}", core::KindName(v)));
  return ref;
}

const Schema* Reader::ReadComplexSchema(const json::object& obj, const std::string& ptr,
                                        const std::string& auto_id, Interface& iface,
                                        bool id_required) {
  auto types = ReadTypes(obj, ptr, true, "a complex schema");
  if (!types) return nullptr;
  std::string class_name;
  for (const auto& t : *types) {
    if (t == "Array" || t == "Enum" || t == "Map" || t == "Object") {
      class_name = t;
      break;
    }
  }
  if (class_name.empty()) {
    Error("INVALID_TYPE", PointerAppend(ptr, "@type"),
          fmt::format("a complex schema's @type must be Array, Enum, Map or Object, not '{}'",
                      types->empty() ? "" : (*types)[0]));
    return nullptr;
  }
  auto cotypes = CheckClass(*types, ptr, class_name);
  if (!cotypes) return nullptr;
  for (const auto& c : *cotypes) {
    Error("UNDEFINED_COTYPE", PointerAppend(ptr, "@type"),
          fmt::format("co-type '{}' is not defined for {}", c, class_name));
  }
  auto schema = std::make_unique<Schema>();
  schema->info.types = *types;
  std::optional<Terms> terms;
  if (class_name == "Array") {
    schema->kind = SchemaKind::kArray;
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "elementSchema", "displayName", "description", "comment"});
  } else if (class_name == "Enum") {
    schema->kind = SchemaKind::kEnum;
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "valueSchema", "enumValues", "displayName", "description",
                       "comment"});
  } else if (class_name == "Map") {
    schema->kind = SchemaKind::kMap;
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "mapKey", "mapValue", "displayName", "description",
                       "comment"});
  } else {
    schema->kind = SchemaKind::kObject;
    terms = ReadTerms(obj, ptr, class_name,
                      {"@id", "@type", "fields", "displayName", "description", "comment"});
  }
  if (id_required && terms->Get("@id") == nullptr) {
    Error("MISSING_PROPERTY", ptr,
          fmt::format("a {} in 'schemas' must have an @id so that it can be referenced",
                      class_name));
  }
  auto id = ReadId(*terms, ptr, false, kMaxUserDtmiLength);
  schema->info.id = id ? *id : auto_id;
  schema->info.explicit_id = id.has_value();
  ReadElementInfo(*terms, ptr, &schema->info, schema->info.id);
  const std::string& sid = schema->info.id;
  const bool v2 = scope_.version == DtdlVersion::kV2;
  Schema* raw = schema.get();
  iface.schema_pool.push_back(std::move(schema));

  auto require = [&](std::string_view term) -> const json::value* {
    const json::value* m = terms->Get(term);
    if (m == nullptr) {
      Error("MISSING_PROPERTY", ptr, fmt::format("{} has no '{}'", class_name, term));
    }
    return m;
  };
  auto items_of = [&](const json::value& m, const std::string& mptr, std::string_view term) {
    std::vector<std::pair<const json::value*, std::string>> items;
    if (m.is_array()) {
      const auto& arr = m.get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) items.emplace_back(&arr[i], PointerAppend(mptr, i));
    } else if (m.is_object()) {
      items.emplace_back(&m, mptr);
    } else {
      Error("WRONG_VALUE_TYPE", mptr, fmt::format("'{}' must be an array", term));
    }
    return items;
  };

  switch (raw->kind) {
    case SchemaKind::kArray:
      if (const json::value* es = require("elementSchema")) {
        raw->element_schema = ReadSchemaValue(*es, terms->PointerOf(ptr, "elementSchema"),
                                              AutoId(sid, "elementSchema"), iface);
      }
      break;
    case SchemaKind::kEnum: {
      bool value_schema_ok = false;
      if (const json::value* vs = require("valueSchema")) {
        std::string vptr = terms->PointerOf(ptr, "valueSchema");
        auto k = vs->is_string() ? PrimitiveSchemaFromTerm(vs->get_string()) : std::nullopt;
        if (k && (*k == SchemaKind::kInteger || *k == SchemaKind::kString)) {
          raw->value_schema = *k;
          value_schema_ok = true;
        } else {
          Error("INVALID_ENUM_VALUE_SCHEMA", vptr,
                fmt::format("an Enum's valueSchema must be 'integer' or 'string', not {}",
                            core::Abbreviate(*vs)));
        }
      }
      // v3 allows an Enum without enumValues; v2 requires a non-empty set.
      if (const json::value* ev = v2 ? require("enumValues") : terms->Get("enumValues")) {
        std::string evptr = terms->PointerOf(ptr, "enumValues");
        auto items = items_of(*ev, evptr, "enumValues");
        if (items.empty() && v2 && (ev->is_array() || ev->is_object())) {
          Error("EMPTY_NOT_ALLOWED", evptr, "DTDL v2 requires an Enum to have enumValues");
        }
        if (v2) CheckLimit(items.size(), 100, evptr, "enumValues");
        std::vector<std::pair<std::string, std::string>> names;
        std::unordered_map<std::string, std::string> values_seen;
        for (const auto& [item, p] : items) {
          if (!item->is_object()) {
            Error("WRONG_VALUE_TYPE", p, "an EnumValue must be an object");
            continue;
          }
          auto et = ReadTypes(item->get_object(), p, false, "an EnumValue");
          if (!et || !CheckClass(*et, p, "EnumValue")) continue;
          auto eterms = ReadTerms(item->get_object(), p, "EnumValue",
                                  {"@id", "@type", "name", "enumValue", "displayName",
                                   "description", "comment"});
          EnumValue e;
          bool named = ReadName(*eterms, p, &e.name, true, "EnumValue");
          auto eid = ReadId(*eterms, p, false, kMaxUserDtmiLength);
          e.info.id = eid ? *eid : AutoId(sid, "enumValues", named ? e.name : "unnamed");
          e.info.explicit_id = eid.has_value();
          ReadElementInfo(*eterms, p, &e.info, e.info.id);
          const json::value* val = eterms->Get("enumValue");
          if (val == nullptr) {
            Error("MISSING_PROPERTY", p, fmt::format("EnumValue '{}' has no 'enumValue'", e.name));
            continue;
          }
          std::string vp = eterms->PointerOf(p, "enumValue");
          if (!val->is_string() && !val->is_int64() && !val->is_uint64()) {
            Error(value_schema_ok ? "ENUM_VALUE_MISMATCH" : "WRONG_VALUE_TYPE", vp,
                  fmt::format("enumValue must be an integer or a string, not {}",
                              core::Abbreviate(*val)));
            continue;
          }
          if (value_schema_ok) {
            bool is_int = val->is_int64() || val->is_uint64();
            bool int_ok = is_int && val->is_int64() &&
                          val->get_int64() >= std::numeric_limits<std::int32_t>::min() &&
                          val->get_int64() <= std::numeric_limits<std::int32_t>::max();
            if (raw->value_schema == SchemaKind::kInteger ? !int_ok : !val->is_string()) {
              Error("ENUM_VALUE_MISMATCH", vp,
                    fmt::format("enumValue {} does not match the Enum's valueSchema '{}'",
                                core::Abbreviate(*val), SchemaKindName(raw->value_schema)));
              continue;
            }
          }
          std::string key = json::serialize(*val);
          auto [it, inserted] = values_seen.emplace(key, p);
          if (!inserted) {
            Error("DUPLICATE_ENUM_VALUE", vp,
                  fmt::format("enumValue {} is used twice (also at {})", key, it->second));
            continue;
          }
          e.value = *val;
          if (named) {
            names.emplace_back(e.name, p);
            raw->enum_values.push_back(std::move(e));
          }
        }
        CheckUniqueNames(names, "enumValues");
      }
      break;
    }
    case SchemaKind::kMap: {
      if (const json::value* mk = require("mapKey")) {
        auto key = ReadNamedSchema(*mk, terms->PointerOf(ptr, "mapKey"), "MapKey", {},
                                   AutoId(sid, "mapKey"), iface, false, true);
        if (key) {
          if (key->schema.schema != nullptr && key->schema.schema->kind != SchemaKind::kString) {
            Error("INVALID_MAP_KEY", key->schema.pointer,
                  fmt::format("a Map's mapKey schema must be 'string', not '{}'",
                              SchemaKindName(key->schema.schema->kind)));
          } else if (!key->schema.ref.empty()) {
            Error("INVALID_MAP_KEY", key->schema.pointer,
                  "a Map's mapKey schema must be 'string'");
          }
          raw->map_key = std::move(*key);
        }
      }
      if (const json::value* mv = require("mapValue")) {
        auto val = ReadNamedSchema(*mv, terms->PointerOf(ptr, "mapValue"), "MapValue", {},
                                   AutoId(sid, "mapValue"), iface, !v2, true);
        if (val) raw->map_value = std::move(*val);
      }
      break;
    }
    case SchemaKind::kObject: {
      if (const json::value* f = v2 ? require("fields") : terms->Get("fields")) {
        std::string fptr = terms->PointerOf(ptr, "fields");
        auto items = items_of(*f, fptr, "fields");
        if (items.empty() && v2 && (f->is_array() || f->is_object())) {
          Error("EMPTY_NOT_ALLOWED", fptr, "DTDL v2 requires an Object to have fields");
        }
        if (v2) CheckLimit(items.size(), 30, fptr, "Object fields");
        std::vector<std::pair<std::string, std::string>> names;
        raw->fields.reserve(items.size());
        for (const auto& [item, p] : items) {
          std::string name_hint;
          if (item->is_object()) {
            if (const auto* n = item->get_object().if_contains("name"); n && n->is_string()) {
              name_hint = std::string(n->get_string());
            }
          }
          auto field = ReadNamedSchema(*item, p, "Field", {},
                                       AutoId(sid, "fields", name_hint.empty() ? "unnamed" : name_hint),
                                       iface, !v2, true);
          if (field) {
            names.emplace_back(field->name, p);
            raw->fields.push_back(std::move(*field));
          }
        }
        CheckUniqueNames(names, "fields");
      }
      break;
    }
    default:
      break;
  }
  return raw;
}

// Depth-first walk over a schema tree: depth of complex nesting, cycles, arrays.
struct SchemaWalk {
  int max_depth = 0;
  bool cycle = false;
  bool has_array = false;
  std::string cycle_id;
};

void WalkSchema(const Schema* s, int depth, std::vector<const Schema*>& stack, SchemaWalk* w) {
  if (s == nullptr) return;
  if (s->kind == SchemaKind::kArray || IsGeospatial(s->kind)) w->has_array = true;
  if (!IsComplex(s->kind)) return;
  if (std::find(stack.begin(), stack.end(), s) != stack.end()) {
    w->cycle = true;
    w->cycle_id = s->info.id;
    return;
  }
  w->max_depth = std::max(w->max_depth, depth);
  if (depth > kMaxSchemaDepth + 1) return;  // deep enough to report; stop walking
  stack.push_back(s);
  switch (s->kind) {
    case SchemaKind::kArray: WalkSchema(s->element_schema.schema, depth + 1, stack, w); break;
    case SchemaKind::kMap: WalkSchema(s->map_value.schema.schema, depth + 1, stack, w); break;
    case SchemaKind::kObject:
      for (const auto& f : s->fields) {
        WalkSchema(f.schema.schema, depth + 1, stack, w);
        if (w->cycle) break;
      }
      break;
    default: break;
  }
  stack.pop_back();
}

void Reader::LinkSchemas(Interface& iface) {
  // A DTMI schema reference may name a complex schema with an explicit @id written anywhere in
  // this Interface; anything else is left for the resolver to classify (other Interface's
  // schema, an Interface, undefined).
  std::unordered_map<std::string_view, const Schema*> by_id;
  for (const auto& s : iface.schema_pool) {
    if (s->info.explicit_id) by_id.emplace(s->info.id, s.get());
  }
  auto link = [&](SchemaRef& ref) {
    if (ref.ref.empty()) return;
    auto it = by_id.find(ref.ref);
    if (it != by_id.end()) {
      ref.schema = it->second;
    } else {
      iface.foreign_refs.push_back({ref.ref, ref.pointer, "schema"});
    }
  };
  for (auto& s : iface.schema_pool) {
    link(s->element_schema);
    link(s->map_key.schema);
    link(s->map_value.schema);
    for (auto& f : s->fields) link(f.schema);
  }
  auto link_content = [&](Content& c) {
    link(c.schema);
    if (c.request) link(c.request->schema);
    if (c.response) link(c.response->schema);
  };
  for (auto& c : iface.contents) {
    link_content(*c);
    for (auto& p : c->properties) link_content(*p);
  }

  // Nesting depth, cycles, and (v2) no Array in a Property.
  std::vector<const Schema*> stack;
  auto check_root = [&](const Schema* root, const std::string& ptr, bool is_property,
                        DtdlVersion version, std::string_view name) {
    SchemaWalk w;
    WalkSchema(root, 1, stack, &w);
    if (w.cycle) {
      Error("SCHEMA_CYCLE", ptr,
            fmt::format("schema '{}' contains itself through its references", w.cycle_id));
    } else if (w.max_depth > kMaxSchemaDepth) {
      Error("SCHEMA_TOO_DEEP", ptr,
            fmt::format("complex schemas are nested {} levels deep; DTDL allows {}", w.max_depth,
                        kMaxSchemaDepth));
    }
    if (is_property && version == DtdlVersion::kV2 && w.has_array) {
      Error("ARRAY_NOT_ALLOWED", ptr,
            fmt::format("Property '{}' uses an Array (or geospatial) schema; DTDL v2 does not "
                        "allow Arrays in Property schemas",
                        name));
    }
  };
  for (const Schema* s : iface.schemas) check_root(s, s->info.pointer, false, iface.version, {});
  auto check_content = [&](const Content& c) {
    DtdlVersion v = c.version;
    if (c.schema.schema != nullptr) {
      check_root(c.schema.schema, c.schema.pointer, c.kind == ContentKind::kProperty, v, c.name);
    }
    if (c.request && c.request->schema.schema) {
      check_root(c.request->schema.schema, c.request->schema.pointer, false, v, c.name);
    }
    if (c.response && c.response->schema.schema) {
      check_root(c.response->schema.schema, c.response->schema.pointer, false, v, c.name);
    }
  };
  for (const auto& c : iface.contents) {
    check_content(*c);
    for (const auto& p : c->properties) check_content(*p);
  }
}

void Reader::ReadDocument(const std::string& name, const json::value& doc,
                          std::size_t text_bytes) {
  (void)text_bytes;
  document_ = name;
  scope_ = Scope{};
  auto read_top = [&](const json::value& v, const std::string& ptr) {
    if (!v.is_object()) {
      Error("NOT_AN_OBJECT", ptr,
            fmt::format("a DTDL document holds Interface objects, not {}", core::KindName(v)));
      return;
    }
    auto iface = ReadInterface(v, ptr, /*top_level=*/true, {}, {});
    if (iface) iface->source = std::make_shared<const json::value>(v);
  };
  if (doc.is_array()) {
    const auto& arr = doc.get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) read_top(arr[i], PointerAppend("", i));
  } else {
    read_top(doc, "");
  }
}

}  // namespace

ParsedDocuments ParseDocuments(std::span<const SourceDocument> documents,
                               const ParseOptions& options) {
  ParsedDocuments out;
  Reader reader(out.diagnostics, out.interfaces);
  std::size_t done = 0;
  for (const auto& doc : documents) {
    auto parsed = core::ParseJson(doc.text, options.json_limits);
    if (!parsed) {
      out.diagnostics.push_back(Diagnostic{Severity::kError, parsed.status().code(),
                                           parsed.status().message(), doc.name, "", ""});
    } else {
      reader.ReadDocument(doc.name, *parsed, doc.text.size());
    }
    if (options.progress) options.progress(++done, documents.size());
  }
  return out;
}

}  // namespace doppel::model
