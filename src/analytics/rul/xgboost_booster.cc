#include "analytics/rul/xgboost_booster.h"

#include <fmt/format.h>
#include <xgboost/c_api.h>

#include <limits>

namespace doppel::analytics::rul {
namespace {

core::Status Check(int rc, std::string_view call) {
  if (rc == 0) return core::Status::Ok();
  const char* error = XGBGetLastError();
  return core::Status("RUL_XGBOOST",
                      fmt::format("{}: {}", call, error != nullptr ? error : "unknown error"));
}

}  // namespace

void XgbMatrix::Free::operator()(void* h) const { XGDMatrixFree(h); }
void XgbBooster::Free::operator()(void* h) const { XGBoosterFree(h); }

core::Result<XgbMatrix> XgbMatrix::FromDense(std::span<const float> data, std::size_t rows,
                                             std::size_t cols, int threads,
                                             std::span<const float> labels) {
  DMatrixHandle h = nullptr;
  if (auto s =
          Check(XGDMatrixCreateFromMat_omp(data.data(), rows, cols,
                                           std::numeric_limits<float>::quiet_NaN(), &h, threads),
                "XGDMatrixCreateFromMat_omp");
      !s.ok()) {
    return s;
  }
  XgbMatrix m;
  m.handle_.reset(h);
  if (!labels.empty()) {
    if (auto s = Check(XGDMatrixSetFloatInfo(h, "label", labels.data(), labels.size()),
                       "XGDMatrixSetFloatInfo(label)");
        !s.ok()) {
      return s;
    }
  }
  return m;
}

core::Result<XgbBooster> XgbBooster::Create(const XgbMatrix& train) {
  if (auto s = QuietXgboost(); !s.ok()) return s;
  BoosterHandle h = nullptr;
  DMatrixHandle cache[] = {train.handle()};
  if (auto s = Check(XGBoosterCreate(cache, 1, &h), "XGBoosterCreate"); !s.ok()) return s;
  XgbBooster b;
  b.handle_.reset(h);
  return b;
}

core::Result<XgbBooster> XgbBooster::Load(const std::filesystem::path& file) {
  if (auto s = QuietXgboost(); !s.ok()) return s;
  BoosterHandle h = nullptr;
  if (auto s = Check(XGBoosterCreate(nullptr, 0, &h), "XGBoosterCreate"); !s.ok()) return s;
  XgbBooster b;
  b.handle_.reset(h);
  if (auto s = Check(XGBoosterLoadModel(h, file.c_str()), "XGBoosterLoadModel"); !s.ok()) {
    return s;
  }
  return b;
}

core::Status XgbBooster::SetParam(std::string_view name, std::string_view value) {
  const std::string n(name), v(value);
  return Check(XGBoosterSetParam(handle_.get(), n.c_str(), v.c_str()),
               fmt::format("XGBoosterSetParam({})", name));
}

core::Status XgbBooster::UpdateOneIter(int iteration, const XgbMatrix& train) {
  return Check(XGBoosterUpdateOneIter(handle_.get(), iteration, train.handle()),
               "XGBoosterUpdateOneIter");
}

core::Result<std::vector<float>> XgbBooster::Predict(const XgbMatrix& data,
                                                     bool contributions) const {
  // type 0: the prediction; 2: exact TreeSHAP contributions. training=false: no dropout etc.
  const char* config = contributions ? R"({"type": 2, "training": false, "iteration_begin": 0,
                                           "iteration_end": 0, "strict_shape": false})"
                                     : R"({"type": 0, "training": false, "iteration_begin": 0,
                                           "iteration_end": 0, "strict_shape": false})";
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  if (auto s = Check(
          XGBoosterPredictFromDMatrix(handle_.get(), data.handle(), config, &shape, &dims, &result),
          "XGBoosterPredictFromDMatrix");
      !s.ok()) {
    return s;
  }
  std::size_t n = 1;
  for (bst_ulong d = 0; d < dims; ++d) n *= shape[d];
  // The buffer belongs to the booster and is reused by its next call: copy it now.
  return std::vector<float>(result, result + n);
}

core::Status XgbBooster::Save(const std::filesystem::path& file) const {
  return Check(XGBoosterSaveModel(handle_.get(), file.c_str()), "XGBoosterSaveModel");
}

core::Result<std::size_t> XgbBooster::NumFeatures() const {
  bst_ulong n = 0;
  if (auto s = Check(XGBoosterGetNumFeature(handle_.get(), &n), "XGBoosterGetNumFeature");
      !s.ok()) {
    return s;
  }
  return static_cast<std::size_t>(n);
}

std::string XgbVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return fmt::format("{}.{}.{}", major, minor, patch);
}

core::Status QuietXgboost() {
  static const core::Status status =
      Check(XGBSetGlobalConfig(R"({"verbosity": 0})"), "XGBSetGlobalConfig");
  return status;
}

}  // namespace doppel::analytics::rul
