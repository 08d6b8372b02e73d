#include "sync/line_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace doppel::sync {
namespace {

using Tags = std::vector<std::pair<std::string, std::string>>;
using Fields = std::vector<LineField>;

LinePoint Point(std::string measurement, Tags tags, Fields fields,
                std::optional<std::int64_t> ts = std::nullopt, std::size_t line = 1) {
  return LinePoint{std::move(measurement), std::move(tags), std::move(fields), ts, line};
}

// Parses `input` as a body that must yield exactly one point.
LinePoint ParseOk(std::string_view input, Precision p = Precision::kNanoseconds) {
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(input, p, &points, &errors);
  EXPECT_TRUE(errors.empty()) << input << " -> " << (errors.empty() ? "" : errors[0].ToString());
  EXPECT_EQ(points.size(), 1u) << input;
  return points.empty() ? LinePoint{} : points[0];
}

// Parses `input` as a body that must yield exactly one error and no point.
LineError ParseBad(std::string_view input, Precision p = Precision::kNanoseconds) {
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(input, p, &points, &errors);
  EXPECT_TRUE(points.empty()) << input << " -> parsed as " << FormatLine(points[0]);
  EXPECT_EQ(errors.size(), 1u) << input;
  return errors.empty() ? LineError{} : errors[0];
}

std::string Describe(const LinePoint& p) {
  return FormatLine(p) + " (line " + std::to_string(p.line) + ")";
}

// ---- The reference's examples ---------------------------------------------------------------

TEST(LineProtocolSpec, ReferenceExamples) {
  struct Case {
    std::string input;
    LinePoint want;
  };
  const std::vector<Case> cases = {
      {"weather,location=us-midwest temperature=82 1465839830100400200",
       Point("weather", {{"location", "us-midwest"}}, {{"temperature", 82.0}},
             1465839830100400200)},
      {"myMeasurement,tag1=val1,tag2=val2 field1=\"v1\",field2=1i 0000000000000000000",
       Point("myMeasurement", {{"tag1", "val1"}, {"tag2", "val2"}},
             {{"field1", std::string("v1")}, {"field2", std::int64_t{1}}}, 0)},
      {"mymeas value=-1.234456e+78", Point("mymeas", {}, {{"value", -1.234456e+78}})},
      {"mymeas value=1.0", Point("mymeas", {}, {{"value", 1.0}})},
      {"mymeas value=1", Point("mymeas", {}, {{"value", 1.0}})},
      {"mymeas value=1i", Point("mymeas", {}, {{"value", std::int64_t{1}}})},
      {"mymeas value=\"stringing along\"",
       Point("mymeas", {}, {{"value", std::string("stringing along")}})},
      {"mymeas value=true", Point("mymeas", {}, {{"value", true}})},
      {"mymeas value=\"true\"", Point("mymeas", {}, {{"value", std::string("true")}})},
      // Quotes around names are part of the name.
      {"\"mymeas\" value=200", Point("\"mymeas\"", {}, {{"value", 200.0}})},
      {"mymeas value=3 1465934559000000000",
       Point("mymeas", {}, {{"value", 3.0}}, 1465934559000000000)},
      // The reference's special-characters example.
      {"\"measurement\\ with\\ quo⚡️es\\ and\\ emoji\",tag\\ key\\ with\\ "
       "sp🚀ces=tag\\,value\\,"
       "with\"commas\" field_k\\ey=\"string field value, only \\\" need be esc🍭ped\"",
       Point("\"measurement with quo⚡️es and emoji\"",
             {{"tag key with sp🚀ces", "tag,value,with\"commas\""}},
             {{"field_k\\ey", std::string("string field value, only \" need be esc🍭ped")}})},
      // InfluxDB's own README examples.
      {"cpu\\,01,host=serverA,region=us-west value=1",
       Point("cpu,01", {{"host", "serverA"}, {"region", "us-west"}}, {{"value", 1.0}})},
      {"cpu,host=server\\ A,region=us\\ west value=1",
       Point("cpu", {{"host", "server A"}, {"region", "us west"}}, {{"value", 1.0}})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(ParseOk(c.input), c.want) << Describe(ParseOk(c.input));
  }
}

// What Telegraf's influx serializer writes.
TEST(LineProtocolSpec, TelegrafOutput) {
  const std::string body =
      "cpu,cpu=cpu-total,host=telegraf usage_idle=98.49246231155779,usage_user=0.75 "
      "1700000000000000000\n"
      "disk,device=sda1,fstype=ext4,host=telegraf,mode=rw,path=/ free=12345678u,inodes_used=42i,"
      "used_percent=12.5 1700000000000000000\n"
      "exec,host=a\\ b,note=x\\=y msg=\"said \\\"hi\\\" C:\\\\temp\",ok=true 1700000000000000000\n"
      // Telegraf writes a newline in a key as the two characters \n: a literal backslash here.
      "sys,host=a\\nb uptime=5i 1700000000000000000\n";
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(body, Precision::kNanoseconds, &points, &errors);
  ASSERT_TRUE(errors.empty()) << errors[0].ToString();
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[1].fields[0], (LineField{"free", std::uint64_t{12345678}}));
  EXPECT_EQ(points[1].tags.back(), (std::pair<std::string, std::string>{"path", "/"}));
  EXPECT_EQ(points[2].tags, (Tags{{"host", "a b"}, {"note", "x=y"}}));
  EXPECT_EQ(points[2].fields[0], (LineField{"msg", std::string("said \"hi\" C:\\temp")}));
  EXPECT_EQ(points[3].tags[0].second, "a\\nb");
  EXPECT_EQ(points[3].line, 4u);
}

// ---- Escaping ---------------------------------------------------------------------------------

TEST(LineProtocolEscaping, EveryRule) {
  struct Case {
    std::string input;
    LinePoint want;
  };
  const std::vector<Case> cases = {
      // Measurement: \, and \space; everything else is literal (also \= and \").
      {"a\\,b\\ c f=1", Point("a,b c", {}, {{"f", 1.0}})},
      {"a=b f=1", Point("a=b", {}, {{"f", 1.0}})},
      {"a\\=b f=1", Point("a\\=b", {}, {{"f", 1.0}})},
      {"a\\\"b f=1", Point("a\\\"b", {}, {{"f", 1.0}})},
      {"a\"b\" f=1", Point("a\"b\"", {}, {{"f", 1.0}})},
      {"a\\tb f=1", Point("a\\tb", {}, {{"f", 1.0}})},
      {"a\\\\b f=1", Point("a\\\\b", {}, {{"f", 1.0}})},
      // A backslash before a backslash is literal and does not hide the escape that follows.
      {"a\\\\,b f=1", Point("a\\,b", {}, {{"f", 1.0}})},
      {"a\\\\ b f=1", Point("a\\ b", {}, {{"f", 1.0}})},
      {"\\ a f=1", Point(" a", {}, {{"f", 1.0}})},
      {"m# f=1", Point("m#", {}, {{"f", 1.0}})},  // '#' starts a comment only at line start
      // Tag keys and values: \, \= \space.
      {"m,k\\,1\\=2\\ 3=v\\,1\\=2\\ 3 f=1", Point("m", {{"k,1=2 3", "v,1=2 3"}}, {{"f", 1.0}})},
      {"m,k=\"quoted\" f=1", Point("m", {{"k", "\"quoted\""}}, {{"f", 1.0}})},
      {"m,k=a\\\"b f=1", Point("m", {{"k", "a\\\"b"}}, {{"f", 1.0}})},
      {"m,k=a\\\\,j f=1", Point("m", {{"k", "a\\,j"}}, {{"f", 1.0}})},
      {"m,k=a\\b f=1", Point("m", {{"k", "a\\b"}}, {{"f", 1.0}})},
      {"m,k=#x f=1", Point("m", {{"k", "#x"}}, {{"f", 1.0}})},
      // Field keys: \, \= \space; quotes are part of the key.
      {"m f\\,1\\=2\\ 3=1", Point("m", {}, {{"f,1=2 3", 1.0}})},
      {"m \"f\"=1", Point("m", {}, {{"\"f\"", 1.0}})},
      {"m field_k\\ey=1", Point("m", {}, {{"field_k\\ey", 1.0}})},
      // String values: \" and \\; other backslashes are literal.
      {R"(m s="a\"b")", Point("m", {}, {{"s", std::string("a\"b")}})},
      {R"(m s="a\\b")", Point("m", {}, {{"s", std::string("a\\b")}})},
      {R"(m s="a\b")", Point("m", {}, {{"s", std::string("a\\b")}})},
      {R"(m s="a\\\b")", Point("m", {}, {{"s", std::string("a\\\\b")}})},
      {R"(m s="a\\\\b")", Point("m", {}, {{"s", std::string("a\\\\b")}})},
      {R"(m s="a\\\"b")", Point("m", {}, {{"s", std::string("a\\\"b")}})},
      {R"(m s="a\\")", Point("m", {}, {{"s", std::string("a\\")}})},
      {R"(m s="a\n\t")", Point("m", {}, {{"s", std::string("a\\n\\t")}})},
      {R"(m s="\" b")", Point("m", {}, {{"s", std::string("\" b")}})},
      {R"(m s="")", Point("m", {}, {{"s", std::string()}})},
      {R"(m s="a,b=c d",t=1i)",
       Point("m", {}, {{"s", std::string("a,b=c d")}, {"t", std::int64_t{1}}})},
      {"m s=\"line1\nline2\"", Point("m", {}, {{"s", std::string("line1\nline2")}})},
      {"m s=\"a\r\nb\" 5", Point("m", {}, {{"s", std::string("a\r\nb")}}, 5)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(ParseOk(c.input), c.want) << Describe(ParseOk(c.input));
  }
}

TEST(LineProtocolEscaping, StringSpanningLinesShiftsLineNumbers) {
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines("m s=\"a\nb\nc\" 1\nm t=2 2\nmx", Precision::kNanoseconds, &points, &errors);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].line, 1u);
  EXPECT_EQ(std::get<std::string>(points[0].fields[0].value), "a\nb\nc");
  EXPECT_EQ(points[1].line, 4u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 5u);
  EXPECT_EQ(errors[0].code, "LP_MISSING_FIELDS");
}

// ---- Field values ---------------------------------------------------------------------------

TEST(LineProtocolValues, Floats) {
  struct Case {
    std::string text;
    double want;
  };
  const std::vector<Case> cases = {
      {"1", 1.0},
      {"1.0", 1.0},
      {"-1.5e10", -1.5e10},
      {"1e-3", 1e-3},
      {"1E5", 1e5},
      {"1.", 1.0},
      {"1.e+78", 1e78},
      {"1.E+78", 1e78},
      {".5", 0.5},
      {"-.5", -0.5},
      {"-0", -0.0},
      {"00012.5", 12.5},
      {"0.1", 0.1},
      {"1.7976931348623157e308", std::numeric_limits<double>::max()},
      {"4.9e-324", std::numeric_limits<double>::denorm_min()},
      {"1e-400", 0.0},  // underflow reads as zero, as Go's ParseFloat
      {"123456789012345678901234567890", 123456789012345678901234567890.0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    LinePoint p = ParseOk("m f=" + c.text);
    ASSERT_EQ(p.fields.size(), 1u);
    ASSERT_TRUE(std::holds_alternative<double>(p.fields[0].value));
    const double got = std::get<double>(p.fields[0].value);
    EXPECT_EQ(got, c.want);
    EXPECT_EQ(std::signbit(got), std::signbit(c.want));
  }
  EXPECT_TRUE(std::signbit(std::get<double>(ParseOk("m f=-1e-400").fields[0].value)));
}

TEST(LineProtocolValues, Integers) {
  struct Case {
    std::string text;
    std::int64_t want;
  };
  const std::vector<Case> cases = {
      {"1i", 1},
      {"-1i", -1},
      {"0i", 0},
      {"-0i", 0},
      {"007i", 7},
      {"9223372036854775807i", std::numeric_limits<std::int64_t>::max()},
      {"-9223372036854775808i", std::numeric_limits<std::int64_t>::min()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseOk("m f=" + c.text).fields[0].value, FieldValue(c.want));
  }
}

TEST(LineProtocolValues, Unsigned) {
  EXPECT_EQ(ParseOk("m f=0u").fields[0].value, FieldValue(std::uint64_t{0}));
  EXPECT_EQ(ParseOk("m f=42u").fields[0].value, FieldValue(std::uint64_t{42}));
  EXPECT_EQ(ParseOk("m f=18446744073709551615u").fields[0].value,
            FieldValue(std::numeric_limits<std::uint64_t>::max()));
}

TEST(LineProtocolValues, EveryBooleanSpelling) {
  for (const char* t : {"t", "T", "true", "True", "TRUE"}) {
    SCOPED_TRACE(t);
    EXPECT_EQ(ParseOk(std::string("m b=") + t).fields[0].value, FieldValue(true));
  }
  for (const char* f : {"f", "F", "false", "False", "FALSE"}) {
    SCOPED_TRACE(f);
    EXPECT_EQ(ParseOk(std::string("m b=") + f).fields[0].value, FieldValue(false));
  }
}

TEST(LineProtocolValues, MixedFieldSet) {
  EXPECT_EQ(ParseOk("m a=1,b=2i,c=3u,d=t,e=\"x\" 9"), Point("m", {},
                                                            {{"a", 1.0},
                                                             {"b", std::int64_t{2}},
                                                             {"c", std::uint64_t{3}},
                                                             {"d", true},
                                                             {"e", std::string("x")}},
                                                            9));
}

TEST(LineProtocolValues, BadValues) {
  struct Case {
    std::string value;
    std::string code;
    std::size_t column = 5;  // "m f=" is four bytes
  };
  const std::vector<Case> cases = {
      // NaN and Inf, in every spelling.
      {"NaN", "LP_BAD_FIELD_VALUE"},
      {"nan", "LP_BAD_FIELD_VALUE"},
      {"-NaN", "LP_BAD_FIELD_VALUE"},
      {"Inf", "LP_BAD_FIELD_VALUE"},
      {"inf", "LP_BAD_FIELD_VALUE"},
      {"-Inf", "LP_BAD_FIELD_VALUE"},
      {"+Inf", "LP_BAD_FIELD_VALUE"},
      {"infinity", "LP_BAD_FIELD_VALUE"},
      // Floats.
      {"+1", "LP_BAD_FIELD_VALUE"},
      {"1.2.3", "LP_BAD_FIELD_VALUE"},
      {".", "LP_BAD_FIELD_VALUE"},
      {"-", "LP_BAD_FIELD_VALUE"},
      {"-.", "LP_BAD_FIELD_VALUE"},
      {"1e", "LP_BAD_FIELD_VALUE"},
      {"1e+", "LP_BAD_FIELD_VALUE"},
      {".e5", "LP_BAD_FIELD_VALUE"},
      {"0x1p3", "LP_BAD_FIELD_VALUE"},
      {"1_000", "LP_BAD_FIELD_VALUE"},
      {"12abc", "LP_BAD_FIELD_VALUE"},
      {"1\r5", "LP_BAD_FIELD_VALUE"},
      {"1.8e308", "LP_VALUE_OUT_OF_RANGE"},
      {"-1e400", "LP_VALUE_OUT_OF_RANGE"},
      // Integers.
      {"9223372036854775808i", "LP_VALUE_OUT_OF_RANGE"},
      {"-9223372036854775809i", "LP_VALUE_OUT_OF_RANGE"},
      {"99999999999999999999999i", "LP_VALUE_OUT_OF_RANGE"},
      {"1.0i", "LP_BAD_FIELD_VALUE"},
      {"1e3i", "LP_BAD_FIELD_VALUE"},
      {"-i", "LP_BAD_FIELD_VALUE"},
      {"i", "LP_BAD_FIELD_VALUE"},
      {"1ii", "LP_BAD_FIELD_VALUE"},
      {"+1i", "LP_BAD_FIELD_VALUE"},
      {"0x10i", "LP_BAD_FIELD_VALUE"},
      {"1i0", "LP_BAD_FIELD_VALUE"},
      // Unsigned.
      {"18446744073709551616u", "LP_VALUE_OUT_OF_RANGE"},
      {"-1u", "LP_BAD_FIELD_VALUE"},
      {"-0u", "LP_BAD_FIELD_VALUE"},
      {"1.5u", "LP_BAD_FIELD_VALUE"},
      {"u", "LP_BAD_FIELD_VALUE"},
      {"1iu", "LP_BAD_FIELD_VALUE"},
      // Booleans and bare words.
      {"tRUE", "LP_BAD_FIELD_VALUE"},
      {"TRue", "LP_BAD_FIELD_VALUE"},
      {"truee", "LP_BAD_FIELD_VALUE"},
      {"fals", "LP_BAD_FIELD_VALUE"},
      {"yes", "LP_BAD_FIELD_VALUE"},
      {"on", "LP_BAD_FIELD_VALUE"},
      {"'single'", "LP_BAD_FIELD_VALUE"},
      // Strings.
      {"\"x\"y", "LP_BAD_FIELD_VALUE", 8},  // points at the text after the quote
      {"\"x\"\"y\"", "LP_BAD_FIELD_VALUE", 8},
      {"x\"y\"", "LP_BAD_FIELD_VALUE"},
      {"\"abc", "LP_UNTERMINATED_STRING"},
      {"\"abc\\\"", "LP_UNTERMINATED_STRING"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const LineError e = ParseBad("m f=" + c.value);
    EXPECT_EQ(e.code, c.code) << e.ToString();
    EXPECT_EQ(e.line, 1u);
    EXPECT_EQ(e.column, c.column) << e.ToString();
    EXPECT_NE(e.message.find("\"f\""), std::string::npos) << e.message;  // names the field
  }
}

TEST(LineProtocolValues, MessagesNameTheProblem) {
  EXPECT_NE(ParseBad("m f=NaN").message.find("NaN and Inf are not supported"), std::string::npos);
  EXPECT_NE(ParseBad("m f=-Inf").message.find("NaN and Inf are not supported"), std::string::npos);
  const LineError e = ParseBad("m count=9223372036854775808i");
  EXPECT_NE(e.message.find("\"9223372036854775808i\""), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("int64"), std::string::npos) << e.message;
  EXPECT_NE(ParseBad("m b=yes").message.find("double quotes"), std::string::npos);
  // Control bytes and invalid UTF-8 are shown as \xNN; long text is cut.
  EXPECT_NE(ParseBad("m f=1\x01x").message.find("\\x01"), std::string::npos);
  const LineError longer = ParseBad("m f=1" + std::string(100, 'x'));
  EXPECT_NE(longer.message.find("...\""), std::string::npos);
  EXPECT_LT(longer.message.size(), 150u);
}

// ---- Timestamps -------------------------------------------------------------------------------

TEST(LineProtocolTimestamps, EveryPrecision) {
  struct Case {
    Precision precision;
    std::string ts;
    std::int64_t want;
  };
  const std::vector<Case> cases = {
      {Precision::kNanoseconds, "1700000000123456789", 1700000000123456789},
      {Precision::kMicroseconds, "1700000000123456", 1700000000123456000},
      {Precision::kMilliseconds, "1700000000123", 1700000000123000000},
      {Precision::kSeconds, "1700000000", 1700000000000000000},
      {Precision::kMinutes, "28333333", 28333333LL * 60'000'000'000},
      {Precision::kHours, "472222", 472222LL * 3'600'000'000'000},
      {Precision::kSeconds, "-1", -1'000'000'000},
      {Precision::kNanoseconds, "-1465839830100400200", -1465839830100400200},
      {Precision::kNanoseconds, "0", 0},
      {Precision::kNanoseconds, "-0", 0},
      {Precision::kNanoseconds, "9223372036854775806", 9223372036854775806},
      {Precision::kNanoseconds, "-9223372036854775806", -9223372036854775806},
      {Precision::kSeconds, "9223372036", 9223372036000000000},
      {Precision::kHours, "2562047", 2562047LL * 3'600'000'000'000},
      {Precision::kHours, "-2562047", -2562047LL * 3'600'000'000'000},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ts);
    EXPECT_EQ(ParseOk("m f=1 " + c.ts, c.precision).timestamp_ns, c.want);
  }
  EXPECT_EQ(ParseOk("m f=1").timestamp_ns, std::nullopt);
  EXPECT_EQ(ParseOk("m f=1", Precision::kHours).timestamp_ns, std::nullopt);
}

TEST(LineProtocolTimestamps, OutOfRangeAndMalformed) {
  struct Case {
    Precision precision;
    std::string ts;
    std::string code;
  };
  const std::vector<Case> cases = {
      // InfluxDB reserves the lowest two and the highest nanosecond values.
      {Precision::kNanoseconds, "9223372036854775807", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kNanoseconds, "-9223372036854775807", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kNanoseconds, "-9223372036854775808", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kNanoseconds, "9223372036854775808", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kNanoseconds, "99999999999999999999999", "LP_TIMESTAMP_OUT_OF_RANGE"},
      // int64 overflow after scaling to nanoseconds.
      {Precision::kSeconds, "9223372037", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kSeconds, "-9223372037", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kHours, "2562048", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kMicroseconds, "9223372036854776", "LP_TIMESTAMP_OUT_OF_RANGE"},
      {Precision::kNanoseconds, "1.5", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "12a", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "\"1466625759000000000\"", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "1e9", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "--1", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "-", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "+5", "LP_BAD_TIMESTAMP"},
      {Precision::kNanoseconds, "2023-01-01T00:00:00Z", "LP_BAD_TIMESTAMP"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ts);
    const LineError e = ParseBad("m f=1 " + c.ts, c.precision);
    EXPECT_EQ(e.code, c.code) << e.ToString();
    EXPECT_EQ(e.column, 7u);
  }
  // The range is given in the request's precision, as InfluxDB does.
  EXPECT_NE(
      ParseBad("m f=1 9223372037", Precision::kSeconds).message.find("[-9223372036, 9223372036]"),
      std::string::npos);
}

TEST(LineProtocolTimestamps, ParsePrecision) {
  const std::vector<std::pair<std::string, Precision>> good = {
      {"", Precision::kNanoseconds},    {"n", Precision::kNanoseconds},
      {"ns", Precision::kNanoseconds},  {"u", Precision::kMicroseconds},
      {"us", Precision::kMicroseconds}, {"ms", Precision::kMilliseconds},
      {"s", Precision::kSeconds},       {"m", Precision::kMinutes},
      {"h", Precision::kHours},
  };
  for (const auto& [text, want] : good) {
    auto p = ParsePrecision(text);
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(*p, want) << text;
  }
  for (const char* bad : {"x", "S", "sec", "seconds", "N", "mu", "rfc3339", " s"}) {
    EXPECT_EQ(ParsePrecision(bad).status().code(), "LP_BAD_PRECISION") << bad;
  }
  EXPECT_EQ(NanosecondsPer(Precision::kNanoseconds), 1);
  EXPECT_EQ(NanosecondsPer(Precision::kMinutes), 60'000'000'000);
  EXPECT_EQ(NanosecondsPer(Precision::kHours), 3'600'000'000'000);
}

// ---- Whitespace, line endings, comments -------------------------------------------------------

TEST(LineProtocolLines, WhitespaceAndLineEndings) {
  const LinePoint want = Point("m", {{"t", "a"}}, {{"f", 1.0}}, 5);
  for (const char* input :
       {"m,t=a f=1 5", "m,t=a  f=1   5", "m,t=a f=1 5   ", "   m,t=a f=1 5", "\tm,t=a f=1 5",
        "m,t=a f=1 5\n", "m,t=a f=1 5\r\n", "m,t=a f=1 5\r", "m,t=a f=1 5 \r\n"}) {
    SCOPED_TRACE(input);
    EXPECT_EQ(ParseOk(input), want) << Describe(ParseOk(input));
  }
  EXPECT_EQ(ParseOk("m f=1 \r\n"), Point("m", {}, {{"f", 1.0}}));
  EXPECT_EQ(ParseOk("m f=1  "), Point("m", {}, {{"f", 1.0}}));
  EXPECT_EQ(ParseOk("m s=\"x\"\r\n"), Point("m", {}, {{"s", std::string("x")}}));
  // A carriage return not followed by a newline is data.
  EXPECT_EQ(ParseOk("m\rx,t=a\rb f=1"), Point("m\rx", {{"t", "a\rb"}}, {{"f", 1.0}}));
  // A tab is not a separator (only spaces are).
  EXPECT_EQ(ParseBad("m\tf=1").code, "LP_MISSING_FIELDS");
}

TEST(LineProtocolLines, CommentsAndBlankLinesAreSkippedButCounted) {
  const std::string body =
      "# a comment\n"
      "\n"
      "   # indented comment with \"quote\n"
      "\r\n"
      "   \n"
      "m f=1\n"
      "#m f=2\n"
      "m f=3\r\n"
      "# comment with invalid UTF-8 \xff\n"
      "m f=4";
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(body, Precision::kNanoseconds, &points, &errors);
  EXPECT_TRUE(errors.empty());
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].line, 6u);
  EXPECT_EQ(points[1].line, 8u);
  EXPECT_EQ(points[1].fields[0].value, FieldValue(3.0));
  EXPECT_EQ(points[2].line, 10u);

  points.clear();
  ParseLines("", Precision::kNanoseconds, &points, &errors);
  ParseLines("\n\n# x", Precision::kNanoseconds, &points, &errors);
  EXPECT_TRUE(points.empty());
  EXPECT_TRUE(errors.empty());
}

// ---- Structure errors, with line and column ---------------------------------------------------

TEST(LineProtocolErrors, StructureErrorsHaveCodeAndColumn) {
  struct Case {
    std::string input;
    std::string code;
    std::size_t column;
  };
  const std::vector<Case> cases = {
      {"cpu", "LP_MISSING_FIELDS", 4},
      {"cpu ", "LP_MISSING_FIELDS", 5},
      {"cpu,host=a", "LP_MISSING_FIELDS", 11},
      {"cpu,host=a   ", "LP_MISSING_FIELDS", 14},
      {"cpu\\ ", "LP_MISSING_FIELDS", 6},
      {",host=a f=1", "LP_EMPTY_MEASUREMENT", 1},
      {"  ,f=1", "LP_EMPTY_MEASUREMENT", 3},
      {"cpu,=a f=1", "LP_BAD_TAG", 5},
      {"cpu,host f=1", "LP_BAD_TAG", 9},
      {"cpu,host", "LP_BAD_TAG", 9},
      {"cpu,host= f=1", "LP_BAD_TAG", 10},  // tag without a value
      {"cpu,host=,r=b f=1", "LP_BAD_TAG", 10},
      {"cpu,host=a=b f=1", "LP_BAD_TAG", 11},
      {"cpu,host=a, f=1", "LP_BAD_TAG", 12},
      {"cpu, host=a f=1", "LP_BAD_TAG", 5},
      {"cpu,host=a,,r=b f=1", "LP_BAD_TAG", 12},
      {"cpu,host=a,r=b,a=1,a=2 f=1", "LP_DUPLICATE_TAG", 20},
      {"cpu f", "LP_BAD_FIELD", 6},
      {"cpu f g=1", "LP_BAD_FIELD", 6},
      {"cpu =1", "LP_BAD_FIELD", 5},
      {"cpu f=1,", "LP_BAD_FIELD", 9},
      {"cpu f=1,,g=2", "LP_BAD_FIELD", 9},
      {"cpu f=1, g=2", "LP_BAD_FIELD", 9},
      {"cpu f=1,g", "LP_BAD_FIELD", 10},
      {"cpu f=", "LP_BAD_FIELD_VALUE", 7},
      {"cpu f= 1", "LP_BAD_FIELD_VALUE", 7},
      {"cpu f=,g=1", "LP_BAD_FIELD_VALUE", 7},
      {"cpu f=1 1 2", "LP_UNEXPECTED_TEXT", 11},
      {"cpu f=1 1 x y", "LP_UNEXPECTED_TEXT", 11},
      {"cpu,time=a f=1", "LP_RESERVED_KEY", 5},
      {"cpu,_measurement=a f=1", "LP_RESERVED_KEY", 5},
      {"cpu time=1", "LP_RESERVED_KEY", 5},
      {"cpu f=1,_field=1", "LP_RESERVED_KEY", 9},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    const LineError e = ParseBad(c.input);
    EXPECT_EQ(e.code, c.code) << e.ToString();
    EXPECT_EQ(e.line, 1u);
    EXPECT_EQ(e.column, c.column) << e.ToString();
    EXPECT_FALSE(e.message.empty());
    // ParseLine reports the same, with the location in the message.
    const auto r = ParseLine(c.input, Precision::kNanoseconds, 7);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code);
    EXPECT_EQ(r.status().message().rfind("line 7, column " + std::to_string(c.column) + ": ", 0),
              0u)
        << r.status().message();
  }
}

TEST(LineProtocolErrors, TagsWithoutValueNameTheTag) {
  const LineError e = ParseBad("cpu,host= f=1");
  EXPECT_EQ(e.code, "LP_BAD_TAG");
  EXPECT_NE(e.message.find("\"host\" has no value"), std::string::npos) << e.message;
}

TEST(LineProtocolErrors, MeasurementNamedTimeIsAllowed) {
  EXPECT_EQ(ParseOk("time,host=a f=1"), Point("time", {{"host", "a"}}, {{"f", 1.0}}));
  EXPECT_EQ(ParseOk("m,times=a timer=1"), Point("m", {{"times", "a"}}, {{"timer", 1.0}}));
  // `\i` is a literal backslash: the key is "t\ime", not "time".
  EXPECT_EQ(ParseOk("m,t\\ime=a f=1").tags[0].first, "t\\ime");
}

TEST(LineProtocolErrors, InvalidUtf8) {
  struct Case {
    std::string input;
    std::size_t column;
  };
  const std::vector<Case> cases = {
      {"m\xff f=1", 2},
      {"m,t=\xc3 f=1", 5},              // truncated sequence
      {"m f\xc0\xaf=1", 4},             // overlong
      {"m s=\"\xed\xa0\x80\"", 6},      // surrogate
      {"m s=\"\xf4\x90\x80\x80\"", 6},  // above U+10FFFF
  };
  for (const Case& c : cases) {
    const LineError e = ParseBad(c.input);
    EXPECT_EQ(e.code, "LP_INVALID_UTF8");
    EXPECT_EQ(e.column, c.column) << e.ToString();
  }
  EXPECT_EQ(ParseOk("m,t=\xc3\xa9 s=\"\xf0\x9f\x9a\x80\"").tags[0].second, "\xc3\xa9");
}

TEST(LineProtocolErrors, Limits) {
  // Series key: measurement + tag set as written, at most 65535 bytes; with "#!~#" and a field
  // key likewise.
  EXPECT_EQ(ParseBad(std::string(65536, 'm') + " f=1").code, "LP_KEY_TOO_LONG");
  EXPECT_EQ(ParseOk(std::string(65530, 'm') + " f=1").measurement.size(), 65530u);
  EXPECT_EQ(ParseBad(std::string(65530, 'm') + " ff=1").code, "LP_KEY_TOO_LONG");
  EXPECT_EQ(ParseBad("m,t=" + std::string(65531, 'v') + " f=1").code, "LP_KEY_TOO_LONG");
  // String values: at most 1 MiB once unescaped.
  const std::string mib(1 << 20, 'x');
  EXPECT_EQ(std::get<std::string>(ParseOk("m s=\"" + mib + "\"").fields[0].value).size(), 1u << 20);
  EXPECT_EQ(ParseBad("m s=\"" + mib + "x\"").code, "LP_STRING_TOO_LONG");
  std::string escaped;
  for (int i = 0; i < (1 << 20); ++i) escaped += "\\\"";
  EXPECT_EQ(std::get<std::string>(ParseOk("m s=\"" + escaped + "\"").fields[0].value),
            std::string(1 << 20, '"'));
}

// ---- Duplicates ------------------------------------------------------------------------------

TEST(LineProtocolDuplicates, LastFieldWins) {
  EXPECT_EQ(ParseOk("m f=1,g=2,f=3i"), Point("m", {}, {{"g", 2.0}, {"f", std::int64_t{3}}}));
  EXPECT_EQ(ParseOk("m f=1,f=2,f=\"x\""), Point("m", {}, {{"f", std::string("x")}}));
  // Keys compare unescaped.
  EXPECT_EQ(ParseOk("m a\\ b=1,a\\ b=2"), Point("m", {}, {{"a b", 2.0}}));
}

TEST(LineProtocolDuplicates, ManyFieldsAndTags) {
  std::string line = "m";
  for (int i = 0; i < 100; ++i) line += ",t" + std::to_string(i) + "=v";
  line += " ";
  for (int i = 0; i < 100; ++i)
    line += (i ? ",f" : "f") + std::to_string(i % 40) + "=" + std::to_string(i) + "i";
  const LinePoint p = ParseOk(line);
  EXPECT_EQ(p.tags.size(), 100u);
  ASSERT_EQ(p.fields.size(), 40u);
  // Each key keeps its last value, at the position of that last occurrence.
  EXPECT_EQ(p.fields.front(), (LineField{"f20", std::int64_t{60}}));
  EXPECT_EQ(p.fields.back(), (LineField{"f19", std::int64_t{99}}));

  std::string dup = "m";
  for (int i = 0; i < 50; ++i) dup += ",t" + std::to_string(i) + "=v";
  const std::size_t column = dup.size() + 2;
  dup += ",t7=again f=1";
  const LineError e = ParseBad(dup);
  EXPECT_EQ(e.code, "LP_DUPLICATE_TAG");
  EXPECT_EQ(e.column, column);
  EXPECT_NE(e.message.find("\"t7\""), std::string::npos);
}

// ---- Batches ----------------------------------------------------------------------------------

TEST(LineProtocolBatch, MixedGoodAndBadLinesKeepGoing) {
  const std::string body =
      "cpu,host=a usage=0.5 1\n"                 // 1 ok
      "cpu,host=b usage=NaN 2\n"                 // 2 bad value, column 18
      "\n"                                       // 3 blank
      "cpu,host=c usage=0.7 3\r\n"               // 4 ok
      "cpu,host=d\n"                             // 5 missing fields, column 11
      "# comment\n"                              // 6
      "cpu,host=e usage=9223372036854775808i\n"  // 7 out of range, column 18
      "cpu,host=f s=\"unterminated\n"            // 8 unterminated, column 14
      "cpu,host=g usage=1i 4\n"                  // 9 ok (resumes after the bad string's line)
      "cpu,host=h usage=1 1.5\n"                 // 10 bad timestamp, column 20
      "cpu,host=i usage=2";                      // 11 ok
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines(body, Precision::kSeconds, &points, &errors);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0], Point("cpu", {{"host", "a"}}, {{"usage", 0.5}}, 1'000'000'000, 1));
  EXPECT_EQ(points[1], Point("cpu", {{"host", "c"}}, {{"usage", 0.7}}, 3'000'000'000, 4));
  EXPECT_EQ(points[2],
            Point("cpu", {{"host", "g"}}, {{"usage", std::int64_t{1}}}, 4'000'000'000, 9));
  EXPECT_EQ(points[3], Point("cpu", {{"host", "i"}}, {{"usage", 2.0}}, std::nullopt, 11));
  struct Want {
    std::size_t line, column;
    std::string code;
  };
  const std::vector<Want> want = {{2, 18, "LP_BAD_FIELD_VALUE"},
                                  {5, 11, "LP_MISSING_FIELDS"},
                                  {7, 18, "LP_VALUE_OUT_OF_RANGE"},
                                  {8, 14, "LP_UNTERMINATED_STRING"},
                                  {10, 20, "LP_BAD_TIMESTAMP"}};
  ASSERT_EQ(errors.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(errors[i].ToString());
    EXPECT_EQ(errors[i].line, want[i].line);
    EXPECT_EQ(errors[i].column, want[i].column);
    EXPECT_EQ(errors[i].code, want[i].code);
  }
  EXPECT_EQ(errors[0].ToString().rfind("line 2, column 18: LP_BAD_FIELD_VALUE: ", 0), 0u);
}

TEST(LineProtocolBatch, ErrorAfterAMultiLineStringCountsLines) {
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines("m s=\"a\nbc\"x\nm f=1", Precision::kNanoseconds, &points, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "LP_BAD_FIELD_VALUE");
  EXPECT_EQ(errors[0].line, 2u);
  EXPECT_EQ(errors[0].column, 4u);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].line, 3u);
}

TEST(LineProtocolBatch, ABadLineKeepsItsMultiLineString) {
  // The duplicate tag is found after the whole line (string included) was read: parsing resumes
  // after the string's second line, not inside the string.
  std::vector<LinePoint> points;
  std::vector<LineError> errors;
  ParseLines("m,a=1,a=2 s=\"x\ny\" 5\nm f=1", Precision::kNanoseconds, &points, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "LP_DUPLICATE_TAG");
  EXPECT_EQ(errors[0].line, 1u);
  EXPECT_EQ(errors[0].column, 7u);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].line, 3u);
}

TEST(LineProtocolBatch, ErrorsMayBeDropped) {
  std::vector<LinePoint> points;
  ParseLines("bad\nm f=1", Precision::kNanoseconds, &points, nullptr);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].line, 2u);
}

TEST(LineProtocolBatch, ViewsMatchOwnedPoints) {
  const std::string body =
      "a\\ b,t\\=1=v\\,2 s=\"q\\\"x\",n=1i,u=2u,b=T,f=-.5 -7\nbad line\nc f=1\n";
  std::vector<LinePoint> owned;
  std::vector<LineError> owned_errors;
  ParseLines(body, Precision::kMilliseconds, &owned, &owned_errors);

  std::vector<LinePoint> viewed;
  std::vector<LineError> view_errors;
  const ParseCounts counts = ParseLinesInto(
      body, Precision::kMilliseconds,
      [&](const LinePointView& v) { viewed.push_back(ToLinePoint(v)); },
      [&](const LineError& e) { view_errors.push_back(e); });
  EXPECT_EQ(counts.points, 2u);
  EXPECT_EQ(counts.errors, 1u);
  EXPECT_EQ(viewed, owned);
  ASSERT_EQ(view_errors.size(), 1u);
  EXPECT_EQ(view_errors[0].ToString(), owned_errors[0].ToString());
  EXPECT_EQ(owned[0], Point("a b", {{"t=1", "v,2"}},
                            {{"s", std::string("q\"x")},
                             {"n", std::int64_t{1}},
                             {"u", std::uint64_t{2}},
                             {"b", true},
                             {"f", -0.5}},
                            -7'000'000, 1));

  // Views of unescaped text point into the body itself.
  ParseLinesInto("plain,k=v f=\"s\"", Precision::kNanoseconds,
                 [](const LinePointView& v) {
                   EXPECT_EQ(v.measurement, "plain");
                   EXPECT_EQ(v.tags[0].first, "k");
                   EXPECT_EQ(std::get<std::string_view>(v.fields[0].value), "s");
                 },
                 {});
}

// ---- ParseLine --------------------------------------------------------------------------------

TEST(LineProtocolParseLine, OneLine) {
  auto r = ParseLine("m,t=a f=1i 5", Precision::kSeconds, 42);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Point("m", {{"t", "a"}}, {{"f", std::int64_t{1}}}, 5'000'000'000, 42));
  EXPECT_TRUE(ParseLine("m f=1\n", Precision::kNanoseconds).ok());
  EXPECT_TRUE(ParseLine("m f=1\r\n", Precision::kNanoseconds).ok());
  EXPECT_EQ(ParseLine("", Precision::kNanoseconds).status().code(), "LP_NO_POINT");
  EXPECT_EQ(ParseLine("# comment", Precision::kNanoseconds).status().code(), "LP_NO_POINT");
  EXPECT_EQ(ParseLine("  \r\n", Precision::kNanoseconds).status().code(), "LP_NO_POINT");
  auto two = ParseLine("m f=1\nm f=2", Precision::kNanoseconds, 3);
  EXPECT_EQ(two.status().code(), "LP_UNEXPECTED_TEXT");
  EXPECT_EQ(two.status().message().rfind("line 4, column 1: ", 0), 0u) << two.status().message();
}

// ---- Writing ----------------------------------------------------------------------------------

TEST(LineProtocolFormat, WritesEscapedLines) {
  EXPECT_EQ(FormatLine(Point("cpu", {{"host", "a"}, {"region", "b"}},
                             {{"usage", 0.5}, {"idle", std::int64_t{99}}}, 1700000000000000000)),
            "cpu,host=a,region=b usage=0.5,idle=99i 1700000000000000000");
  EXPECT_EQ(FormatLine(Point("a b,c=d", {{"k ,=", "v ,="}},
                             {{"f ,=", std::string("s \" \\ ,= \n")},
                              {"u", std::uint64_t{7}},
                              {"b", false},
                              {"x", 1e21}})),
            "a\\ b\\,c=d,k\\ \\,\\==v\\ \\,\\= f\\ \\,\\==\"s \\\" \\\\ ,= \n\",u=7u,b=false,"
            "x=1e+21");
  std::string body;
  AppendLine(Point("m", {}, {{"f", -0.0}}, -5), &body);
  AppendLine(Point("m", {}, {{"g", true}}), &body);
  EXPECT_EQ(body, "m f=-0 -5\nm g=true\n");
}

TEST(LineProtocolFormat, RoundTrips) {
  const std::vector<LinePoint> points = {
      Point("weather", {{"location", "us-midwest"}}, {{"temperature", 82.0}}, 1465839830100400200),
      Point("a\\,b", {{"k\\x", "v\\x"}, {"\\=", "\\ "}}, {{"f\\,g", std::string("\\\"")}}),
      Point("\"q\" =", {{"\"", "#"}}, {{"#", std::string("")}}, -9223372036854775806),
      Point("m", {}, {{"f", 0.1}, {"g", 1e-300}, {"h", -1.7976931348623157e308}, {"i", 5e-324}}),
      Point("m", {},
            {{"i", std::numeric_limits<std::int64_t>::min()},
             {"u", std::numeric_limits<std::uint64_t>::max()}},
            9223372036854775806),
      Point("line\rbreak", {}, {{"s", std::string("multi\nline\r\nstring")}}),
      Point("ümlaut", {{"emoji", "🚀"}}, {{"ключ", std::string("значение")}}),
  };
  for (const LinePoint& p : points) {
    const std::string line = FormatLine(p);
    SCOPED_TRACE(line);
    auto back = ParseLine(line, Precision::kNanoseconds, p.line);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, p);
  }
}

}  // namespace
}  // namespace doppel::sync
