// doppel::store — durable storage on embedded RocksDB. The component's manual.
//
// One RocksDB database in the data directory holds everything doppel must not lose:
//   m/<dtmi>                     model: {"source": <DTDL JSON>, "decommissioned", "uploadTime",
//                                        "dependencies": [dtmi...]}
//   t/<twin id>                  twin document            (twin/twin_log.h)
//   r/<source>\0<relationship>   relationship document    (twin/twin_log.h)
//   k/<key id>                   API key record           (api)
//   mp/<mapping id>              MQTT mapping document    (sync/mqtt_ingest.h, api/mapping_routes.cc)
//   meta/mqtt/client-id          the MQTT client id of `doppel serve --mqtt` (persistent session)
//   meta/seq/<shard>             the shard's write-sequence high-water mark (twin/twin_log.h)
//   h/...                        property history: series, chunks (tsdb/history.h)
// and beside the database, <dir>/history-wal/: the history's write-ahead log (tsdb/file_log.h),
// synced by the same policy.
//
// Durability: every Commit is one atomic RocksDB WriteBatch through the write-ahead log. The
// sync policy decides when the WAL reaches the disk:
//   kAlways   fsync before Commit returns (default). An acknowledged write survives a crash of
//             the process and of the machine. Costs one fsync per group commit; the twin graph
//             groups concurrent writes, so many writes share one fsync.
//   kInterval the WAL is written to the OS before Commit returns and fsynced every `interval`.
//             Survives a crash of the process (kill -9); a power loss can lose the last interval.
//   kNever    like kInterval without the periodic fsync (the OS flushes eventually). For tests
//             and bulk loads only.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/model_repository.h"
#include "tsdb/history.h"
#include "twin/twin_log.h"

namespace doppel::store {

enum class SyncPolicy { kAlways, kInterval, kNever };

// "always" | "interval" | "never"
std::optional<SyncPolicy> ParseSyncPolicy(std::string_view s);

struct StoreOptions {
  std::filesystem::path dir = "doppel-data";
  SyncPolicy sync = SyncPolicy::kAlways;
  std::chrono::milliseconds sync_interval{100};
  // A damaged history log: false (default) leaves it, and the history store refuses to open
  // (TSDB_CHUNK_CORRUPT naming the file and offset); true recovers it to its last intact record
  // before the damage and sets the rest aside (tsdb::FileLog::CutAtDamage; history_log_cut()).
  bool recover_history_log = false;
};

class Store : public twin::TwinLog, public model::ModelStore, public tsdb::HistoryBackend {
 public:
  // Opens (creating if needed) the database in options.dir. STORE_IO if it cannot, e.g. when
  // another process holds it.
  static core::Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store() override;

  // twin::TwinLog
  core::Status Commit(const twin::LogBatch& batch) override;
  // twin::TwinLog and tsdb::HistoryBackend
  core::Status Scan(std::string_view prefix,
                    const std::function<void(std::string_view, std::string_view)>& fn)
      const override;

  // tsdb::HistoryBackend: one WriteBatch, synced per the policy like Commit.
  core::Status Write(std::span<const tsdb::KeyOp> ops) override;
  core::Status DeleteRange(std::string_view begin, std::string_view end) override;
  // tsdb::HistoryBackend's write-ahead log: files in <dir>/history-wal (tsdb/file_log.h), synced
  // per the policy; records a store from before kept as h/w/ keys are read (and trimmed) first.
  core::Status AppendLog(std::span<const tsdb::LogRecord> records) override;
  core::Status TrimLog(std::uint64_t upto) override;
  core::Status ScanLog(
      const std::function<void(std::uint64_t, std::string_view)>& fn) const override;

  // model::ModelStore
  core::Status SaveModels(std::span<const model::ModelInfo> models) override;
  core::Status SaveDecommissioned(std::string_view id) override;
  core::Status DeleteModel(std::string_view id) override;

  // Adds every stored model back into `repo`, dependencies first. Call before TwinGraph::Load.
  core::Status RestoreModels(model::ModelRepository& repo) const;

  // Single keys (API keys and other small records).
  core::Status Put(std::string_view key, std::string_view value);
  core::Status Delete(std::string_view key);
  std::optional<std::string> Get(std::string_view key) const;

  // Bytes on disk (SST files + WAL), for /metrics.
  std::uint64_t ApproximateBytes() const;

  // What Open's recovery of the history log set aside (recover_history_log); nullopt: nothing.
  const std::optional<tsdb::LogCut>& history_log_cut() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::store
