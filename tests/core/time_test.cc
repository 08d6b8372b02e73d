// core/time.h: RFC 3339 parsing and formatting, durations.
#include "core/time.h"

#include <gtest/gtest.h>

#include <chrono>

namespace doppel::core {
namespace {

std::int64_t Us(std::string_view s) {
  auto t = ParseRfc3339(s);
  EXPECT_TRUE(t.has_value()) << s;
  if (!t) return 0;
  return std::chrono::duration_cast<std::chrono::microseconds>(t->time_since_epoch()).count();
}

TEST(TimeTest, ParsesRfc3339WithFractionsAndOffsets) {
  EXPECT_EQ(Us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Us("1970-01-01T00:00:01.5Z"), 1'500'000);
  EXPECT_EQ(Us("1970-01-01t01:00:00+01:00"), 0);
  EXPECT_EQ(Us("1969-12-31T23:59:59.999999z"), -1);
  EXPECT_EQ(Us("2026-11-26T15:00:00.123456789Z") % 1'000'000, 123456);  // beyond µs: cut
  EXPECT_EQ(Us("2016-12-31T23:59:60Z"), Us("2017-01-01T00:00:00Z"));    // leap second
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-11-26T15:00:00.25-02:30")),
            "2026-11-26T17:30:00.250000Z");
}

TEST(TimeTest, RejectsMalformedAndUnrepresentableDates) {
  for (const char* bad :
       {"", "2026-11-26", "2026-11-26T15:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-11-26T24:00:00Z", "2026-11-26T15:00:00.Z", "2026-11-26T15:00:00+1:00",
        "2026-11-26 15:00:00Z", "x026-11-26T15:00:00Z",
        // Outside what a time point in nanoseconds holds (about 1677-09-21 .. 2262-04-11): an
        // error, not an overflow.
        "0000-01-01T00:00:00Z", "1600-01-01T00:00:00Z", "2263-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
  EXPECT_TRUE(ParseRfc3339("1678-01-01T00:00:00Z").has_value());
  EXPECT_TRUE(ParseRfc3339("2262-01-01T00:00:00Z").has_value());
}

}  // namespace
}  // namespace doppel::core
