// Helpers for the RUL tests: the FD001 files, scratch folders, small C-MAPSS files.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/shared_data.h"
#include "scratch_dir.h"

namespace doppel::analytics::rul::testing {

inline std::filesystem::path CmapssDir() { return core::SharedDataDir() / "cmapss"; }

inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// The lines of a C-MAPSS file whose unit number (first column) is at most `max_unit`.
inline std::string FirstUnits(const std::filesystem::path& file, int max_unit) {
  std::istringstream in(ReadAll(file));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (std::stoi(line) <= max_unit) out += line + "\n";
  }
  return out;
}

// The first `n` lines of a file.
inline std::string FirstLines(const std::filesystem::path& file, int n) {
  std::istringstream in(ReadAll(file));
  std::string out;
  for (std::string line; n > 0 && std::getline(in, line); --n) out += line + "\n";
  return out;
}

// A temporary folder for one test, removed afterwards.
class ScratchDir : public doppel::testing::ScratchDir {
 public:
  ScratchDir() : doppel::testing::ScratchDir("doppel-rul-test") {}
};

}  // namespace doppel::analytics::rul::testing
