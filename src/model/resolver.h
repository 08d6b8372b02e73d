// doppel::model — the second pass: resolving a batch of Interfaces against each other and
// against the models already known (extends, Components, schema references, inheritance).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/diagnostic.h"
#include "model/elements.h"

namespace doppel::model {

struct ResolvedContent {
  const Content* content = nullptr;
  std::string defined_in;  // DTMI of the Interface whose `contents` declares it
};

// The full view of an Interface: its own and inherited contents (with where each came from),
// the transitive `extends` closure, and the resolved Interfaces of its Components. Immutable;
// keeps every Interface it points into alive.
class ResolvedInterface {
 public:
  const Interface& iface() const { return *iface_; }
  const InterfacePtr& iface_ptr() const { return iface_; }
  const std::string& id() const { return iface_->info.id; }
  // Every ancestor, nearest first, each once.
  const std::vector<std::string>& extends_closure() const { return extends_closure_; }
  // Own contents first (in order), then inherited ones (parents in `extends` order).
  const std::vector<ResolvedContent>& contents() const { return contents_; }
  const ResolvedContent* Find(std::string_view name) const;
  // The resolved Interface of Component `name`, or nullptr.
  const ResolvedInterface* ComponentInterface(std::string_view name) const;
  // True if this Interface is `dtmi` or extends it (directly or not).
  bool IsA(std::string_view dtmi) const;
  // Depth of the longest `extends` path (0 for a root Interface).
  int extends_depth() const { return extends_depth_; }

 private:
  friend class BatchResolver;
  InterfacePtr iface_;
  std::vector<std::string> extends_closure_;
  std::vector<ResolvedContent> contents_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::map<std::string, std::shared_ptr<const ResolvedInterface>, std::less<>> components_;
  std::vector<std::shared_ptr<const ResolvedInterface>> parents_;  // keeps ancestors alive
  int extends_depth_ = 0;
};

using ResolvedPtr = std::shared_ptr<const ResolvedInterface>;

// What a batch resolves against (the repository's current contents).
class ResolutionBase {
 public:
  virtual ~ResolutionBase() = default;
  virtual ResolvedPtr FindResolved(std::string_view dtmi) const = 0;
  // Class name ("Interface", "Object", "Property", ...) of the element with explicit @id `dtmi`.
  virtual std::optional<std::string> ElementClass(std::string_view dtmi) const = 0;
};

struct ResolvedBatch {
  // Every Interface of the batch (top-level and inline) that resolved, by DTMI.
  std::unordered_map<std::string, ResolvedPtr> resolved;
  Diagnostics diagnostics;
};

// Resolves `batch` (the output of ParseDocuments) against `base`. Reports every problem;
// `resolved` is only meaningful when no error was reported.
ResolvedBatch ResolveBatch(const std::vector<std::shared_ptr<Interface>>& batch,
                           const ResolutionBase& base);

}  // namespace doppel::model
