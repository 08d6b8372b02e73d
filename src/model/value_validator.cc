#include "model/value_validator.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "core/json.h"
#include "core/time.h"

namespace doppel::model {
namespace {

namespace json = boost::json;
using core::PointerAppend;

using core::ParseFixedDigits;

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// partial-time = HH:MM:SS[.frac]; returns characters consumed or 0.
std::size_t PartialTime(std::string_view s) {
  int h, m, sec;
  if (!ParseFixedDigits(s, 0, 2, &h) || s.size() < 8 || s[2] != ':' ||
      !ParseFixedDigits(s, 3, 2, &m) || s[5] != ':' || !ParseFixedDigits(s, 6, 2, &sec)) {
    return 0;
  }
  if (h > 23 || m > 59 || sec > 60) return 0;  // 60: leap second
  std::size_t i = 8;
  if (i < s.size() && s[i] == '.') {
    std::size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return 0;
  }
  return i;
}

// time-offset = "Z" / ("+" / "-") HH:MM
bool TimeOffset(std::string_view s) {
  if (s == "Z" || s == "z") return true;
  int h, m;
  return s.size() == 6 && (s[0] == '+' || s[0] == '-') && ParseFixedDigits(s, 1, 2, &h) &&
         s[3] == ':' && ParseFixedDigits(s, 4, 2, &m) && h <= 23 && m <= 59;
}

bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

void Add(ValueErrors* out, const char* code, const std::string& ptr, std::string msg) {
  out->emplace_back(code, std::move(msg), ptr);
}

void TypeMismatch(ValueErrors* out, const std::string& ptr, std::string_view expected,
                  const json::value& v) {
  Add(out, "VALUE_TYPE_MISMATCH", ptr,
      fmt::format("expected {}, got {} {}", expected, core::KindName(v), core::Abbreviate(v)));
}

// GeoJSON positions: [x, y] or [x, y, z], numbers.
bool IsPosition(const json::value& v) {
  if (!v.is_array()) return false;
  const auto& a = v.get_array();
  if (a.size() < 2 || a.size() > 3) return false;
  for (const auto& x : a) {
    if (!IsNumber(x)) return false;
  }
  return true;
}

bool IsPositionList(const json::value& v, std::size_t min) {
  if (!v.is_array() || v.get_array().size() < min) return false;
  for (const auto& p : v.get_array()) {
    if (!IsPosition(p)) return false;
  }
  return true;
}

bool IsLinearRing(const json::value& v) {
  return IsPositionList(v, 4) && v.get_array().front() == v.get_array().back();
}

bool IsPolygonCoords(const json::value& v) {
  if (!v.is_array() || v.get_array().empty()) return false;
  for (const auto& r : v.get_array()) {
    if (!IsLinearRing(r)) return false;
  }
  return true;
}

bool EveryOf(const json::value& v, bool (*pred)(const json::value&)) {
  if (!v.is_array()) return false;
  for (const auto& x : v.get_array()) {
    if (!pred(x)) return false;
  }
  return true;
}

void ValidateGeo(SchemaKind kind, const json::value& v, const std::string& ptr, ValueErrors* out) {
  static constexpr std::pair<SchemaKind, const char*> kTypes[] = {
      {SchemaKind::kPoint, "Point"},
      {SchemaKind::kLineString, "LineString"},
      {SchemaKind::kPolygon, "Polygon"},
      {SchemaKind::kMultiPoint, "MultiPoint"},
      {SchemaKind::kMultiLineString, "MultiLineString"},
      {SchemaKind::kMultiPolygon, "MultiPolygon"}};
  const char* type_name = "";
  for (const auto& [k, n] : kTypes) {
    if (k == kind) type_name = n;
  }
  if (!v.is_object()) {
    TypeMismatch(out, ptr, fmt::format("a GeoJSON {} object", type_name), v);
    return;
  }
  const auto& o = v.get_object();
  const json::value* type = o.if_contains("type");
  const json::value* coords = o.if_contains("coordinates");
  if (type == nullptr || !type->is_string() || type->get_string() != type_name) {
    Add(out, "VALUE_INVALID_FORMAT", PointerAppend(ptr, "type"),
        fmt::format("a {} needs \"type\": \"{}\"", SchemaKindName(kind), type_name));
    return;
  }
  bool ok = false;
  if (coords != nullptr) {
    switch (kind) {
      case SchemaKind::kPoint:
        ok = IsPosition(*coords);
        break;
      case SchemaKind::kLineString:
        ok = IsPositionList(*coords, 2);
        break;
      case SchemaKind::kPolygon:
        ok = IsPolygonCoords(*coords);
        break;
      case SchemaKind::kMultiPoint:
        ok = EveryOf(*coords, IsPosition);
        break;
      case SchemaKind::kMultiLineString:
        ok = EveryOf(*coords, [](const json::value& x) { return IsPositionList(x, 2); });
        break;
      case SchemaKind::kMultiPolygon:
        ok = EveryOf(*coords, IsPolygonCoords);
        break;
      default:
        break;
    }
  }
  for (const auto& kv : o) {
    if (kv.key() != "type" && kv.key() != "coordinates" && kv.key() != "bbox") {
      Add(out, "VALUE_UNKNOWN_FIELD", PointerAppend(ptr, kv.key()),
          fmt::format("'{}' is not a member of a GeoJSON {}", kv.key(), type_name));
    }
  }
  if (!ok) {
    Add(out, "VALUE_INVALID_FORMAT", PointerAppend(ptr, "coordinates"),
        fmt::format("'coordinates' is not a valid GeoJSON {} (RFC 7946)", type_name));
  }
}

}  // namespace

bool IsValidDate(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || !ParseFixedDigits(s, 0, 4, &y) || s[4] != '-' ||
      !ParseFixedDigits(s, 5, 2, &m) || s[7] != '-' || !ParseFixedDigits(s, 8, 2, &d)) {
    return false;
  }
  return m >= 1 && m <= 12 && d >= 1 && d <= DaysInMonth(y, m);
}

bool IsValidTime(std::string_view s) {
  std::size_t n = PartialTime(s);
  return n > 0 && TimeOffset(s.substr(n));
}

bool IsValidDateTime(std::string_view s) {
  if (s.size() < 11 || (s[10] != 'T' && s[10] != 't')) return false;
  return IsValidDate(s.substr(0, 10)) && IsValidTime(s.substr(11));
}

bool IsValidDuration(std::string_view s) {
  // P[nY][nM][nW][nD][T[nH][nM][nS]], at least one component; a decimal fraction is allowed.
  if (s.size() < 2 || s[0] != 'P') return false;
  std::size_t i = 1;
  bool in_time = false, any = false, time_any = false;
  const std::string_view date_units = "YMWD", time_units = "HMS";
  std::size_t last_unit = 0;  // index within the current unit list + 1, to enforce order
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (in_time) return false;
      in_time = true;
      last_unit = 0;
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      std::size_t frac = i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      if (i == frac) return false;
    }
    if (i == start || i >= s.size()) return false;
    std::string_view units = in_time ? time_units : date_units;
    std::size_t u = units.find(s[i]);
    if (u == std::string_view::npos || u + 1 <= last_unit) return false;
    last_unit = u + 1;
    any = true;
    if (in_time) time_any = true;
    ++i;
  }
  return any && (!in_time || time_any);
}

void ValidateValue(const Schema& schema, const json::value& v, const std::string& ptr,
                   ValueErrors* out) {
  switch (schema.kind) {
    case SchemaKind::kBoolean:
      if (!v.is_bool()) TypeMismatch(out, ptr, "a boolean", v);
      return;
    case SchemaKind::kString:
      if (!v.is_string()) TypeMismatch(out, ptr, "a string", v);
      return;
    case SchemaKind::kDouble:
      if (!IsNumber(v)) TypeMismatch(out, ptr, "a number", v);
      return;
    case SchemaKind::kFloat:
      if (!IsNumber(v)) {
        TypeMismatch(out, ptr, "a number", v);
      } else if (std::fabs(v.to_number<double>()) > std::numeric_limits<float>::max()) {
        Add(out, "VALUE_OUT_OF_RANGE", ptr,
            fmt::format("{} is outside the range of a float (single precision)",
                        core::Abbreviate(v)));
      }
      return;
    case SchemaKind::kInteger:
    case SchemaKind::kLong: {
      const bool is_int = schema.kind == SchemaKind::kInteger;
      const char* name = is_int ? "integer" : "long";
      if (!IsNumber(v)) {
        TypeMismatch(out, ptr, fmt::format("an {} number", name), v);
        return;
      }
      const std::int64_t lo = is_int ? std::numeric_limits<std::int32_t>::min()
                                     : std::numeric_limits<std::int64_t>::min();
      const std::int64_t hi = is_int ? std::numeric_limits<std::int32_t>::max()
                                     : std::numeric_limits<std::int64_t>::max();
      bool in_range;
      if (v.is_int64()) {
        in_range = v.get_int64() >= lo && v.get_int64() <= hi;
      } else if (v.is_uint64()) {
        in_range = v.get_uint64() <= static_cast<std::uint64_t>(hi);
      } else {
        double d = v.get_double();
        if (std::trunc(d) != d) {
          Add(out, "VALUE_OUT_OF_RANGE", ptr,
              fmt::format("{} is not a whole number, as {} requires", core::Abbreviate(v), name));
          return;
        }
        // A number written as a double (exponent or fraction) near the int64 limits cannot be
        // told apart from its neighbours, so the limits themselves are excluded: +-2^63 are
        // exact doubles and mark the first values outside a long.
        in_range = d > static_cast<double>(lo) - (is_int ? 1 : 0) &&
                   d < static_cast<double>(hi) + (is_int ? 1 : 0) &&
                   d < -static_cast<double>(std::numeric_limits<std::int64_t>::min());
      }
      if (!in_range) {
        Add(out, "VALUE_OUT_OF_RANGE", ptr,
            fmt::format("{} is outside the range of {} ({} to {})", core::Abbreviate(v), name, lo,
                        hi));
      }
      return;
    }
    case SchemaKind::kDate:
    case SchemaKind::kTime:
    case SchemaKind::kDateTime:
    case SchemaKind::kDuration: {
      static constexpr const char* kForms[] = {"an RFC 3339 date (2024-05-31)",
                                               "an RFC 3339 date-time (2024-05-31T13:45:00Z)", "",
                                               "an ISO 8601 duration (PT1H30M)"};
      const char* form = schema.kind == SchemaKind::kDate       ? kForms[0]
                         : schema.kind == SchemaKind::kDateTime ? kForms[1]
                         : schema.kind == SchemaKind::kDuration
                             ? kForms[3]
                             : "an RFC 3339 time with offset (13:45:00Z)";
      if (!v.is_string()) {
        TypeMismatch(out, ptr, fmt::format("a string holding {}", form), v);
        return;
      }
      std::string_view s = v.get_string();
      bool ok = schema.kind == SchemaKind::kDate       ? IsValidDate(s)
                : schema.kind == SchemaKind::kDateTime ? IsValidDateTime(s)
                : schema.kind == SchemaKind::kTime     ? IsValidTime(s)
                                                       : IsValidDuration(s);
      if (!ok) {
        Add(out, "VALUE_INVALID_FORMAT", ptr, fmt::format("'{}' is not {}", s.substr(0, 80), form));
      }
      return;
    }
    case SchemaKind::kPoint:
    case SchemaKind::kLineString:
    case SchemaKind::kPolygon:
    case SchemaKind::kMultiPoint:
    case SchemaKind::kMultiLineString:
    case SchemaKind::kMultiPolygon:
      ValidateGeo(schema.kind, v, ptr, out);
      return;
    case SchemaKind::kArray: {
      if (!v.is_array()) {
        TypeMismatch(out, ptr, "an array", v);
        return;
      }
      const auto& a = v.get_array();
      if (schema.element_schema.schema == nullptr) return;
      for (std::size_t i = 0; i < a.size(); ++i) {
        ValidateValue(*schema.element_schema.schema, a[i], PointerAppend(ptr, i), out);
      }
      return;
    }
    case SchemaKind::kEnum: {
      if (schema.value_schema == SchemaKind::kString ? !v.is_string() : !IsNumber(v)) {
        TypeMismatch(out, ptr,
                     schema.value_schema == SchemaKind::kString ? "a string enum value"
                                                                : "an integer enum value",
                     v);
        return;
      }
      for (const auto& e : schema.enum_values) {
        if (e.value == v) return;
        // 1 and 1.0 are the same integer enum value.
        if (IsNumber(v) && IsNumber(e.value) &&
            v.to_number<double>() == e.value.to_number<double>()) {
          return;
        }
      }
      std::string allowed;
      for (std::size_t i = 0; i < schema.enum_values.size() && i < 20; ++i) {
        if (i) allowed += ", ";
        allowed += json::serialize(schema.enum_values[i].value);
      }
      if (schema.enum_values.size() > 20) allowed += ", ...";
      Add(out, "VALUE_NOT_IN_ENUM", ptr,
          fmt::format("{} is not one of the enum values [{}]", core::Abbreviate(v), allowed));
      return;
    }
    case SchemaKind::kMap: {
      if (!v.is_object()) {
        TypeMismatch(out, ptr, "an object (a Map)", v);
        return;
      }
      if (schema.map_value.schema.schema == nullptr) return;
      for (const auto& kv : v.get_object()) {
        ValidateValue(*schema.map_value.schema.schema, kv.value(), PointerAppend(ptr, kv.key()),
                      out);
      }
      return;
    }
    case SchemaKind::kObject: {
      if (!v.is_object()) {
        TypeMismatch(out, ptr, "an object", v);
        return;
      }
      for (const auto& kv : v.get_object()) {
        const NamedSchema* field = nullptr;
        for (const auto& f : schema.fields) {
          if (f.name == kv.key()) field = &f;
        }
        std::string p = PointerAppend(ptr, kv.key());
        if (field == nullptr) {
          std::string names;
          for (const auto& f : schema.fields) names += (names.empty() ? "" : ", ") + f.name;
          Add(out, "VALUE_UNKNOWN_FIELD", p,
              fmt::format("'{}' is not a field of this Object (fields: {})", kv.key(), names));
        } else if (field->schema.schema != nullptr) {
          ValidateValue(*field->schema.schema, kv.value(), p, out);
        }
      }
      return;
    }
  }
}

ValueErrors ValidateElementValue(const ResolvedInterface& iface, std::string_view path,
                                 const json::value& value) {
  ValueErrors out;
  std::size_t slash = path.find('/');
  std::string_view head = path.substr(0, slash);
  const ResolvedContent* rc = iface.Find(head);
  if (rc != nullptr && slash != std::string_view::npos &&
      rc->content->kind == ContentKind::kComponent) {
    const ResolvedInterface* comp = iface.ComponentInterface(head);
    if (comp != nullptr) return ValidateElementValue(*comp, path.substr(slash + 1), value);
  }
  if (rc == nullptr || slash != std::string_view::npos ||
      (rc->content->kind != ContentKind::kProperty &&
       rc->content->kind != ContentKind::kTelemetry)) {
    Add(&out, "VALUE_UNKNOWN_ELEMENT", "",
        rc == nullptr || slash != std::string_view::npos
            ? fmt::format("{} has no Property or Telemetry '{}'", iface.id(), path)
            : fmt::format("'{}' in {} is a {}, not a Property or Telemetry", path, iface.id(),
                          ContentKindName(rc->content->kind)));
    return out;
  }
  if (rc->content->schema.schema != nullptr) {
    ValidateValue(*rc->content->schema.schema, value, "", &out);
  }
  return out;
}

ValueErrors ValidateCommandRequest(const ResolvedInterface& iface, std::string_view name,
                                   const json::value& request) {
  ValueErrors out;
  const ResolvedContent* rc = iface.Find(name);
  if (rc == nullptr || rc->content->kind != ContentKind::kCommand) {
    Add(&out, "VALUE_UNKNOWN_ELEMENT", "", fmt::format("{} has no Command '{}'", iface.id(), name));
    return out;
  }
  const auto& req = rc->content->request;
  if (!req) {
    if (!request.is_null()) {
      Add(&out, "VALUE_TYPE_MISMATCH", "",
          fmt::format("Command '{}' takes no request payload", name));
    }
    return out;
  }
  if (request.is_null()) {
    if (!req->nullable) {
      Add(&out, "VALUE_TYPE_MISMATCH", "",
          fmt::format("Command '{}' needs a request '{}'", name, req->name));
    }
    return out;
  }
  if (req->schema.schema != nullptr) ValidateValue(*req->schema.schema, request, "", &out);
  return out;
}

}  // namespace doppel::model
