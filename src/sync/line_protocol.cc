#include "sync/line_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <numeric>

namespace doppel::sync {
namespace {

// InfluxDB 1.x limits (models.MaxKeyLength, tsm1's "#!~#" field separator,
// tsdb.MaxFieldValueLength, models.MinNanoTime/MaxNanoTime).
constexpr std::size_t kMaxKeyLength = 65535;
constexpr std::size_t kFieldKeySeparatorLength = 4;
constexpr std::size_t kMaxStringValueLength = 1048576;
constexpr std::int64_t kMinTimestamp = std::numeric_limits<std::int64_t>::min() + 2;
constexpr std::int64_t kMaxTimestamp = std::numeric_limits<std::int64_t>::max() - 1;

// Up to this many tags or fields, duplicate keys are found by comparing pairs; above it, by
// sorting (a line with 100k fields must not cost 10^10 comparisons).
constexpr std::size_t kPairwiseLimit = 16;

// Messages quote at most this many bytes of the offending text.
constexpr std::size_t kQuoteLimit = 40;

using ByteSet = std::array<bool, 256>;

constexpr ByteSet MakeSet(std::string_view chars) {
  ByteSet set{};
  for (char c : chars) set[static_cast<unsigned char>(c)] = true;
  return set;
}

// Bytes at which a scan stops to look closer. '\r' ends a token only right before "\n" or at the
// end of the input; '\\' may start an escape.
constexpr ByteSet kMeasurementStop = MakeSet(", \n\r\\");
constexpr ByteSet kKeyStop = MakeSet(",= \n\r\\");  // tag keys, tag values, field keys
constexpr ByteSet kValueStop = MakeSet(", \n\r");   // unquoted field values
constexpr ByteSet kTimestampStop = MakeSet(" \n\r");
constexpr ByteSet kStringStop = MakeSet("\"\\\n");
constexpr ByteSet kLineEndStop = MakeSet("\n\r");

// The characters a backslash escapes in each kind of token (InfluxDB 1.x line protocol reference,
// "Special characters"). Before any other character a backslash is literal.
constexpr ByteSet kMeasurementEscapes = MakeSet(", ");
constexpr ByteSet kKeyEscapes = MakeSet(",= ");
constexpr ByteSet kStringEscapes = MakeSet("\"\\");

inline unsigned char Byte(char c) { return static_cast<unsigned char>(c); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or values above
// U+10FFFF), or 0 if the bytes there are not one.
std::size_t Utf8SequenceLength(const unsigned char* p, std::size_t avail) {
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (avail < 3) return 0;
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = c == 0xED ? 0x9F : 0xBF;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
  }
  if (c < 0xF5) {
    if (avail < 4) return 0;
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
  }
  return 0;
}

// Offset of the first byte of `s` that is not part of valid UTF-8, or npos.
std::size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII, eight bytes at a time: the common case for metrics.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    const std::size_t len = Utf8SequenceLength(p + i, n - i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

// Offending input for a message: in double quotes, cut at kQuoteLimit bytes, control characters
// and invalid UTF-8 as \xNN (messages end up in JSON responses and logs).
std::string Quote(std::string_view text) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size() && i < kQuoteLimit) {
    const unsigned char c = Byte(text[i]);
    if (c >= 0x20 && c != 0x7F) {
      const std::size_t len = Utf8SequenceLength(
          reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i);
      if (len > 0) {
        out.append(text.substr(i, len));
        i += len;
        continue;
      }
    }
    out += fmt::format("\\x{:02X}", c);
    ++i;
  }
  if (i < text.size()) out += "...";
  out += '"';
  return out;
}

// Appends `raw` to *out with each escape pair of `escapes` replaced by its character.
void AppendUnescaped(std::string_view raw, const ByteSet& escapes, std::string* out) {
  const char* p = raw.data();
  const char* const end = p + raw.size();
  while (p < end) {
    const auto* bs = static_cast<const char*>(std::memchr(p, '\\', end - p));
    if (bs == nullptr) {
      out->append(p, end);
      return;
    }
    out->append(p, bs);
    if (bs + 1 < end && escapes[Byte(bs[1])]) {
      out->push_back(bs[1]);
      p = bs + 2;
    } else {
      out->push_back('\\');
      p = bs + 1;
    }
  }
}

void AppendEscaped(std::string_view text, const ByteSet& specials, std::string* out) {
  for (char c : text) {
    if (specials[Byte(c)]) out->push_back('\\');
    out->push_back(c);
  }
}

bool IsReservedKey(std::string_view key) {
  return key == "time" || key == "_measurement" || key == "_field";
}

enum class NumberStatus { kOk, kSyntax, kOutOfRange };

// [-]digits, as an int64.
NumberStatus ParseInteger(std::string_view t, std::int64_t* out) {
  std::size_t i = !t.empty() && t[0] == '-' ? 1 : 0;
  if (i == t.size()) return NumberStatus::kSyntax;
  for (; i < t.size(); ++i) {
    if (!IsDigit(t[i])) return NumberStatus::kSyntax;
  }
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  if (ec == std::errc::result_out_of_range) return NumberStatus::kOutOfRange;
  return ec == std::errc() && ptr == t.data() + t.size() ? NumberStatus::kOk
                                                         : NumberStatus::kSyntax;
}

// digits, as a uint64.
NumberStatus ParseUnsigned(std::string_view t, std::uint64_t* out) {
  if (t.empty()) return NumberStatus::kSyntax;
  for (char c : t) {
    if (!IsDigit(c)) return NumberStatus::kSyntax;
  }
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  if (ec == std::errc::result_out_of_range) return NumberStatus::kOutOfRange;
  return ec == std::errc() && ptr == t.data() + t.size() ? NumberStatus::kOk
                                                         : NumberStatus::kSyntax;
}

// The float grammar of line protocol:
//   [-] ( digits [ "." [digits] ] [exp] | "." digits [exp] ),  exp = (e|E) [+|-] digits
// No NaN, Inf, hex or leading '+'. A literal too small for a double reads as ±0 (as Go's
// ParseFloat, which InfluxDB uses); one too large is out of range.
NumberStatus ParseFloat(std::string_view t, double* out) {
  const std::size_t n = t.size();
  std::size_t i = 0;
  const bool negative = n > 0 && t[0] == '-';
  if (negative) ++i;
  const std::size_t int_begin = i;
  while (i < n && IsDigit(t[i])) ++i;
  const std::size_t int_digits = i - int_begin;
  std::size_t frac_begin = i;
  std::size_t frac_digits = 0;
  if (i < n && t[i] == '.') {
    frac_begin = ++i;
    while (i < n && IsDigit(t[i])) ++i;
    frac_digits = i - frac_begin;
  }
  if (int_digits + frac_digits == 0) return NumberStatus::kSyntax;
  long long exponent = 0;
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < n && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    const std::size_t exp_begin = i;
    for (; i < n && IsDigit(t[i]); ++i) {
      exponent = std::min<long long>(exponent * 10 + (t[i] - '0'), 1'000'000'000);
    }
    if (i == exp_begin) return NumberStatus::kSyntax;
    if (exp_negative) exponent = -exponent;
  }
  if (i != n) return NumberStatus::kSyntax;

  auto [ptr, ec] = std::from_chars(t.data(), t.data() + n, *out, std::chars_format::general);
  if (ec == std::errc() && ptr == t.data() + n) return NumberStatus::kOk;
  if (ec != std::errc::result_out_of_range) return NumberStatus::kSyntax;
  // Out of range: overflow if the literal is at least 1 (its first nonzero digit has a
  // non-negative decimal position), underflow otherwise.
  long long order = 0;  // the value lies in [10^(order-1), 10^order)
  bool nonzero = false;
  for (std::size_t k = int_begin; k < int_begin + int_digits && !nonzero; ++k) {
    if (t[k] != '0') {
      order = static_cast<long long>(int_digits - (k - int_begin));
      nonzero = true;
    }
  }
  for (std::size_t k = frac_begin; k < frac_begin + frac_digits && !nonzero; ++k) {
    if (t[k] != '0') {
      order = -static_cast<long long>(k - frac_begin);
      nonzero = true;
    }
  }
  if (nonzero && order + exponent > 0) return NumberStatus::kOutOfRange;
  *out = negative ? -0.0 : 0.0;
  return NumberStatus::kOk;
}

bool ParseBoolean(std::string_view t, bool* out) {
  if (t == "t" || t == "T" || t == "true" || t == "True" || t == "TRUE") {
    *out = true;
    return true;
  }
  if (t == "f" || t == "F" || t == "false" || t == "False" || t == "FALSE") {
    *out = false;
    return true;
  }
  return false;
}

// "nan", "-Inf", "infinity", ...: worth a specific message.
bool LooksLikeNanOrInf(std::string_view t) {
  if (!t.empty() && t[0] == '-') t.remove_prefix(1);
  if (t.size() < 3) return false;
  char head[3];
  for (int k = 0; k < 3; ++k) head[k] = static_cast<char>(t[k] | 0x20);  // ASCII lower case
  const std::string_view h(head, 3);
  return h == "nan" || h == "inf";
}

std::string_view PrecisionName(Precision p) {
  switch (p) {
    case Precision::kNanoseconds:
      return "ns";
    case Precision::kMicroseconds:
      return "u";
    case Precision::kMilliseconds:
      return "ms";
    case Precision::kSeconds:
      return "s";
    case Precision::kMinutes:
      return "m";
    case Precision::kHours:
      return "h";
  }
  return "ns";
}

// A token as written: `text` still holds its escapes when `escaped`.
struct RawToken {
  std::string_view text;
  bool escaped = false;
};

struct RawTag {
  RawToken key;
  RawToken value;
  std::size_t key_pos = 0;
};

struct RawField {
  RawToken key;
  std::size_t key_pos = 0;
  FieldValueView value;  // numbers and booleans; strings are filled in from `text`
  bool is_string = false;
  RawToken text;  // kString: between the quotes
};

// The one line protocol parser. Walks the body once: a point's end is found while parsing it
// (a string field value may contain newlines, so lines cannot be split beforehand). Holds the
// scratch space the views of the current point point into, reused from line to line so that a
// steady stream of lines allocates nothing here.
//
// Positions are byte offsets into the body. A point's line starts at line_begin_ (line number
// line_); only string values can carry it over further newlines, counted in string_newlines_.
class Parser {
 public:
  enum class Step { kPoint, kError, kEnd };

  Parser(std::string_view body, Precision precision, std::size_t first_line)
      : s_(body),
        n_(body.size()),
        multiplier_(NanosecondsPer(precision)),
        precision_(precision),
        line_(first_line) {}

  // Parses up to the next point or bad line, skipping blank and comment lines.
  Step Next() {
    while (pos_ < n_) {
      line_begin_ = pos_;
      std::size_t i = pos_;
      while (i < n_ && (s_[i] == ' ' || s_[i] == '\t')) ++i;
      if (i >= n_) {
        pos_ = n_;
        break;
      }
      if (s_[i] == '#' || AtLineEnd(i)) {  // comment or blank line
        const auto* nl = static_cast<const char*>(std::memchr(s_.data() + i, '\n', n_ - i));
        if (nl == nullptr) {
          pos_ = n_;
          break;
        }
        pos_ = static_cast<std::size_t>(nl - s_.data()) + 1;
        ++line_;
        continue;
      }
      pos_ = i;
      if (ParsePoint()) return Step::kPoint;
      SkipBadLine();
      return Step::kError;
    }
    return Step::kEnd;
  }

  const LinePointView& point() const { return view_; }
  const LineError& error() const { return error_; }

 private:
  bool AtLineEnd(std::size_t i) const {
    return i >= n_ || s_[i] == '\n' || (s_[i] == '\r' && (i + 1 >= n_ || s_[i + 1] == '\n'));
  }

  // Records an error at byte `pos` and returns false. Parsing resumes at the next newline after
  // what was read of the line: a string value that spans lines stays part of its line, whichever
  // check fails (an unterminated string has not been read: it resumes after the opening quote).
  bool Fail(std::size_t pos, std::string_view code, std::string message) {
    std::size_t line = line_;
    std::size_t line_start = line_begin_;
    for (std::size_t i = line_begin_; i < pos && i < n_; ++i) {
      if (s_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    error_.line = line;
    error_.column = pos - line_start + 1;
    error_.code.assign(code);
    error_.message = std::move(message);
    resume_ = std::max(pos, pos_);
    return false;
  }

  void SkipBadLine() {
    std::size_t i = std::min(resume_, n_);
    const auto* nl = static_cast<const char*>(std::memchr(s_.data() + i, '\n', n_ - i));
    const std::size_t next = nl == nullptr ? n_ : static_cast<std::size_t>(nl - s_.data()) + 1;
    line_ += static_cast<std::size_t>(std::count(s_.data() + line_begin_, s_.data() + next, '\n'));
    pos_ = next;
  }

  void SkipSpaces() {
    while (pos_ < n_ && s_[pos_] == ' ') ++pos_;
  }

  // Scans a measurement, tag key, tag value or field key up to an unescaped byte of `stop`.
  RawToken ScanName(const ByteSet& stop, const ByteSet& escapes) {
    const std::size_t begin = pos_;
    std::size_t i = pos_;
    bool escaped = false;
    for (;;) {
      while (i < n_ && !stop[Byte(s_[i])]) ++i;
      if (i >= n_) break;
      if (s_[i] == '\\') {
        if (i + 1 < n_ && escapes[Byte(s_[i + 1])]) {
          escaped = true;
          i += 2;
        } else {
          ++i;  // a literal backslash
        }
        continue;
      }
      if (s_[i] == '\r' && !AtLineEnd(i)) {
        ++i;  // a lone carriage return is data
        continue;
      }
      break;
    }
    pos_ = i;
    return {s_.substr(begin, i - begin), escaped};
  }

  // Scans an unquoted value up to a byte of `stop` (no escapes).
  std::string_view ScanPlain(const ByteSet& stop) {
    const std::size_t begin = pos_;
    std::size_t i = pos_;
    for (;;) {
      while (i < n_ && !stop[Byte(s_[i])]) ++i;
      if (i < n_ && s_[i] == '\r' && !AtLineEnd(i)) {
        ++i;
        continue;
      }
      break;
    }
    pos_ = i;
    return s_.substr(begin, i - begin);
  }

  bool ParsePoint() {
    tags_.clear();
    fields_.clear();
    string_newlines_ = 0;
    view_.line = line_;
    const std::size_t start = pos_;

    // Measurement. The line starts with a non-blank byte that is not '#', so an empty name means
    // a ',' here.
    const RawToken measurement = ScanName(kMeasurementStop, kMeasurementEscapes);
    if (measurement.text.empty()) {
      return Fail(pos_, "LP_EMPTY_MEASUREMENT", "the line has no measurement name before ','");
    }
    if (AtLineEnd(pos_)) {
      return Fail(pos_, "LP_MISSING_FIELDS",
                  "the line ends after measurement " + Quote(measurement.text) +
                      "; a point needs at least one field");
    }

    // Tag set.
    if (s_[pos_] == ',') {
      do {
        ++pos_;
        const std::size_t key_pos = pos_;
        const RawToken key = ScanName(kKeyStop, kKeyEscapes);
        if (key.text.empty()) return Fail(key_pos, "LP_BAD_TAG", "empty tag key");
        if (AtLineEnd(pos_) || s_[pos_] != '=') {
          return Fail(pos_, "LP_BAD_TAG", "tag key " + Quote(key.text) + " has no '=' and value");
        }
        ++pos_;
        const std::size_t value_pos = pos_;
        const RawToken value = ScanName(kKeyStop, kKeyEscapes);
        if (!AtLineEnd(pos_) && s_[pos_] == '=') {
          return Fail(pos_, "LP_BAD_TAG",
                      "unescaped '=' in the value of tag " + Quote(key.text) + " (write \\=)");
        }
        if (value.text.empty()) {
          return Fail(value_pos, "LP_BAD_TAG",
                      "tag " + Quote(key.text) + " has no value (omit the tag instead)");
        }
        tags_.push_back({key, value, key_pos});
      } while (!AtLineEnd(pos_) && s_[pos_] == ',');
      if (AtLineEnd(pos_)) {
        return Fail(pos_, "LP_MISSING_FIELDS",
                    "the line ends after the tag set; a point needs at least one field");
      }
    }

    // Here s_[pos_] == ' '. The series key is the measurement and tag set as written.
    const std::size_t key_length = pos_ - start;
    if (key_length > kMaxKeyLength) {
      return Fail(start, "LP_KEY_TOO_LONG",
                  fmt::format("measurement and tag set are {} bytes long; the limit is {}",
                              key_length, kMaxKeyLength));
    }
    SkipSpaces();
    if (AtLineEnd(pos_)) {
      return Fail(pos_, "LP_MISSING_FIELDS", "no field set; a point needs at least one field");
    }

    // Field set.
    for (;;) {
      RawField field;
      field.key_pos = pos_;
      field.key = ScanName(kKeyStop, kKeyEscapes);
      if (field.key.text.empty()) return Fail(pos_, "LP_BAD_FIELD", "empty field key");
      if (AtLineEnd(pos_) || s_[pos_] != '=') {
        return Fail(pos_, "LP_BAD_FIELD",
                    "field key " + Quote(field.key.text) + " has no '=' and value");
      }
      if (key_length + kFieldKeySeparatorLength + field.key.text.size() > kMaxKeyLength) {
        return Fail(field.key_pos, "LP_KEY_TOO_LONG",
                    fmt::format("series key and field key {} together exceed {} bytes",
                                Quote(field.key.text), kMaxKeyLength));
      }
      ++pos_;
      if (!ParseFieldValue(&field)) return false;
      fields_.push_back(field);
      if (AtLineEnd(pos_) || s_[pos_] == ' ') break;
      ++pos_;  // ','
    }

    // Timestamp.
    std::optional<std::int64_t> timestamp;
    SkipSpaces();
    if (!AtLineEnd(pos_)) {
      const std::size_t ts_pos = pos_;
      const std::string_view text = ScanPlain(kTimestampStop);
      std::int64_t ns = 0;
      if (!ParseTimestamp(text, ts_pos, &ns)) return false;
      timestamp = ns;
      SkipSpaces();
      if (!AtLineEnd(pos_)) {
        const std::size_t extra_pos = pos_;
        const std::string_view extra = ScanPlain(kLineEndStop);
        return Fail(extra_pos, "LP_UNEXPECTED_TEXT",
                    "unexpected text " + Quote(extra) + " after the timestamp");
      }
    }

    const std::size_t bad = FindInvalidUtf8(s_.substr(start, pos_ - start));
    if (bad != std::string_view::npos) {
      return Fail(start + bad, "LP_INVALID_UTF8",
                  fmt::format("byte 0x{:02X} is not valid UTF-8", Byte(s_[start + bad])));
    }
    if (!BuildView(measurement, timestamp)) return false;

    // Consume the line terminator.
    if (pos_ < n_ && s_[pos_] == '\r') ++pos_;
    line_ += string_newlines_;
    if (pos_ < n_ && s_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    return true;
  }

  // At pos_: the first byte after '='. Leaves pos_ after the value, at ',', ' ' or the line end.
  bool ParseFieldValue(RawField* field) {
    const std::size_t value_pos = pos_;
    if (AtLineEnd(pos_) || s_[pos_] == ',' || s_[pos_] == ' ') {
      return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                  "field " + Quote(field->key.text) + " has no value");
    }
    const char first = s_[pos_];
    if (first == '"') return ParseString(field);

    const std::string_view t = ScanPlain(kValueStop);
    if (first == 't' || first == 'T' || first == 'f' || first == 'F') {
      bool b = false;
      if (!ParseBoolean(t, &b)) {
        return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                    "value " + Quote(t) + " of field " + Quote(field->key.text) +
                        " is not a boolean (t, T, true, True, TRUE, f, F, false, False, FALSE); "
                        "string values need double quotes");
      }
      field->value = b;
      return true;
    }
    if (first != '-' && first != '.' && !IsDigit(first)) {
      return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                  LooksLikeNanOrInf(t)
                      ? "value " + Quote(t) + " of field " + Quote(field->key.text) +
                            ": NaN and Inf are not supported"
                      : "value " + Quote(t) + " of field " + Quote(field->key.text) +
                            " is not a number, boolean or string (strings need double quotes)");
    }

    const char suffix = t.back();
    if (suffix == 'i') {
      std::int64_t v = 0;
      switch (ParseInteger(t.substr(0, t.size() - 1), &v)) {
        case NumberStatus::kOk:
          field->value = v;
          return true;
        case NumberStatus::kOutOfRange:
          return Fail(value_pos, "LP_VALUE_OUT_OF_RANGE",
                      "integer " + Quote(t) + " of field " + Quote(field->key.text) +
                          " is outside int64 (-9223372036854775808 to 9223372036854775807)");
        case NumberStatus::kSyntax:
          break;
      }
      return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                  "value " + Quote(t) + " of field " + Quote(field->key.text) +
                      " is not an integer (digits with an optional '-', then 'i')");
    }
    if (suffix == 'u') {
      std::uint64_t v = 0;
      switch (ParseUnsigned(t.substr(0, t.size() - 1), &v)) {
        case NumberStatus::kOk:
          field->value = v;
          return true;
        case NumberStatus::kOutOfRange:
          return Fail(value_pos, "LP_VALUE_OUT_OF_RANGE",
                      "unsigned integer " + Quote(t) + " of field " + Quote(field->key.text) +
                          " is outside uint64 (0 to 18446744073709551615)");
        case NumberStatus::kSyntax:
          break;
      }
      return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                  "value " + Quote(t) + " of field " + Quote(field->key.text) +
                      " is not an unsigned integer (digits, then 'u')");
    }
    double d = 0;
    switch (ParseFloat(t, &d)) {
      case NumberStatus::kOk:
        field->value = d;
        return true;
      case NumberStatus::kOutOfRange:
        return Fail(value_pos, "LP_VALUE_OUT_OF_RANGE",
                    "float " + Quote(t) + " of field " + Quote(field->key.text) +
                        " is outside the range of a 64-bit float");
      case NumberStatus::kSyntax:
        break;
    }
    return Fail(value_pos, "LP_BAD_FIELD_VALUE",
                LooksLikeNanOrInf(t)
                    ? "value " + Quote(t) + " of field " + Quote(field->key.text) +
                          ": NaN and Inf are not supported"
                    : "value " + Quote(t) + " of field " + Quote(field->key.text) +
                          " is not a number (float 1.5, -2e-3; integer 7i; unsigned 7u)");
  }

  // At pos_: the opening quote. A string may span lines; \" and \\ are its escapes.
  bool ParseString(RawField* field) {
    const std::size_t quote_pos = pos_;
    std::size_t i = pos_ + 1;
    std::size_t escape_pairs = 0;
    std::size_t newlines = 0;
    for (;;) {
      while (i < n_ && !kStringStop[Byte(s_[i])]) ++i;
      if (i >= n_) {
        // Parsing resumes at the first newline after the opening quote.
        return Fail(
            quote_pos, "LP_UNTERMINATED_STRING",
            "the string value of field " + Quote(field->key.text) + " has no closing double quote");
      }
      const char c = s_[i];
      if (c == '"') break;
      if (c == '\\') {
        if (i + 1 < n_ && kStringEscapes[Byte(s_[i + 1])]) {
          ++escape_pairs;
          i += 2;
        } else {
          ++i;
        }
        continue;
      }
      ++newlines;  // '\n'
      ++i;
    }
    const std::string_view raw = s_.substr(quote_pos + 1, i - quote_pos - 1);
    pos_ = i + 1;
    if (raw.size() - escape_pairs > kMaxStringValueLength) {
      return Fail(
          quote_pos, "LP_STRING_TOO_LONG",
          fmt::format("the string value of field {} is {} bytes long; the limit is {}",
                      Quote(field->key.text), raw.size() - escape_pairs, kMaxStringValueLength));
    }
    if (!AtLineEnd(pos_) && s_[pos_] != ',' && s_[pos_] != ' ') {
      return Fail(pos_, "LP_BAD_FIELD_VALUE",
                  "unexpected text after the closing quote of field " + Quote(field->key.text));
    }
    string_newlines_ += newlines;
    field->is_string = true;
    field->text = {raw, escape_pairs > 0};
    return true;
  }

  bool ParseTimestamp(std::string_view text, std::size_t pos, std::int64_t* ns) {
    std::int64_t value = 0;
    switch (ParseInteger(text, &value)) {
      case NumberStatus::kOk:
        break;
      case NumberStatus::kSyntax:
        return Fail(
            pos, "LP_BAD_TIMESTAMP",
            "timestamp " + Quote(text) + " is not an integer (digits with an optional '-')");
      case NumberStatus::kOutOfRange:
        return Fail(pos, "LP_TIMESTAMP_OUT_OF_RANGE",
                    "timestamp " + Quote(text) + " does not fit in a 64-bit integer");
    }
    if (__builtin_mul_overflow(value, multiplier_, ns) || *ns < kMinTimestamp ||
        *ns > kMaxTimestamp) {
      return Fail(pos, "LP_TIMESTAMP_OUT_OF_RANGE",
                  fmt::format("timestamp {} (precision {}) is outside the range [{}, {}]", value,
                              PrecisionName(precision_), kMinTimestamp / multiplier_,
                              kMaxTimestamp / multiplier_));
    }
    return true;
  }

  std::string_view Unescape(const RawToken& t, const ByteSet& escapes) {
    if (!t.escaped) return t.text;
    const std::size_t at = scratch_.size();
    AppendUnescaped(t.text, escapes, &scratch_);
    return std::string_view(scratch_).substr(at);
  }

  // Sorts order_ to [0, n) by (key(index), index).
  template <typename KeyOf>
  void SortByKey(std::size_t n, KeyOf key_of) {
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0u);
    std::sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
      const int c = key_of(a).compare(key_of(b));
      return c != 0 ? c < 0 : a < b;
    });
  }

  // The first tag (in input order) whose key an earlier tag already has, or npos.
  std::size_t FindDuplicateTag() {
    const std::size_t n = tag_views_.size();
    if (n <= kPairwiseLimit) {
      for (std::size_t i = 1; i < n; ++i) {
        for (std::size_t j = 0; j < i; ++j) {
          if (tag_views_[i].first == tag_views_[j].first) return i;
        }
      }
      return std::string_view::npos;
    }
    SortByKey(n, [&](std::uint32_t i) { return tag_views_[i].first; });
    std::size_t found = std::string_view::npos;
    for (std::size_t k = 1; k < n; ++k) {
      if (tag_views_[order_[k]].first == tag_views_[order_[k - 1]].first) {
        found = std::min<std::size_t>(found, order_[k]);
      }
    }
    return found;
  }

  // Duplicate field keys: the last value wins (InfluxDB 1.x), at the last one's position.
  void RemoveEarlierDuplicateFields() {
    const std::size_t n = field_views_.size();
    if (n < 2) return;
    drop_.assign(n, 0);
    bool any = false;
    if (n <= kPairwiseLimit) {
      for (std::size_t i = 0; i + 1 < n; ++i) {
        for (std::size_t j = i + 1; j < n; ++j) {
          if (field_views_[i].key == field_views_[j].key) {
            drop_[i] = 1;
            any = true;
            break;
          }
        }
      }
    } else {
      SortByKey(n, [&](std::uint32_t i) { return field_views_[i].key; });
      for (std::size_t k = 0; k + 1 < n; ++k) {
        if (field_views_[order_[k]].key == field_views_[order_[k + 1]].key) {
          drop_[order_[k]] = 1;
          any = true;
        }
      }
    }
    if (!any) return;
    std::size_t w = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!drop_[i]) field_views_[w++] = field_views_[i];
    }
    field_views_.resize(w);
  }

  // Unescapes into scratch_ and checks what needs the unescaped names.
  bool BuildView(const RawToken& measurement, std::optional<std::int64_t> timestamp) {
    // Reserve first: unescaping never lengthens, so the views into scratch_ stay valid.
    std::size_t needed = measurement.escaped ? measurement.text.size() : 0;
    for (const RawTag& t : tags_) {
      if (t.key.escaped) needed += t.key.text.size();
      if (t.value.escaped) needed += t.value.text.size();
    }
    for (const RawField& f : fields_) {
      if (f.key.escaped) needed += f.key.text.size();
      if (f.text.escaped) needed += f.text.text.size();
    }
    scratch_.clear();
    scratch_.reserve(needed);

    view_.measurement = Unescape(measurement, kMeasurementEscapes);
    tag_views_.clear();
    for (const RawTag& t : tags_) {
      const std::string_view key = Unescape(t.key, kKeyEscapes);
      if (IsReservedKey(key)) {
        return Fail(t.key_pos, "LP_RESERVED_KEY", "tag key " + Quote(key) + " is reserved");
      }
      tag_views_.emplace_back(key, Unescape(t.value, kKeyEscapes));
    }
    if (const std::size_t dup = FindDuplicateTag(); dup != std::string_view::npos) {
      return Fail(tags_[dup].key_pos, "LP_DUPLICATE_TAG",
                  "tag key " + Quote(tag_views_[dup].first) + " appears more than once");
    }
    field_views_.clear();
    for (const RawField& f : fields_) {
      const std::string_view key = Unescape(f.key, kKeyEscapes);
      if (IsReservedKey(key)) {
        return Fail(f.key_pos, "LP_RESERVED_KEY", "field key " + Quote(key) + " is reserved");
      }
      field_views_.push_back(
          {key, f.is_string ? FieldValueView(Unescape(f.text, kStringEscapes)) : f.value});
    }
    RemoveEarlierDuplicateFields();
    view_.tags = tag_views_;
    view_.fields = field_views_;
    view_.timestamp_ns = timestamp;
    return true;
  }

  const std::string_view s_;
  const std::size_t n_;
  const std::int64_t multiplier_;
  const Precision precision_;

  std::size_t pos_ = 0;
  std::size_t line_;            // line number of line_begin_
  std::size_t line_begin_ = 0;  // start of the physical line the current point starts on
  std::size_t string_newlines_ = 0;
  std::size_t resume_ = 0;

  std::vector<RawTag> tags_;
  std::vector<RawField> fields_;
  std::string scratch_;
  std::vector<std::pair<std::string_view, std::string_view>> tag_views_;
  std::vector<LineFieldView> field_views_;
  std::vector<std::uint32_t> order_;
  std::vector<unsigned char> drop_;

  LinePointView view_;
  LineError error_;
};

}  // namespace

core::Result<Precision> ParsePrecision(std::string_view text) {
  if (text.empty() || text == "n" || text == "ns") return Precision::kNanoseconds;
  if (text == "u" || text == "us") return Precision::kMicroseconds;
  if (text == "ms") return Precision::kMilliseconds;
  if (text == "s") return Precision::kSeconds;
  if (text == "m") return Precision::kMinutes;
  if (text == "h") return Precision::kHours;
  return core::Status("LP_BAD_PRECISION",
                      "invalid precision " + Quote(text) + " (use n, u, ms, s, m or h)");
}

std::int64_t NanosecondsPer(Precision p) {
  switch (p) {
    case Precision::kNanoseconds:
      return 1;
    case Precision::kMicroseconds:
      return 1'000;
    case Precision::kMilliseconds:
      return 1'000'000;
    case Precision::kSeconds:
      return 1'000'000'000;
    case Precision::kMinutes:
      return 60'000'000'000;
    case Precision::kHours:
      return 3'600'000'000'000;
  }
  return 1;
}

std::string LineError::ToString() const {
  return fmt::format("line {}, column {}: {}: {}", line, column, code, message);
}

core::Status LineError::ToStatus() const {
  return core::Status(code, fmt::format("line {}, column {}: {}", line, column, message));
}

LinePoint ToLinePoint(const LinePointView& view) {
  LinePoint p;
  p.measurement.assign(view.measurement);
  p.tags.reserve(view.tags.size());
  for (const auto& [key, value] : view.tags) p.tags.emplace_back(key, value);
  p.fields.reserve(view.fields.size());
  for (const LineFieldView& f : view.fields) {
    LineField& out = p.fields.emplace_back();
    out.key.assign(f.key);
    switch (f.value.index()) {
      case 0:
        out.value = std::get<double>(f.value);
        break;
      case 1:
        out.value = std::get<std::int64_t>(f.value);
        break;
      case 2:
        out.value = std::get<std::uint64_t>(f.value);
        break;
      case 3:
        out.value = std::get<bool>(f.value);
        break;
      default:
        out.value.emplace<std::string>(std::get<std::string_view>(f.value));
        break;
    }
  }
  p.timestamp_ns = view.timestamp_ns;
  p.line = view.line;
  return p;
}

core::Result<LinePoint> ParseLine(std::string_view text, Precision precision, std::size_t line_no) {
  Parser parser(text, precision, line_no);
  switch (parser.Next()) {
    case Parser::Step::kEnd:
      return core::Status("LP_NO_POINT", fmt::format("line {}, column 1: the line is blank or a "
                                                     "comment; expected a point",
                                                     line_no));
    case Parser::Step::kError:
      return parser.error().ToStatus();
    case Parser::Step::kPoint:
      break;
  }
  LinePoint point = ToLinePoint(parser.point());
  std::size_t extra_line = 0;
  switch (parser.Next()) {
    case Parser::Step::kEnd:
      return point;
    case Parser::Step::kError:
      extra_line = parser.error().line;
      break;
    case Parser::Step::kPoint:
      extra_line = parser.point().line;
      break;
  }
  return core::Status(
      "LP_UNEXPECTED_TEXT",
      fmt::format("line {}, column 1: expected one line, found another", extra_line));
}

void ParseLines(std::string_view body, Precision precision, std::vector<LinePoint>* out,
                std::vector<LineError>* errors) {
  Parser parser(body, precision, 1);
  for (;;) {
    switch (parser.Next()) {
      case Parser::Step::kPoint:
        out->push_back(ToLinePoint(parser.point()));
        break;
      case Parser::Step::kError:
        if (errors != nullptr) errors->push_back(parser.error());
        break;
      case Parser::Step::kEnd:
        return;
    }
  }
}

ParseCounts ParseLinesInto(std::string_view body, Precision precision,
                           const std::function<void(const LinePointView&)>& on_point,
                           const std::function<void(const LineError&)>& on_error) {
  Parser parser(body, precision, 1);
  ParseCounts counts;
  for (;;) {
    switch (parser.Next()) {
      case Parser::Step::kPoint:
        ++counts.points;
        if (on_point) on_point(parser.point());
        break;
      case Parser::Step::kError:
        ++counts.errors;
        if (on_error) on_error(parser.error());
        break;
      case Parser::Step::kEnd:
        return counts;
    }
  }
}

void AppendLine(const LinePoint& point, std::string* out) {
  AppendEscaped(point.measurement, kMeasurementEscapes, out);
  for (const auto& [key, value] : point.tags) {
    out->push_back(',');
    AppendEscaped(key, kKeyEscapes, out);
    out->push_back('=');
    AppendEscaped(value, kKeyEscapes, out);
  }
  char buf[32];
  for (std::size_t i = 0; i < point.fields.size(); ++i) {
    const LineField& f = point.fields[i];
    out->push_back(i == 0 ? ' ' : ',');
    AppendEscaped(f.key, kKeyEscapes, out);
    out->push_back('=');
    switch (f.value.index()) {
      case 0:  // shortest text that reads back as the same double
        out->append(buf, std::to_chars(buf, buf + sizeof buf, std::get<double>(f.value)).ptr);
        break;
      case 1:
        out->append(buf, std::to_chars(buf, buf + sizeof buf, std::get<std::int64_t>(f.value)).ptr);
        out->push_back('i');
        break;
      case 2:
        out->append(buf,
                    std::to_chars(buf, buf + sizeof buf, std::get<std::uint64_t>(f.value)).ptr);
        out->push_back('u');
        break;
      case 3:
        out->append(std::get<bool>(f.value) ? "true" : "false");
        break;
      default:
        out->push_back('"');
        AppendEscaped(std::get<std::string>(f.value), kStringEscapes, out);
        out->push_back('"');
        break;
    }
  }
  if (point.timestamp_ns) {
    out->push_back(' ');
    out->append(buf, std::to_chars(buf, buf + sizeof buf, *point.timestamp_ns).ptr);
  }
  out->push_back('\n');
}

std::string FormatLine(const LinePoint& point) {
  std::string out;
  AppendLine(point, &out);
  out.pop_back();
  return out;
}

}  // namespace doppel::sync
