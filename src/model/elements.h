// doppel::model — the in-memory form of DTDL elements (the "model" side of model vs data).
//
// An Interface owns its contents and every complex schema written inside it. Schema references
// inside one Interface are plain pointers into that Interface's own pool, so an Interface is
// self-contained; references between Interfaces (extends, Component schemas) stay DTMIs and are
// looked up through the ModelRepository. Once an Interface is published it is immutable and
// shared as std::shared_ptr<const Interface>.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/dtmi.h"

namespace doppel::model {

// A localizable string: (language tag, text) pairs; a plain JSON string is language "en".
struct LocalizedText {
  std::vector<std::pair<std::string, std::string>> values;
  bool empty() const { return values.empty(); }
  // The English text, else the first one, else "".
  const std::string& Preferred() const;
};

// Fields every DTDL element may carry.
struct ElementInfo {
  std::string id;            // explicit @id, or the auto-generated one (see explicit_id)
  bool explicit_id = false;
  std::vector<std::string> types;  // @type, including co-types
  LocalizedText display_name;
  LocalizedText description;
  std::string comment;
  std::string pointer;       // JSON pointer of the element in its source document
};

enum class SchemaKind {
  // primitives
  kBoolean, kDate, kDateTime, kDouble, kDuration, kFloat, kInteger, kLong, kString, kTime,
  // geospatial (GeoJSON)
  kPoint, kLineString, kPolygon, kMultiPoint, kMultiLineString, kMultiPolygon,
  // complex
  kArray, kEnum, kMap, kObject,
};

bool IsPrimitive(SchemaKind k);
bool IsGeospatial(SchemaKind k);
bool IsComplex(SchemaKind k);
bool IsNumeric(SchemaKind k);
// The DTDL term: "double", "dateTime", "lineString", "Array", "Object", ...
const char* SchemaKindName(SchemaKind k);
// Primitive/geospatial term → kind (accepts the full DTMI spellings too).
std::optional<SchemaKind> PrimitiveSchemaFromTerm(std::string_view term);

struct Schema;

// A reference to a schema: resolved pointer, plus the DTMI it was written as (if any).
struct SchemaRef {
  const Schema* schema = nullptr;
  std::string ref;      // non-empty when written as a DTMI reference
  std::string pointer;  // where the reference is written
};

struct SemanticInfo {
  std::string semantic_type;  // e.g. "Temperature"
  std::string unit;           // e.g. "degreeCelsius"
};

// Field of an Object, or MapValue/MapKey, or a Command request/response: a named schema slot.
struct NamedSchema {
  ElementInfo info;
  std::string name;
  SchemaRef schema;
  std::optional<SemanticInfo> semantic;
  bool nullable = false;  // v3 CommandRequest/CommandResponse
};

struct EnumValue {
  ElementInfo info;
  std::string name;
  boost::json::value value;  // int64 or string
};

struct Schema {
  SchemaKind kind = SchemaKind::kString;
  ElementInfo info;  // empty for primitives
  // Array
  SchemaRef element_schema;
  // Enum
  SchemaKind value_schema = SchemaKind::kString;
  std::vector<EnumValue> enum_values;
  // Map
  NamedSchema map_key;
  NamedSchema map_value;
  // Object
  std::vector<NamedSchema> fields;
};

// The shared, immutable schema object of a primitive or geospatial kind.
const Schema* PrimitiveSchema(SchemaKind k);

enum class ContentKind { kProperty, kTelemetry, kCommand, kRelationship, kComponent };
const char* ContentKindName(ContentKind k);

struct Content {
  ContentKind kind = ContentKind::kProperty;
  DtdlVersion version = DtdlVersion::kV3;  // of the document (or nested @context) it is in
  ElementInfo info;
  std::string name;
  SchemaRef schema;  // Property, Telemetry
  std::optional<SemanticInfo> semantic;
  bool writable = false;  // Property, Relationship
  // Command
  std::optional<NamedSchema> request;
  std::optional<NamedSchema> response;
  // Relationship
  std::string target;  // by-reference DTMI; may be undefined
  int min_multiplicity = 0;
  std::optional<int> max_multiplicity;
  std::vector<std::unique_ptr<Content>> properties;
  // Component: the DTMI of its Interface (an inline Interface gets an auto id); its pointer is
  // schema.pointer.
  std::string component_schema;
};

struct Interface {
  ElementInfo info;
  DtdlVersion version = DtdlVersion::kV3;
  std::vector<std::string> context;  // as written (top-level only)
  bool quantitative_types = false;   // v3 quantitativeTypes extension loaded
  std::vector<std::string> extends;  // DTMIs (inline Interfaces get auto ids)
  std::vector<std::string> extends_pointers;  // where each `extends` entry is written
  std::vector<std::unique_ptr<Content>> contents;
  std::vector<const Schema*> schemas;               // the `schemas` member
  std::vector<std::unique_ptr<Schema>> schema_pool;  // every complex schema written inside
  std::string document;          // source document name
  std::string parent_id;         // for an inline Interface: the Interface it is written in
  std::size_t json_bytes = 0;    // size of its JSON text
  std::shared_ptr<const boost::json::value> source;  // the JSON as written (top-level only)
  // DTMI references (a `schema`, or an entry of `contents`) that name nothing inside this
  // Interface. Elements other than Interfaces are only referenceable inside the Interface that
  // defines them, so each of these is an error the resolver classifies.
  struct ForeignRef {
    std::string dtmi;
    std::string pointer;
    std::string member;  // "schema" or "contents"
  };
  std::vector<ForeignRef> foreign_refs;

  const Content* FindOwnContent(std::string_view name) const;
};

using InterfacePtr = std::shared_ptr<const Interface>;

// Calls `fn(id, class_name)` for every element written inside `iface` that has an explicit @id
// (the Interface itself included, inline Interfaces excluded: they are Interfaces of their own).
void ForEachExplicitId(const Interface& iface,
                       const std::function<void(const std::string&, std::string_view)>& fn);

}  // namespace doppel::model
