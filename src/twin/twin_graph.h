// doppel::twin — the twin graph: twins, components and relationships, validated against their
// models, durable, observable. The component's manual.
//
// Threading (see docs/architecture.md, "Write path"):
//  * Twins are owned by shard threads (twin id hash → shard). Every write is a message to the
//    shard that owns the twin (for a relationship: its source twin). A shard applies its queued
//    writes in order, commits them to the TwinLog as one group (one fsync for many writes),
//    then publishes the new versions, updates indexes, emits change events and finally calls
//    each write's callback. There is no global lock on the write path.
//  * Reads never wait for writers: they copy a shared_ptr to an immutable version under a
//    short per-shard shared lock.
//
// Errors (core::Status codes; every invalid write changes nothing):
//   INVALID_ID, TWIN_NOT_FOUND, RELATIONSHIP_NOT_FOUND, PRECONDITION_FAILED (If-Match /
//   If-None-Match), MODEL_NOT_FOUND, MODEL_DECOMMISSIONED, INVALID_TWIN (details: one Status per
//   violation, with the JSON pointer), INVALID_RELATIONSHIP (details), TARGET_NOT_FOUND,
//   RELATIONSHIP_LIMIT (maxMultiplicity), TWIN_HAS_RELATIONSHIPS, PATCH_* (json_patch.h),
//   STORE_IO, SHUTTING_DOWN.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "twin/change_feed.h"
#include "twin/graph_view.h"
#include "twin/twin_log.h"
#include "twin/twin_types.h"

namespace doppel::twin {

struct GraphOptions {
  int shards = 2;
  // Upper bound on writes committed as one group.
  std::size_t max_group = 1024;
  // A property becomes indexed after this many queries filtered on it.
  int property_index_threshold = 3;
};

// HTTP-style preconditions. `if_match` is an etag or "*"; `if_none_match_any` is
// If-None-Match: * (create only).
struct Preconditions {
  std::string if_match;
  bool if_none_match_any = false;
};

// Extra information a write carries.
struct WriteContext {
  // Time the value was observed at the source (ingest); recorded as $metadata.<p>.sourceTime.
  std::optional<std::chrono::system_clock::time_point> source_time;
  // Ingest: drop every patch operation on a property whose current sourceTime is at or after
  // `source_time` (the twin's current value follows source time; a late reading only goes to
  // history). Decided on the shard, so it holds against concurrent writers. When every
  // operation is dropped nothing is written and the current version is returned.
  bool only_newer = false;
};

class Tx;  // a group commit in progress (twin_graph.cc)

// TWIN_NOT_FOUND for `id`: every layer that looks a twin up says it the same way.
core::Status TwinNotFound(std::string_view id);

class TwinGraph : public GraphView {
 public:
  using TwinDone = std::function<void(core::Result<TwinPtr>)>;
  using RelationshipDone = std::function<void(core::Result<RelationshipPtr>)>;
  using Done = std::function<void(core::Status)>;

  // `log` may be null (in-memory only; nothing survives the process). Both must outlive this.
  TwinGraph(model::ModelRepository& models, TwinLog* log, GraphOptions options = {});
  // Drains queued writes, then stops the shard threads.
  ~TwinGraph() override;
  TwinGraph(const TwinGraph&) = delete;
  TwinGraph& operator=(const TwinGraph&) = delete;

  // Reads every twin and relationship back from the log and rebuilds the indexes. Call once,
  // before any write, after the models were restored.
  core::Status Load();

  // Writes. `done` runs on a shard thread after the write is durable (or failed): keep it short
  // (post to your own executor). Each has a blocking *Sync twin for CLIs and tests.
  void PutTwin(std::string id, boost::json::value body, Preconditions pre, TwinDone done);
  void PatchTwin(std::string id, boost::json::value patch, Preconditions pre, TwinDone done,
                 WriteContext ctx = {});
  // A patch whose paths are relative to component `component`.
  void PatchComponent(std::string id, std::string component, boost::json::value patch,
                      Preconditions pre, TwinDone done);
  void DeleteTwin(std::string id, Preconditions pre, Done done);
  void PutRelationship(std::string source, std::string rel_id, boost::json::value body,
                       Preconditions pre, RelationshipDone done);
  void PatchRelationship(std::string source, std::string rel_id, boost::json::value patch,
                         Preconditions pre, RelationshipDone done);
  void DeleteRelationship(std::string source, std::string rel_id, Preconditions pre, Done done);

  core::Result<TwinPtr> PutTwinSync(std::string id, boost::json::value body,
                                    Preconditions pre = {});
  core::Result<TwinPtr> PatchTwinSync(std::string id, boost::json::value patch,
                                      Preconditions pre = {}, WriteContext ctx = {});
  core::Result<TwinPtr> PatchComponentSync(std::string id, std::string component,
                                           boost::json::value patch, Preconditions pre = {});
  core::Status DeleteTwinSync(std::string id, Preconditions pre = {});
  core::Result<RelationshipPtr> PutRelationshipSync(std::string source, std::string rel_id,
                                                    boost::json::value body,
                                                    Preconditions pre = {});
  core::Result<RelationshipPtr> PatchRelationshipSync(std::string source, std::string rel_id,
                                                      boost::json::value patch,
                                                      Preconditions pre = {});
  core::Status DeleteRelationshipSync(std::string source, std::string rel_id,
                                      Preconditions pre = {});

  RelationshipPtr FindRelationship(std::string_view source, std::string_view rel_id) const;

  // True if any twin uses `model_id` ($model exactly). The model repository's delete guard.
  bool ModelInUse(std::string_view model_id) const;

  ChangeFeed& feed() { return feed_; }

  struct Stats {
    std::size_t twins = 0;
    std::size_t relationships = 0;
    std::uint64_t writes = 0;  // acknowledged writes
    std::uint64_t failed_writes = 0;
    std::uint64_t commits = 0;  // group commits
    std::size_t indexed_properties = 0;
  };
  Stats stats() const;

  // GraphView
  const model::ModelRepository& models() const override { return models_; }
  TwinPtr FindTwin(std::string_view id) const override;
  void ForEachTwin(const std::function<bool(const TwinPtr&)>& fn) const override;
  std::size_t TwinCount() const override;
  std::vector<TwinPtr> TwinsOfModels(std::span<const std::string> model_ids) const override;
  std::vector<RelationshipPtr> Outgoing(std::string_view source,
                                        std::string_view name = {}) const override;
  std::vector<RelationshipPtr> Incoming(std::string_view target) const override;
  std::optional<std::vector<TwinPtr>> TwinsWithProperty(
      std::string_view property, const boost::json::value& value) const override;
  void NoteFilteredProperty(std::string_view property) const override;

 private:
  struct Shard;
  struct Op;
  class IncomingIndex;
  Shard& ShardOf(std::string_view twin_id) const;
  // Stages a relationship put (body) or patch (patch) on the source's shard thread.
  core::Status StageRelationship(Tx& tx, const std::string& source, const std::string& rel_id,
                                 const boost::json::value* body, const boost::json::value* patch,
                                 const Preconditions& pre, RelationshipPtr* result);
  void Submit(Shard& shard, std::unique_ptr<Op> op);
  void RunShard(Shard& shard);

  model::ModelRepository& models_;
  TwinLog* log_;
  GraphOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<IncomingIndex> incoming_;
  ChangeFeed feed_;
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> failed_writes_{0};
  std::atomic<std::uint64_t> commits_{0};
  // How often queries filtered on each property (to decide which to index).
  mutable std::mutex usage_mu_;
  mutable std::unordered_map<std::string, int> property_usage_;
};

}  // namespace doppel::twin
