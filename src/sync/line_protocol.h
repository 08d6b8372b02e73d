// doppel::sync — InfluxDB line protocol (1.x): the parser for HTTP /write ingest, and a writer.
//
// What it does
//   Turns a /write request body into points, one per line, exactly as InfluxDB 1.x reads it
//   (docs: "InfluxDB line protocol reference", v1), so Telegraf and the InfluxDB client libraries
//   can write to doppel unchanged. A bad line is reported with its line, column, a stable code and
//   a message; the lines around it are still parsed. FormatLine writes a point back.
//
// How to use it
//   auto precision = ParsePrecision(query_param);          // "n", "u", "ms", "s", "m", "h", ...
//   std::vector<LinePoint> points;  std::vector<LineError> errors;
//   ParseLines(body, *precision, &points, &errors);
//   // or, without copying names and strings out of the body:
//   ParseLinesInto(body, *precision, [&](const LinePointView& p) { ... }, on_error);
//
// Syntax (one point per line; lines end in "\n" or "\r\n")
//   <measurement>[,<tag_key>=<tag_value>...] <field_key>=<field_value>[,...] [<timestamp>]
//   * Sections are separated by one or more spaces; leading spaces/tabs and trailing spaces are
//     ignored. Blank lines and lines whose first non-blank character is '#' are skipped.
//   * Escapes: measurement `\,` `\ `; tag keys, tag values and field keys `\,` `\=` `\ `; string
//     field values `\"` `\\`. A backslash before any other character is a literal backslash (and
//     does not escape the character after it), so `a\\,b` as a measurement is `a\,b`. There is no
//     "bad escape" error: InfluxDB has none either.
//   * Field values: float `1`, `-1.5`, `1.`, `.5`, `1e-3`, `1.E+78` (IEEE-754 double; NaN and
//     ±Inf are rejected, a literal that underflows reads as ±0); integer `-12i` (int64); unsigned
//     `12u` (uint64); boolean t T true True TRUE / f F false False FALSE; string `"..."` (may
//     contain raw newlines, as InfluxDB and Telegraf allow; at most 1 MiB after unescaping).
//   * Timestamp: optional signed integer in the request's precision, scaled to nanoseconds.
//     Valid range after scaling: -9223372036854775806 ..= 9223372036854775806 (InfluxDB's
//     MinNanoTime/MaxNanoTime). Absent: timestamp_ns is empty and the writer assigns its clock.
//
// Decisions where the spec is loose (InfluxDB 1.x behaviour followed unless noted)
//   * Duplicate field keys in one line: the last value wins (InfluxDB 1.x); not an error.
//   * Duplicate tag keys: LP_DUPLICATE_TAG (InfluxDB 1.x: "duplicate tags").
//   * Tag or field key `time`, `_measurement` or `_field`: LP_RESERVED_KEY, the line is rejected
//     (the v1 reference: such writes are rejected/discarded; 1.x drops only a `time` field).
//   * Unsigned `u` fields are accepted (InfluxDB 2.x; 1.x accepts them only when enabled).
//   * Every line must be valid UTF-8 (LP_INVALID_UTF8); 1.x stores raw bytes, doppel does not.
//   * Tags stay in input order (InfluxDB sorts them into its series key; doppel does not need to).
//   * After an error, parsing resumes at the next "\n" after what was read of the bad line (a
//     string value spanning lines stays in its line); after LP_UNTERMINATED_STRING, at the next
//     "\n" after the opening quote (InfluxDB would swallow the rest of the body into the string).
//
// Error codes (stable; also in docs/ingest-errors.md). Column = 1-based byte offset in its line.
//   LP_EMPTY_MEASUREMENT        the line starts with ',' (no measurement name)
//   LP_BAD_TAG                  empty tag key, tag key without '=', empty tag value, or an
//                               unescaped '=' in a tag value
//   LP_DUPLICATE_TAG            the same tag key twice in one line
//   LP_MISSING_FIELDS           the line ends after the measurement or tag set
//   LP_BAD_FIELD                empty field key or a field key without '=' ("a=1,b", "a=1,")
//   LP_BAD_FIELD_VALUE          a field value that is missing or is not a float, integer,
//                               unsigned, boolean or string (NaN, Inf, 1.5i, -1u, tru, "x"y)
//   LP_VALUE_OUT_OF_RANGE       integer outside int64, unsigned outside uint64, float beyond
//                               ±1.7976931348623157e308
//   LP_UNTERMINATED_STRING      a string field value without its closing quote
//   LP_STRING_TOO_LONG          a string field value longer than 1048576 bytes (InfluxDB's
//                               MaxFieldValueLength)
//   LP_BAD_TIMESTAMP            the timestamp is not an optionally signed decimal integer
//   LP_TIMESTAMP_OUT_OF_RANGE   the timestamp, scaled to nanoseconds, leaves the valid range
//   LP_UNEXPECTED_TEXT          text after the timestamp; for ParseLine, a second line
//   LP_KEY_TOO_LONG             measurement and tag set (as written) over 65535 bytes, or that plus
//                               4 plus a field key over 65535 (InfluxDB's MaxKeyLength)
//   LP_RESERVED_KEY             tag or field key `time`, `_measurement` or `_field`
//   LP_INVALID_UTF8             the line is not valid UTF-8
//   LP_NO_POINT                 (ParseLine only) the line is blank or a comment
//   LP_BAD_PRECISION            (ParsePrecision) not one of n ns u us ms s m h
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace doppel::sync {

// Unit of the timestamps in a request (the `precision` parameter of /write).
enum class Precision { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds, kMinutes, kHours };

// Reads the /write `precision` parameter: "n" or "ns", "u" or "us", "ms", "s", "m", "h"; the empty
// string (parameter absent) means nanoseconds. Error: LP_BAD_PRECISION.
core::Result<Precision> ParsePrecision(std::string_view text);

// Nanoseconds in one unit of `p` (1 for kNanoseconds ... 3'600'000'000'000 for kHours).
std::int64_t NanosecondsPer(Precision p);

using FieldValue = std::variant<double, std::int64_t, std::uint64_t, bool, std::string>;

struct LineField {
  std::string key;
  FieldValue value;
  bool operator==(const LineField&) const = default;
};

// One parsed line. Names and strings are unescaped. Fields: at least one, keys unique.
struct LinePoint {
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;  // input order, keys unique
  std::vector<LineField> fields;
  std::optional<std::int64_t> timestamp_ns;  // empty: no timestamp in the line
  std::size_t line = 0;                      // 1-based line of the body where the point starts
  bool operator==(const LinePoint&) const = default;
};

struct LineError {
  std::size_t line = 0;    // 1-based
  std::size_t column = 0;  // 1-based byte offset within that line
  std::string code;        // LP_...
  std::string message;     // what is wrong, naming the key or value

  // "line 3, column 7: LP_BAD_FIELD_VALUE: ..."
  std::string ToString() const;
  // Status with this code; the message starts with "line L, column C: ".
  core::Status ToStatus() const;
};

// Parses one point. `text` holds exactly one line (a final "\n" or "\r\n" is allowed); the point
// gets `line_no` as its line, and errors count lines from it. Errors: any LP_ code above, including
// LP_NO_POINT for a blank or comment line and LP_UNEXPECTED_TEXT for a second line.
core::Result<LinePoint> ParseLine(std::string_view text, Precision precision,
                                  std::size_t line_no = 1);

// Parses a whole /write body, appending each good line's point to *out and each bad line's error
// to *errors, in body order; a bad line never stops the batch. REQUIRES: out != nullptr. `errors`
// may be nullptr (errors are then dropped).
void ParseLines(std::string_view body, Precision precision, std::vector<LinePoint>* out,
                std::vector<LineError>* errors);

// ---- Zero-copy form -------------------------------------------------------------------------
// The same parser, handing each point to a callback as views. A view points into `body` where the
// text needed no unescaping, else into the parser's scratch space: it is valid only during the
// callback. Keep what you need (or ToLinePoint) before returning.

using FieldValueView = std::variant<double, std::int64_t, std::uint64_t, bool, std::string_view>;

struct LineFieldView {
  std::string_view key;
  FieldValueView value;
};

struct LinePointView {
  std::string_view measurement;
  std::span<const std::pair<std::string_view, std::string_view>> tags;
  std::span<const LineFieldView> fields;
  std::optional<std::int64_t> timestamp_ns;
  std::size_t line = 0;
};

LinePoint ToLinePoint(const LinePointView& view);

struct ParseCounts {
  std::size_t points = 0;
  std::size_t errors = 0;
};

// Calls on_point for every good line and on_error (may be empty) for every bad one, in body order.
ParseCounts ParseLinesInto(std::string_view body, Precision precision,
                           const std::function<void(const LinePointView&)>& on_point,
                           const std::function<void(const LineError&)>& on_error);

// ---- Writing ----------------------------------------------------------------------------------

// The point as one line of line protocol, without a line terminator; the timestamp (if any) in
// nanoseconds. Escapes as the parser expects, so ParseLine(FormatLine(p), kNanoseconds, p.line)
// gives back p for every point the parser can produce. (Points it cannot produce, e.g. a name
// ending in a backslash or containing "\n", a NaN, or no fields, have no faithful line.)
std::string FormatLine(const LinePoint& point);

// Appends FormatLine(point) and "\n" to *out.
void AppendLine(const LinePoint& point, std::string* out);

}  // namespace doppel::sync
