#include "model/elements.h"

#include <array>
#include <string_view>

namespace doppel::model {
namespace {

struct KindName {
  SchemaKind kind;
  const char* name;
};

constexpr std::array<KindName, 20> kKindNames = {{
    {SchemaKind::kBoolean, "boolean"},
    {SchemaKind::kDate, "date"},
    {SchemaKind::kDateTime, "dateTime"},
    {SchemaKind::kDouble, "double"},
    {SchemaKind::kDuration, "duration"},
    {SchemaKind::kFloat, "float"},
    {SchemaKind::kInteger, "integer"},
    {SchemaKind::kLong, "long"},
    {SchemaKind::kString, "string"},
    {SchemaKind::kTime, "time"},
    {SchemaKind::kPoint, "point"},
    {SchemaKind::kLineString, "lineString"},
    {SchemaKind::kPolygon, "polygon"},
    {SchemaKind::kMultiPoint, "multiPoint"},
    {SchemaKind::kMultiLineString, "multiLineString"},
    {SchemaKind::kMultiPolygon, "multiPolygon"},
    {SchemaKind::kArray, "Array"},
    {SchemaKind::kEnum, "Enum"},
    {SchemaKind::kMap, "Map"},
    {SchemaKind::kObject, "Object"},
}};

}  // namespace

const std::string& LocalizedText::Preferred() const {
  static const std::string kEmpty;
  for (const auto& [lang, text] : values) {
    if (lang == "en") return text;
  }
  return values.empty() ? kEmpty : values.front().second;
}

bool IsPrimitive(SchemaKind k) { return k <= SchemaKind::kTime; }
bool IsGeospatial(SchemaKind k) { return k >= SchemaKind::kPoint && k <= SchemaKind::kMultiPolygon; }
bool IsComplex(SchemaKind k) { return k >= SchemaKind::kArray; }
bool IsNumeric(SchemaKind k) {
  return k == SchemaKind::kDouble || k == SchemaKind::kFloat || k == SchemaKind::kInteger ||
         k == SchemaKind::kLong;
}

const char* SchemaKindName(SchemaKind k) { return kKindNames[static_cast<std::size_t>(k)].name; }

std::optional<SchemaKind> PrimitiveSchemaFromTerm(std::string_view term) {
  // Full spellings: dtmi:dtdl:instance:Schema:double;2 and
  // dtmi:standard:schema:geospatial:point;3.
  for (std::string_view prefix : {"dtmi:dtdl:instance:Schema:", "dtmi:standard:schema:geospatial:"}) {
    if (term.starts_with(prefix)) {
      std::string_view rest = term.substr(prefix.size());
      std::size_t semi = rest.find(';');
      if (semi == std::string_view::npos) return std::nullopt;
      std::string_view ver = rest.substr(semi + 1);
      if (ver != "2" && ver != "3") return std::nullopt;
      term = rest.substr(0, semi);
      break;
    }
  }
  for (const auto& kn : kKindNames) {
    if (!IsComplex(kn.kind) && term == kn.name) return kn.kind;
  }
  return std::nullopt;
}

const Schema* PrimitiveSchema(SchemaKind k) {
  static const std::array<Schema, 16> kSchemas = [] {
    std::array<Schema, 16> a;
    for (std::size_t i = 0; i < a.size(); ++i) a[i].kind = static_cast<SchemaKind>(i);
    return a;
  }();
  return IsComplex(k) ? nullptr : &kSchemas[static_cast<std::size_t>(k)];
}

const char* ContentKindName(ContentKind k) {
  switch (k) {
    case ContentKind::kProperty: return "Property";
    case ContentKind::kTelemetry: return "Telemetry";
    case ContentKind::kCommand: return "Command";
    case ContentKind::kRelationship: return "Relationship";
    case ContentKind::kComponent: return "Component";
  }
  return "?";
}

const Content* Interface::FindOwnContent(std::string_view name) const {
  for (const auto& c : contents) {
    if (c->name == name) return c.get();
  }
  return nullptr;
}

void ForEachExplicitId(const Interface& iface,
                       const std::function<void(const std::string&, std::string_view)>& fn) {
  if (iface.info.explicit_id) fn(iface.info.id, "Interface");
  auto named = [&](const NamedSchema& n, std::string_view cls) {
    if (n.info.explicit_id) fn(n.info.id, cls);
  };
  auto content = [&](const Content& c) {
    if (c.info.explicit_id) fn(c.info.id, ContentKindName(c.kind));
    if (c.request) named(*c.request, "CommandRequest");
    if (c.response) named(*c.response, "CommandResponse");
  };
  for (const auto& c : iface.contents) {
    content(*c);
    for (const auto& p : c->properties) content(*p);
  }
  for (const auto& s : iface.schema_pool) {
    if (s->info.explicit_id) fn(s->info.id, SchemaKindName(s->kind));
    for (const auto& f : s->fields) named(f, "Field");
    for (const auto& e : s->enum_values) {
      if (e.info.explicit_id) fn(e.info.id, "EnumValue");
    }
    if (s->kind == SchemaKind::kMap) {
      named(s->map_key, "MapKey");
      named(s->map_value, "MapValue");
    }
  }
}

}  // namespace doppel::model
