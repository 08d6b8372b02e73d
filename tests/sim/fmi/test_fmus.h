// Helpers for the FMI tests: where the test FMUs are, and building (broken) archives.
#pragma once

#include <zip.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "scratch_dir.h"
#include "sim/fmi/fmu.h"

namespace doppel::sim::fmi::testing {

// tests/fmus output: <name>.fmu and its staging folder <name>/.
inline std::string FmuPath(const std::string& name) {
  return std::string(DOPPEL_TEST_FMU_DIR) + "/" + name + ".fmu";
}
inline std::filesystem::path StageDir(const std::string& name) {
  return std::filesystem::path(DOPPEL_TEST_FMU_DIR) / name;
}

inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

// A temporary folder for one test, removed afterwards.
class ScratchDir : public doppel::testing::ScratchDir {
 public:
  ScratchDir() : doppel::testing::ScratchDir("doppel-fmi-test") {}
};

// Writes a zip archive with the given (name, content) entries.
inline void WriteZip(const std::filesystem::path& path,
                     const std::vector<std::pair<std::string, std::string>>& entries) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) throw std::runtime_error("zip_open failed");
  for (const auto& [name, content] : entries) {
    // libzip reads the buffers at zip_close; `entries` outlives it, so nothing is copied.
    zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
    if (source == nullptr || zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE) < 0) {
      zip_source_free(source);
      zip_discard(archive);
      throw std::runtime_error("zip_file_add failed");
    }
  }
  if (zip_close(archive) != 0) {
    zip_discard(archive);
    throw std::runtime_error("zip_close failed");
  }
}

// The entries of a built test FMU, to be modified into a broken one.
inline std::vector<std::pair<std::string, std::string>> Entries(const std::string& fmu,
                                                                const std::string& model,
                                                                int version) {
  std::string platform = version == 2 ? "linux64" : "x86_64-linux";
  std::string so = "binaries/" + platform + "/" + model + ".so";
  return {{"modelDescription.xml", ReadAll(StageDir(fmu) / "modelDescription.xml")},
          {so, ReadAll(StageDir(fmu) / so)}};
}

inline void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos)) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace doppel::sim::fmi::testing
