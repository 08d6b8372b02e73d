// Helpers shared by the model tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/shared_data.h"
#include "model/parser.h"

namespace doppel::model::testing {

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every *.json under `dir` (sorted), as documents named by path.
inline std::vector<SourceDocument> LoadFolder(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<SourceDocument> docs;
  for (const auto& f : files) docs.push_back({f.string(), ReadFile(f)});
  return docs;
}

inline std::filesystem::path OntologyDir(const char* name) {
  return core::SharedDataDir() / "dtdl" / name;
}

}  // namespace doppel::model::testing
