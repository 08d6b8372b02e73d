// doppel::model — the model repository: the set of DTDL Interfaces doppel knows.
//
// Models are added in batches (all-or-nothing: a batch with any error changes nothing),
// resolved against each other and against what is already present, and then immutable.
// Thread-safe: readers share a lock; writers are rare (model uploads).
//
// Persistence is a seam: a ModelStore given at construction is called inside the write, before
// the change becomes visible; if it fails, nothing changes. The store component (RocksDB)
// implements it; without one the repository lives in memory.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/diagnostic.h"
#include "model/parser.h"
#include "model/resolver.h"

namespace doppel::model {

// One top-level model as the repository holds it.
struct ModelInfo {
  std::string id;
  InterfacePtr iface;
  ResolvedPtr resolved;
  bool decommissioned = false;
  std::chrono::system_clock::time_point upload_time;
  // DTMIs of the top-level models this one depends on directly (extends, Component schemas).
  std::vector<std::string> dependencies;
};

// Durable storage of models (implemented by the store component).
class ModelStore {
 public:
  virtual ~ModelStore() = default;
  // Called with the source JSON of each added top-level model.
  virtual core::Status SaveModels(std::span<const ModelInfo> models) = 0;
  virtual core::Status SaveDecommissioned(std::string_view id) = 0;
  virtual core::Status DeleteModel(std::string_view id) = 0;
};

class ModelRepository : private ResolutionBase {
 public:
  explicit ModelRepository(ModelStore* store = nullptr, ParseOptions options = {});
  ~ModelRepository() override;

  struct AddResult {
    Diagnostics diagnostics;          // errors and notes (notes do not block the add)
    std::vector<std::string> added;   // top-level DTMIs added, in document order
    bool ok() const { return !HasErrors(diagnostics); }
  };

  // Parses, validates and resolves `documents` against each other and the repository. Adds
  // every top-level Interface when there is no error; otherwise changes nothing.
  AddResult Add(std::span<const SourceDocument> documents);

  // Like Add, but never changes the repository.
  AddResult Check(std::span<const SourceDocument> documents) const;

  // Restores a model read back from durable storage (no store call). REQUIRES: its
  // dependencies were restored first.
  AddResult Restore(std::span<const SourceDocument> documents, bool decommissioned,
                    std::chrono::system_clock::time_point upload_time);

  std::optional<ModelInfo> Get(std::string_view id) const;

  // All models, or (when `roots` is non-empty) the given models and everything they depend on,
  // dependencies before dependents. MODEL_NOT_FOUND if a root is unknown.
  core::Result<std::vector<ModelInfo>> List(std::span<const std::string> roots = {}) const;

  // The resolved view of an Interface (top-level or inline). MODEL_NOT_FOUND if unknown.
  core::Result<ResolvedPtr> Resolve(std::string_view id) const;

  // Marks a model decommissioned: it stays resolvable but new twins may not use it.
  core::Status Decommission(std::string_view id);

  // Removes a model. MODEL_IN_USE while another model depends on it, or while `delete_guard`
  // (installed by the twin graph) refuses because twins use it.
  core::Status Delete(std::string_view id);
  void SetDeleteGuard(std::function<core::Status(std::string_view id)> guard);

  std::size_t size() const;

 private:
  ResolvedPtr FindResolved(std::string_view dtmi) const override;
  std::optional<std::string> ElementClass(std::string_view dtmi) const override;
  AddResult Validate(std::span<const SourceDocument> documents,
                     std::vector<ModelInfo>* models,
                     std::unordered_map<std::string, ResolvedPtr>* resolved) const;
  AddResult Commit(std::span<const SourceDocument> documents, bool persist, bool decommissioned,
                   std::chrono::system_clock::time_point upload_time);

  struct State;
  ModelStore* store_;
  ParseOptions options_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<State> state_;
  std::function<core::Status(std::string_view)> delete_guard_;
};

}  // namespace doppel::model
