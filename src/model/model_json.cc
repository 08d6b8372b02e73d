#include "model/model_json.h"

#include <boost/json.hpp>

namespace doppel::model {
namespace {

namespace json = boost::json;

json::value TextToJson(const LocalizedText& t) {
  if (t.values.size() == 1 && t.values[0].first == "en") return json::value(t.values[0].second);
  json::object o;
  for (const auto& [lang, text] : t.values) o[lang] = text;
  return o;
}

void AddInfo(const ElementInfo& info, json::object& o) {
  if (!info.display_name.empty()) o["displayName"] = TextToJson(info.display_name);
  if (!info.description.empty()) o["description"] = TextToJson(info.description);
  if (!info.comment.empty()) o["comment"] = info.comment;
}

json::value RefToJson(const SchemaRef& r) {
  if (r.schema == nullptr) return r.ref.empty() ? json::value(nullptr) : json::value(r.ref);
  return SchemaToJson(*r.schema);
}

json::object NamedToJson(const NamedSchema& n) {
  json::object o;
  o["name"] = n.name;
  o["schema"] = RefToJson(n.schema);
  if (n.semantic) {
    o["semanticType"] = n.semantic->semantic_type;
    o["unit"] = n.semantic->unit;
  }
  AddInfo(n.info, o);
  return o;
}

json::object ContentToJson(const Content& c) {
  json::object o;
  o["name"] = c.name;
  o["@type"] = ContentKindName(c.kind);
  if (c.info.explicit_id) o["@id"] = c.info.id;
  switch (c.kind) {
    case ContentKind::kProperty:
      o["writable"] = c.writable;
      [[fallthrough]];
    case ContentKind::kTelemetry:
      o["schema"] = RefToJson(c.schema);
      break;
    case ContentKind::kCommand:
      if (c.request) o["request"] = NamedToJson(*c.request);
      if (c.response) o["response"] = NamedToJson(*c.response);
      break;
    case ContentKind::kRelationship: {
      if (!c.target.empty()) o["target"] = c.target;
      if (c.max_multiplicity) o["maxMultiplicity"] = *c.max_multiplicity;
      o["writable"] = c.writable;
      json::array props;
      for (const auto& p : c.properties) props.push_back(ContentToJson(*p));
      if (!props.empty()) o["properties"] = std::move(props);
      break;
    }
    case ContentKind::kComponent:
      o["schema"] = c.component_schema;
      break;
  }
  if (c.semantic) {
    o["semanticType"] = c.semantic->semantic_type;
    o["unit"] = c.semantic->unit;
  }
  AddInfo(c.info, o);
  return o;
}

}  // namespace

json::value DiagnosticToJson(const Diagnostic& d) {
  return json::object{{"severity", d.severity == Severity::kError ? "error" : "info"},
                      {"code", d.code},
                      {"message", d.message},
                      {"document", d.document},
                      {"pointer", d.pointer},
                      {"dtmi", d.dtmi}};
}

json::value SchemaToJson(const Schema& s) {
  if (!IsComplex(s.kind)) return json::value(SchemaKindName(s.kind));
  json::object o;
  o["@type"] = SchemaKindName(s.kind);
  if (s.info.explicit_id) o["@id"] = s.info.id;
  switch (s.kind) {
    case SchemaKind::kArray:
      o["elementSchema"] = RefToJson(s.element_schema);
      break;
    case SchemaKind::kEnum: {
      o["valueSchema"] = SchemaKindName(s.value_schema);
      json::array values;
      for (const auto& e : s.enum_values) {
        json::object v{{"name", e.name}, {"enumValue", e.value}};
        AddInfo(e.info, v);
        values.push_back(std::move(v));
      }
      o["enumValues"] = std::move(values);
      break;
    }
    case SchemaKind::kMap:
      o["mapKey"] = NamedToJson(s.map_key);
      o["mapValue"] = NamedToJson(s.map_value);
      break;
    case SchemaKind::kObject: {
      json::array fields;
      for (const auto& f : s.fields) fields.push_back(NamedToJson(f));
      o["fields"] = std::move(fields);
      break;
    }
    default:
      break;
  }
  AddInfo(s.info, o);
  return o;
}

json::value ResolvedToJson(const ResolvedInterface& r) {
  json::object o;
  o["@id"] = r.id();
  o["dtdlVersion"] = static_cast<int>(r.iface().version);
  AddInfo(r.iface().info, o);
  json::array ext;
  for (const auto& e : r.extends_closure()) ext.push_back(json::value(e));
  o["extends"] = std::move(ext);
  json::array contents;
  for (const auto& rc : r.contents()) {
    json::object c = ContentToJson(*rc.content);
    c["definedIn"] = rc.defined_in;
    contents.push_back(std::move(c));
  }
  o["contents"] = std::move(contents);
  json::object comps;
  for (const auto& rc : r.contents()) {
    if (rc.content->kind != ContentKind::kComponent) continue;
    if (const ResolvedInterface* ci = r.ComponentInterface(rc.content->name)) {
      comps[rc.content->name] = ResolvedToJson(*ci);
    }
  }
  if (!comps.empty()) o["components"] = std::move(comps);
  return o;
}

}  // namespace doppel::model
