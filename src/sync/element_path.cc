#include "sync/element_path.h"

#include <boost/json/serialize.hpp>

namespace doppel::sync {

const model::Content* FindElement(const model::ResolvedInterface& iface, std::string_view path) {
  const model::ResolvedInterface* level = &iface;
  std::size_t slash = path.find('/');
  if (slash != std::string_view::npos) {
    level = iface.ComponentInterface(path.substr(0, slash));
    if (level == nullptr) return nullptr;
    path = path.substr(slash + 1);
    if (path.find('/') != std::string_view::npos) return nullptr;
  }
  const model::ResolvedContent* rc = level->Find(path);
  if (rc == nullptr) return nullptr;
  const model::Content* c = rc->content;
  return c->kind == model::ContentKind::kProperty || c->kind == model::ContentKind::kTelemetry
             ? c
             : nullptr;
}

tsdb::Value HistoryValue(const model::Content& element, const boost::json::value& v) {
  const model::Schema* schema = element.schema.schema;
  model::SchemaKind kind = schema ? schema->kind : model::SchemaKind::kString;
  if (kind == model::SchemaKind::kEnum) kind = schema->value_schema;
  switch (kind) {
    case model::SchemaKind::kDouble:
    case model::SchemaKind::kFloat:
      if (v.is_double()) return v.get_double();
      if (v.is_int64()) return static_cast<double>(v.get_int64());
      if (v.is_uint64()) return static_cast<double>(v.get_uint64());
      break;
    case model::SchemaKind::kInteger:
    case model::SchemaKind::kLong:
      if (v.is_int64()) return v.get_int64();
      if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
      if (v.is_double()) return static_cast<std::int64_t>(v.get_double());
      break;
    case model::SchemaKind::kBoolean:
      if (v.is_bool()) return v.get_bool();
      break;
    default:
      if (v.is_string()) return std::string(v.get_string());
      break;
  }
  return boost::json::serialize(v);
}

}  // namespace doppel::sync
