// Helpers shared by the MQTT and device tests (header-only, test targets only: they define
// DOPPEL_SOURCE_DIR).
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model/parser.h"

namespace doppel::sync::testing {

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `pred` until it holds or `limit` passes (a guard against hanging, not a timing
// assertion); true when it held.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The example factory models (examples/models/factory), for ModelRepository::Add.
inline std::vector<model::SourceDocument> FactoryModelDocs() {
  std::vector<model::SourceDocument> docs;
  const std::filesystem::path dir =
      std::filesystem::path(DOPPEL_SOURCE_DIR) / "examples/models/factory";
  for (const char* f : {"asset.json", "thermal_sensor.json", "production_line.json", "machine.json",
                        "cnc_mill.json"}) {
    docs.push_back({f, ReadFile(dir / f)});
  }
  return docs;
}

}  // namespace doppel::sync::testing
