// A map-based GraphView for tests: models in a real ModelRepository, twins and relationships
// in ordered maps (so enumeration order is stable), optional property indexes, and counters
// that let tests see which access paths a query used.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/model.h"
#include "twin/graph_view.h"

namespace doppel::twin::testing {

class InMemoryGraph : public GraphView {
 public:
  // {"models": [DTDL docs], "twins": [twin docs], "relationships": [relationship docs],
  //  "indexes": [property names with an index]} — every member optional.
  core::Status Load(const boost::json::object& graph) {
    if (const auto* m = graph.if_contains("models")) {
      if (auto st = AddModels(m->as_array()); !st.ok()) return st;
    }
    if (const auto* t = graph.if_contains("twins")) {
      for (const auto& doc : t->as_array()) {
        if (auto st = AddTwin(doc.as_object()); !st.ok()) return st;
      }
    }
    if (const auto* r = graph.if_contains("relationships")) {
      for (const auto& doc : r->as_array()) {
        if (auto st = AddRelationship(doc.as_object()); !st.ok()) return st;
      }
    }
    if (const auto* ix = graph.if_contains("indexes")) {
      for (const auto& p : ix->as_array()) IndexProperty(std::string(p.as_string()));
    }
    return {};
  }

  core::Status AddModels(const boost::json::array& docs) {
    std::vector<model::SourceDocument> sources;
    for (const auto& d : docs) {
      sources.push_back({"model" + std::to_string(sources.size()), boost::json::serialize(d)});
    }
    auto r = repo_.Add(sources);
    if (!r.ok()) {
      std::string msg;
      for (const auto& d : r.diagnostics) msg += model::FormatDiagnostic(d) + "\n";
      return core::Status("MODEL_INVALID", msg);
    }
    return {};
  }

  core::Status AddTwin(boost::json::object doc) {
    const auto* id = doc.if_contains("$dtId");
    const auto* meta = doc.if_contains("$metadata");
    const boost::json::value* model = nullptr;
    if (meta && meta->is_object()) model = meta->as_object().if_contains("$model");
    if (!id || !id->is_string() || !model || !model->is_string()) {
      return core::Status("TWIN_INVALID", "a twin needs $dtId and $metadata.$model");
    }
    auto t = std::make_shared<Twin>();
    t->id = std::string(id->as_string());
    t->model = std::string(model->as_string());
    if (const auto* e = doc.if_contains("$etag"); e && e->is_string()) {
      t->etag = std::string(e->as_string());
    }
    t->seq = ++seq_;
    t->doc = std::move(doc);
    if (auto old = twins_.find(t->id); old != twins_.end()) {
      by_model_[old->second->model].erase(t->id);
    }
    by_model_[t->model][t->id] = t;
    twins_[t->id] = std::move(t);
    return {};
  }

  core::Status AddRelationship(boost::json::object doc) {
    auto str = [&](const char* k) -> std::string {
      const auto* v = doc.if_contains(k);
      return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    auto r = std::make_shared<Relationship>();
    r->id = str("$relationshipId");
    r->source = str("$sourceId");
    r->target = str("$targetId");
    r->name = str("$relationshipName");
    r->etag = str("$etag");
    if (r->id.empty() || r->source.empty() || r->target.empty() || r->name.empty()) {
      return core::Status("RELATIONSHIP_INVALID",
                          "a relationship needs $relationshipId, $sourceId, $targetId and "
                          "$relationshipName");
    }
    r->seq = ++seq_;
    r->doc = std::move(doc);
    in_[r->target].push_back(r);
    out_[r->source].push_back(std::move(r));
    return {};
  }

  void IndexProperty(std::string property) { indexed_.insert(std::move(property)); }
  // When set, NoteFilteredProperty indexes the property at once.
  void set_auto_index(bool on) { auto_index_ = on; }

  // Properties NoteFilteredProperty was told about.
  std::set<std::string> noted() const {
    std::lock_guard lock(mu_);
    return noted_;
  }

  model::ModelRepository& mutable_models() { return repo_; }

  // Access-path counters.
  mutable std::atomic<int> scans{0};
  mutable std::atomic<int> finds{0};
  mutable std::atomic<int> model_lookups{0};
  mutable std::atomic<int> property_lookups{0};
  mutable std::atomic<int> adjacency_calls{0};

  // GraphView
  const model::ModelRepository& models() const override { return repo_; }

  TwinPtr FindTwin(std::string_view id) const override {
    ++finds;
    auto it = twins_.find(id);
    return it == twins_.end() ? nullptr : it->second;
  }

  void ForEachTwin(const std::function<bool(const TwinPtr&)>& fn) const override {
    ++scans;
    for (const auto& [id, t] : twins_) {
      if (!fn(t)) return;
    }
  }

  std::size_t TwinCount() const override { return twins_.size(); }

  std::vector<TwinPtr> TwinsOfModels(std::span<const std::string> model_ids) const override {
    ++model_lookups;
    std::vector<TwinPtr> out;
    for (const auto& m : model_ids) {
      auto it = by_model_.find(m);
      if (it == by_model_.end()) continue;
      for (const auto& [id, t] : it->second) out.push_back(t);
    }
    return out;
  }

  std::vector<RelationshipPtr> Outgoing(std::string_view source,
                                        std::string_view name = {}) const override {
    ++adjacency_calls;
    std::vector<RelationshipPtr> out;
    auto it = out_.find(source);
    if (it == out_.end()) return out;
    for (const auto& r : it->second) {
      if (name.empty() || r->name == name) out.push_back(r);
    }
    return out;
  }

  std::vector<RelationshipPtr> Incoming(std::string_view target) const override {
    ++adjacency_calls;
    auto it = in_.find(target);
    return it == in_.end() ? std::vector<RelationshipPtr>{} : it->second;
  }

  std::optional<std::vector<TwinPtr>> TwinsWithProperty(
      std::string_view property, const boost::json::value& value) const override {
    if (!indexed_.contains(std::string(property))) return std::nullopt;
    ++property_lookups;
    std::vector<TwinPtr> out;
    for (const auto& [id, t] : twins_) {  // a test double: correctness over speed
      const auto* v = t->doc.if_contains(property);
      if (v && *v == value) out.push_back(t);
    }
    return out;
  }

  void NoteFilteredProperty(std::string_view property) const override {
    std::lock_guard lock(mu_);
    noted_.emplace(property);
    if (auto_index_) indexed_.emplace(property);
  }

 private:
  model::ModelRepository repo_;
  std::map<std::string, TwinPtr, std::less<>> twins_;
  std::unordered_map<std::string, std::map<std::string, TwinPtr>> by_model_;
  std::map<std::string, std::vector<RelationshipPtr>, std::less<>> out_;
  std::map<std::string, std::vector<RelationshipPtr>, std::less<>> in_;
  mutable std::set<std::string> indexed_;
  mutable std::set<std::string> noted_;
  mutable std::mutex mu_;
  bool auto_index_ = false;
  std::uint64_t seq_ = 0;
};

}  // namespace doppel::twin::testing
