// Every way an FMU can be broken gives its exact error code, a message saying what and where,
// and leaves no extracted files behind.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "sim/fmi/fmu.h"
#include "sim/fmi/test_fmus.h"

namespace doppel::sim::fmi {
namespace {

using testing::Entries;
using testing::FmuPath;
using testing::ReplaceAll;
using testing::WriteZip;

class FmuErrorsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    old_tmpdir_ = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "";
    setenv("TMPDIR", extract_.path().c_str(), 1);
  }
  void TearDown() override {
    if (old_tmpdir_.empty()) {
      unsetenv("TMPDIR");
    } else {
      setenv("TMPDIR", old_tmpdir_.c_str(), 1);
    }
    EXPECT_TRUE(std::filesystem::is_empty(extract_.path())) << "extracted files left behind";
  }

  int version() const { return GetParam(); }
  std::string Name(const std::string& model) const {
    return model + "_fmi" + std::to_string(version());
  }
  // The exp_decay FMU's entries, for a test to break.
  std::vector<std::pair<std::string, std::string>> ExpDecay() const {
    return Entries(Name("exp_decay"), "exp_decay", version());
  }
  std::string Write(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string path = (files_ / "broken.fmu").string();
    WriteZip(path, entries);
    return path;
  }
  // Opens and expects failure with `code`; returns the message.
  std::string Expect(const std::string& path, const std::string& code) {
    auto fmu = OpenFmu(path);
    EXPECT_FALSE(fmu.ok());
    if (fmu.ok()) return "";
    EXPECT_EQ(fmu.status().code(), code) << fmu.status().ToString();
    return fmu.status().message();
  }

  testing::ScratchDir files_;

 private:
  testing::ScratchDir extract_;
  std::string old_tmpdir_;
};

TEST_P(FmuErrorsTest, MissingFile) {
  std::string m = Expect((files_ / "nope.fmu").string(), "FMI_FILE_NOT_FOUND");
  EXPECT_NE(m.find("nope.fmu"), std::string::npos);
}

TEST_P(FmuErrorsTest, NotAZipFile) {
  std::ofstream(files_ / "text.fmu") << "this is not an archive\n";
  std::string m = Expect((files_ / "text.fmu").string(), "FMI_BAD_ARCHIVE");
  EXPECT_NE(m.find("not a readable zip archive"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, TruncatedArchive) {
  std::string whole = testing::ReadAll(FmuPath(Name("exp_decay")));
  ASSERT_GT(whole.size(), 1000u);
  for (std::size_t keep : {whole.size() / 2, whole.size() - 10, std::size_t{0}}) {
    std::ofstream(files_ / "cut.fmu", std::ios::binary) << whole.substr(0, keep);
    Expect((files_ / "cut.fmu").string(), "FMI_BAD_ARCHIVE");
  }
}

TEST_P(FmuErrorsTest, NoModelDescription) {
  auto entries = ExpDecay();
  entries.erase(entries.begin());
  std::string m = Expect(Write(entries), "FMI_NO_MODEL_DESCRIPTION");
  EXPECT_NE(m.find("modelDescription.xml"), std::string::npos);
}

TEST_P(FmuErrorsTest, MalformedXmlSaysWhere) {
  auto entries = ExpDecay();
  ReplaceAll(entries[0].second, "<ModelVariables>", "<ModelVariables");
  std::string m = Expect(Write(entries), "FMI_BAD_MODEL_DESCRIPTION");
  EXPECT_NE(m.find("malformed XML"), std::string::npos) << m;
  EXPECT_NE(m.find("line "), std::string::npos) << m;
  EXPECT_NE(m.find("modelDescription.xml"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, InvalidStartValue) {
  auto entries = ExpDecay();
  ReplaceAll(entries[0].second, "start=\"1\"", "start=\"one\"");
  std::string m = Expect(Write(entries), "FMI_BAD_MODEL_DESCRIPTION");
  EXPECT_NE(m.find("'x'"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, UnsupportedVersion) {
  auto entries = ExpDecay();
  ReplaceAll(entries[0].second, version() == 2 ? "fmiVersion=\"2.0\"" : "fmiVersion=\"3.0\"",
             "fmiVersion=\"1.0\"");
  std::string m = Expect(Write(entries), "FMI_UNSUPPORTED_VERSION");
  EXPECT_NE(m.find("\"1.0\""), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, ModelExchangeOnly) {
  auto entries = ExpDecay();
  ReplaceAll(entries[0].second, "<CoSimulation", "<ModelExchange");
  std::string m = Expect(Write(entries), "FMI_UNSUPPORTED_KIND");
  EXPECT_NE(m.find("Model Exchange"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, NoLinuxBinaryNamesThePlatformsPresent) {
  auto entries = ExpDecay();
  entries[1].first = "binaries/x86_64-windows/exp_decay.dll";
  entries.push_back({"binaries/aarch64-darwin/exp_decay.dylib", "not really"});
  std::string m = Expect(Write(entries), "FMI_NO_BINARY");
  EXPECT_NE(m.find("the FMU has binaries for: aarch64-darwin, x86_64-windows"), std::string::npos)
      << m;
  entries.resize(1);
  m = Expect(Write(entries), "FMI_NO_BINARY");
  EXPECT_NE(m.find("no binaries"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, BinaryNamedAfterAnotherIdentifier) {
  auto entries = ExpDecay();
  ReplaceAll(entries[0].second, "modelIdentifier=\"exp_decay\"", "modelIdentifier=\"other\"");
  std::string m = Expect(Write(entries), "FMI_NO_BINARY");
  EXPECT_NE(m.find("other.so"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, MissingSymbol) {
  std::string m = Expect(FmuPath(Name("no_do_step")), "FMI_MISSING_SYMBOL");
  EXPECT_NE(m.find(version() == 2 ? "fmi2DoStep" : "fmi3DoStep"), std::string::npos) << m;
}

TEST_P(FmuErrorsTest, BinaryOfTheOtherVersion) {
  // An FMI 2 description over an FMI 3 binary (and the reverse): none of the functions exist.
  int other = version() == 2 ? 3 : 2;
  auto entries = ExpDecay();
  auto binary = Entries("exp_decay_fmi" + std::to_string(other), "exp_decay", other);
  entries[1].second = binary[1].second;
  std::string m = Expect(Write(entries), "FMI_MISSING_SYMBOL");
  EXPECT_NE(m.find(version() == 2 ? "fmi2Instantiate" : "fmi3InstantiateCoSimulation"),
            std::string::npos)
      << m;
}

TEST_P(FmuErrorsTest, CorruptBinary) {
  auto entries = ExpDecay();
  entries[1].second =
      "\x7f"
      "ELF but not really";
  Expect(Write(entries), "FMI_LOAD_FAILED");
}

TEST_P(FmuErrorsTest, WrongGuidIsRefusedByTheBinary) {
  auto entries = ExpDecay();
  const char* attr = version() == 2 ? "guid=\"{" : "instantiationToken=\"{";
  ReplaceAll(entries[0].second, attr, std::string(attr) + "0");
  std::string m = Expect(Write(entries), "FMI_INSTANTIATE_FAILED");
  EXPECT_NE(m.find("returned NULL"), std::string::npos) << m;
  // The FMU's own log message says why.
  EXPECT_NE(m.find(version() == 2 ? "wrong GUID" : "wrong instantiationToken"), std::string::npos)
      << m;
}

TEST_P(FmuErrorsTest, EntryEscapingTheFolder) {
  auto entries = ExpDecay();
  entries.push_back({"../escaped.txt", "x"});
  std::string m = Expect(Write(entries), "FMI_BAD_ARCHIVE");
  EXPECT_NE(m.find("outside"), std::string::npos) << m;
  EXPECT_FALSE(std::filesystem::exists(files_.path().parent_path() / "escaped.txt"));
}

TEST_P(FmuErrorsTest, ValidRebuiltArchiveOpens) {
  // The control: the same entries unmodified open fine, so the tests above fail for their
  // reason only.
  auto fmu = OpenFmu(Write(ExpDecay()));
  ASSERT_TRUE(fmu.ok()) << fmu.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Fmi, FmuErrorsTest, ::testing::Values(2, 3),
                         [](const auto& info) { return "fmi" + std::to_string(info.param); });

}  // namespace
}  // namespace doppel::sim::fmi
