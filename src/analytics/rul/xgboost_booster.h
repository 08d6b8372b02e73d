// doppel::analytics::rul — RAII over XGBoost's C API (internal to doppel_rul).
//
// Every XGBoost call returns 0 or -1; each is checked here and a failure becomes RUL_XGBOOST
// with XGBGetLastError()'s text, so no caller sees a raw return code or a leaked handle.
// The handles are `void*` in XGBoost's API, so this header does not need xgboost/c_api.h.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::analytics::rul {

// A dense float matrix in XGBoost's format, optionally with labels.
class XgbMatrix {
 public:
  // REQUIRES: data.size() == rows * cols; labels empty or of size rows. `threads` copy the data
  // (XGBoost would otherwise use every core).
  static core::Result<XgbMatrix> FromDense(std::span<const float> data, std::size_t rows,
                                           std::size_t cols, int threads,
                                           std::span<const float> labels = {});
  void* handle() const { return handle_.get(); }

 private:
  struct Free {
    void operator()(void* h) const;
  };
  std::unique_ptr<void, Free> handle_;
};

class XgbBooster {
 public:
  // A new booster whose training data is `train` (XGBoost caches its quantile sketch).
  static core::Result<XgbBooster> Create(const XgbMatrix& train);
  // A booster read from a file written by Save (format by extension: .ubj or .json).
  static core::Result<XgbBooster> Load(const std::filesystem::path& file);

  core::Status SetParam(std::string_view name, std::string_view value);
  core::Status UpdateOneIter(int iteration, const XgbMatrix& train);
  // Predictions (one per row), or with `contributions` the SHAP values: per row, one per
  // feature plus the bias last.
  core::Result<std::vector<float>> Predict(const XgbMatrix& data, bool contributions) const;
  core::Status Save(const std::filesystem::path& file) const;
  core::Result<std::size_t> NumFeatures() const;

 private:
  struct Free {
    void operator()(void* h) const;
  };
  std::unique_ptr<void, Free> handle_;
};

// "major.minor.patch" of the linked libxgboost.
std::string XgbVersion();

// Turns XGBoost's logging off (its warnings would go to stdout); once per process.
core::Status QuietXgboost();

}  // namespace doppel::analytics::rul
