#include "model/value_validator.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace doppel::model {
namespace {

TEST(ValueFormats, Date) {
  EXPECT_TRUE(IsValidDate("2024-02-29"));
  EXPECT_TRUE(IsValidDate("2000-02-29"));
  EXPECT_FALSE(IsValidDate("1900-02-29"));
  EXPECT_FALSE(IsValidDate("2023-02-29"));
  EXPECT_FALSE(IsValidDate("2021-04-31"));
  EXPECT_FALSE(IsValidDate("2021-13-01"));
  EXPECT_FALSE(IsValidDate("2021-1-01"));
  EXPECT_FALSE(IsValidDate("2021-01-01T00:00:00Z"));
}

TEST(ValueFormats, Time) {
  EXPECT_TRUE(IsValidTime("13:45:00Z"));
  EXPECT_TRUE(IsValidTime("13:45:00.123+02:00"));
  EXPECT_TRUE(IsValidTime("23:59:60Z"));  // leap second
  EXPECT_FALSE(IsValidTime("13:45:00"));  // RFC 3339 full-time needs an offset
  EXPECT_FALSE(IsValidTime("24:00:00Z"));
  EXPECT_FALSE(IsValidTime("13:45Z"));
  EXPECT_FALSE(IsValidTime("13:45:00.Z"));
  EXPECT_FALSE(IsValidTime("13:45:00+0200"));
}

TEST(ValueFormats, DateTime) {
  EXPECT_TRUE(IsValidDateTime("2024-05-31T13:45:00Z"));
  EXPECT_TRUE(IsValidDateTime("2024-05-31t13:45:00.5-05:30"));
  EXPECT_FALSE(IsValidDateTime("2024-05-31 13:45:00Z"));
  EXPECT_FALSE(IsValidDateTime("2024-05-31T13:45:00"));
  EXPECT_FALSE(IsValidDateTime("2024-02-30T13:45:00Z"));
}

TEST(ValueFormats, Duration) {
  for (const char* ok : {"P1D", "PT1H30M", "P1Y2M3W4DT5H6M7S", "PT0.5S", "P1DT2H", "PT1,5H"}) {
    EXPECT_TRUE(IsValidDuration(ok)) << ok;
  }
  for (const char* bad : {"P", "PT", "1D", "P1H", "PT1D", "P1DT", "P1M1Y", "PT1S1M", "P-1D",
                          "P1.D", "1 day", ""}) {
    EXPECT_FALSE(IsValidDuration(bad)) << bad;
  }
}

Schema Primitive(SchemaKind k) {
  Schema s;
  s.kind = k;
  return s;
}

std::vector<std::string> Codes(const Schema& s, const boost::json::value& v) {
  ValueErrors errs;
  ValidateValue(s, v, "", &errs);
  std::vector<std::string> out;
  for (const auto& e : errs) out.push_back(e.code());
  return out;
}

TEST(ValidateValue, IntegerRanges) {
  Schema i = Primitive(SchemaKind::kInteger);
  EXPECT_TRUE(Codes(i, 2147483647).empty());
  EXPECT_TRUE(Codes(i, -2147483648LL).empty());
  EXPECT_TRUE(Codes(i, 3.0).empty());
  EXPECT_EQ(Codes(i, 2147483648LL), std::vector<std::string>{"VALUE_OUT_OF_RANGE"});
  EXPECT_EQ(Codes(i, 1.5), std::vector<std::string>{"VALUE_OUT_OF_RANGE"});
  EXPECT_EQ(Codes(i, "1"), std::vector<std::string>{"VALUE_TYPE_MISMATCH"});
  Schema l = Primitive(SchemaKind::kLong);
  EXPECT_TRUE(Codes(l, std::numeric_limits<std::int64_t>::min()).empty());
  EXPECT_EQ(Codes(l, std::numeric_limits<std::uint64_t>::max()),
            std::vector<std::string>{"VALUE_OUT_OF_RANGE"});
  EXPECT_EQ(Codes(l, 1e19), std::vector<std::string>{"VALUE_OUT_OF_RANGE"});
  Schema f = Primitive(SchemaKind::kFloat);
  EXPECT_TRUE(Codes(f, 3.4e38).empty());
  EXPECT_EQ(Codes(f, 3.5e38), std::vector<std::string>{"VALUE_OUT_OF_RANGE"});
}

TEST(ValidateValue, ObjectReportsEveryProblemWithPointers) {
  Schema obj;
  obj.kind = SchemaKind::kObject;
  NamedSchema a;
  a.name = "a";
  a.schema.schema = PrimitiveSchema(SchemaKind::kInteger);
  NamedSchema b;
  b.name = "b/c";
  b.schema.schema = PrimitiveSchema(SchemaKind::kString);
  obj.fields = {a, b};
  ValueErrors errs;
  ValidateValue(obj, boost::json::parse(R"({"a": "x", "b/c": 1, "z": 0})"), "/p", &errs);
  ASSERT_EQ(errs.size(), 3u);
  EXPECT_EQ(errs[0].pointer(), "/p/a");
  EXPECT_EQ(errs[1].pointer(), "/p/b~1c");
  EXPECT_EQ(errs[2].code(), "VALUE_UNKNOWN_FIELD");
}

}  // namespace
}  // namespace doppel::model
