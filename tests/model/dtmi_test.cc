#include "model/dtmi.h"

#include <gtest/gtest.h>

namespace doppel::model {
namespace {

std::string CodeOf(std::string_view id, DtdlVersion v, bool definition = true) {
  auto p = CheckDtmi(id, v, definition);
  return p ? p->code : "OK";
}

TEST(Dtmi, AcceptsUserIdentifiers) {
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1", DtdlVersion::kV2), "OK");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1", DtdlVersion::kV3), "OK");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat", DtdlVersion::kV3), "OK");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1.2", DtdlVersion::kV3), "OK");
  EXPECT_EQ(CodeOf("dtmi:a_b:c9;123456789", DtdlVersion::kV3), "OK");
}

TEST(Dtmi, VersionRules) {
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat", DtdlVersion::kV2), "DTMI_VERSION_REQUIRED");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1.2", DtdlVersion::kV2), "DTMI_VERSION_REQUIRED");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;0", DtdlVersion::kV3), "INVALID_DTMI");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;01", DtdlVersion::kV3), "INVALID_DTMI");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1234567890", DtdlVersion::kV3), "INVALID_DTMI");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1.0", DtdlVersion::kV3), "INVALID_DTMI");
  EXPECT_EQ(CodeOf("dtmi:com:example:Thermostat;1.1234567", DtdlVersion::kV3), "INVALID_DTMI");
}

TEST(Dtmi, SegmentRules) {
  for (const char* bad : {"dtmi:", "dtmi::a;1", "dtmi:a::b;1", "dtmi:9a;1", "dtmi:a_;1",
                          "dtmi:a-b;1", "dtmi:a b;1", "DTMI:a;1", "dtmi:_a;1", "dtmi:a:_b;1",
                          "dtmi:a;1#frag", "urn:a:b;1", "dtmi:é;1"}) {
    EXPECT_EQ(CodeOf(bad, DtdlVersion::kV3), "INVALID_DTMI") << bad;
  }
}

TEST(Dtmi, ReservedPrefixesOnlyForDefinitions) {
  EXPECT_EQ(CodeOf("dtmi:dtdl:foo;1", DtdlVersion::kV3), "RESERVED_DTMI");
  EXPECT_EQ(CodeOf("dtmi:standard:foo;1", DtdlVersion::kV3), "RESERVED_DTMI");
  EXPECT_EQ(CodeOf("dtmi:dtdl:foo;1", DtdlVersion::kV3, /*definition=*/false), "OK");
  EXPECT_EQ(CodeOf("dtmi:dtdlx:foo;1", DtdlVersion::kV3), "OK");
}

TEST(Dtmi, Length) {
  std::string id = "dtmi:" + std::string(2050, 'a') + ";1";
  EXPECT_EQ(CheckDtmi(id, DtdlVersion::kV3, true)->code, "STRING_TOO_LONG");
  EXPECT_EQ(CheckDtmi("dtmi:aaaa;1", DtdlVersion::kV3, true, 8)->code, "STRING_TOO_LONG");
}

TEST(Dtmi, SplitVersion) {
  auto [path, ver] = SplitDtmiVersion("dtmi:a:b;3");
  EXPECT_EQ(path, "dtmi:a:b");
  EXPECT_EQ(ver, ";3");
  EXPECT_EQ(SplitDtmiVersion("dtmi:a:b").second, "");
}

}  // namespace
}  // namespace doppel::model
