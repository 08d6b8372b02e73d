#include "store/store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/json.h"
#include "core/time.h"

namespace doppel::store {

namespace json = boost::json;
using core::Status;

std::optional<SyncPolicy> ParseSyncPolicy(std::string_view s) {
  if (s == "always") return SyncPolicy::kAlways;
  if (s == "interval") return SyncPolicy::kInterval;
  if (s == "never") return SyncPolicy::kNever;
  return std::nullopt;
}

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return {};
  return Status("STORE_IO", fmt::format("{}: {}", what, s.ToString()));
}

std::string ModelKey(std::string_view id) { return "m/" + std::string(id); }

}  // namespace

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::unique_ptr<tsdb::FileLog> history_log;
  std::optional<tsdb::LogCut> history_log_cut;
  bool legacy_log = true;  // h/w/ keys may exist (until the first trim)
  StoreOptions options;
  rocksdb::WriteOptions write_options;
  // kInterval: background WAL fsync.
  std::thread syncer;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (syncer.joinable()) syncer.join();
    history_log.reset();  // syncs
    if (db) {
      db->FlushWAL(true);
      db->Close();
    }
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

core::Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status("STORE_IO", fmt::format("cannot create data directory {}: {}",
                                          options.dir.string(), ec.message()));
  }
  rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = rocksdb::kLZ4Compression;
  o.IncreaseParallelism(2);
  o.OptimizeLevelStyleCompaction();
  o.max_total_wal_size = 256u << 20;
  // Few writer threads (one per shard) on few cores: a writer waiting for the group leader
  // sleeps instead of spinning for up to 100 us, which on 2 cores steals the leader's CPU.
  o.enable_write_thread_adaptive_yield = false;
  // Smaller memtables keep the skiplist shallow (inserts of hot, often-rewritten twin keys
  // dominate); 32 MiB still absorbs ~70k twin writes between flushes.
  o.write_buffer_size = 32u << 20;
  // Replay the WAL up to the last intact record: a torn final record (crash mid-write) was
  // never acknowledged.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, options.dir.string(), &raw);
  if (!s.ok()) {
    return Status("STORE_IO", fmt::format("cannot open the store in {}: {}", options.dir.string(),
                                          s.ToString()));
  }
  auto impl = std::make_unique<Impl>();
  impl->db.reset(raw);
  if (options.recover_history_log) {
    auto cut = tsdb::FileLog::CutAtDamage(options.dir / "history-wal");
    if (!cut.ok()) return Status("STORE_IO", cut.status().ToString());
    impl->history_log_cut = std::move(*cut);
  }
  auto log = tsdb::FileLog::Open(options.dir / "history-wal", options.sync == SyncPolicy::kAlways);
  if (!log.ok()) return Status("STORE_IO", log.status().ToString());
  impl->history_log = std::move(*log);
  impl->options = options;
  impl->write_options.sync = options.sync == SyncPolicy::kAlways;
  if (options.sync == SyncPolicy::kInterval) {
    Impl* p = impl.get();
    impl->syncer = std::thread([p] {
      std::unique_lock lock(p->mu);
      while (!p->cv.wait_for(lock, p->options.sync_interval, [p] { return p->stopping; })) {
        lock.unlock();
        p->db->SyncWAL();
        (void)p->history_log->Sync();
        lock.lock();
      }
    });
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::Commit(const twin::LogBatch& batch) {
  rocksdb::WriteBatch wb;
  for (const auto& [key, value] : batch.ops) {
    if (value) {
      wb.Put(key, *value);
    } else {
      wb.Delete(key);
    }
  }
  return FromRocks(impl_->db->Write(impl_->write_options, &wb), "commit");
}

Status Store::Write(std::span<const tsdb::KeyOp> ops) {
  rocksdb::WriteBatch wb;
  for (const tsdb::KeyOp& op : ops) {
    if (op.value) {
      wb.Put(op.key, *op.value);
    } else {
      wb.Delete(op.key);
    }
  }
  return FromRocks(impl_->db->Write(impl_->write_options, &wb), "history write");
}

Status Store::DeleteRange(std::string_view begin, std::string_view end) {
  rocksdb::WriteBatch wb;
  wb.DeleteRange(rocksdb::Slice(begin.data(), begin.size()),
                 rocksdb::Slice(end.data(), end.size()));
  return FromRocks(impl_->db->Write(impl_->write_options, &wb), "history delete range");
}

Status Store::AppendLog(std::span<const tsdb::LogRecord> records) {
  return impl_->history_log->Append(records);
}

Status Store::TrimLog(std::uint64_t upto) {
  // The checkpoint that allows this trim is in the database's WAL; without kAlways it may not be
  // on disk yet, and deleting the log files first could lose points to a power cut.
  if (impl_->options.sync != SyncPolicy::kAlways) {
    if (Status s = FromRocks(impl_->db->FlushWAL(true), "history trim"); !s.ok()) return s;
  }
  if (impl_->legacy_log) {
    if (Status s = HistoryBackend::TrimLog(upto); !s.ok()) return s;
    impl_->legacy_log = false;
  }
  return impl_->history_log->Trim(upto);
}

Status Store::ScanLog(const std::function<void(std::uint64_t, std::string_view)>& fn) const {
  if (Status s = HistoryBackend::ScanLog(fn); !s.ok()) return s;
  return impl_->history_log->Scan(fn);
}

Status Store::Scan(std::string_view prefix,
                   const std::function<void(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (!k.starts_with(prefix)) break;
    fn(k, std::string_view(it->value().data(), it->value().size()));
  }
  return FromRocks(it->status(), "scan");
}

Status Store::SaveModels(std::span<const model::ModelInfo> models) {
  rocksdb::WriteBatch wb;
  for (const auto& m : models) {
    json::array deps;
    for (const auto& d : m.dependencies) deps.push_back(json::value(d));
    json::object rec{{"source", m.iface->source ? *m.iface->source : json::value(nullptr)},
                     {"decommissioned", m.decommissioned},
                     {"uploadTime", core::FormatRfc3339(m.upload_time)},
                     {"dependencies", std::move(deps)}};
    wb.Put(ModelKey(m.id), json::serialize(rec));
  }
  return FromRocks(impl_->db->Write(impl_->write_options, &wb), "save models");
}

Status Store::SaveDecommissioned(std::string_view id) {
  auto v = Get(ModelKey(id));
  if (!v) return Status("STORE_IO", fmt::format("model {} is not in the store", id));
  auto rec = core::ParseJson(*v);
  if (!rec.ok() || !rec->is_object()) return Status("STORE_CORRUPT", "bad model record");
  rec->get_object()["decommissioned"] = true;
  return Put(ModelKey(id), json::serialize(*rec));
}

Status Store::DeleteModel(std::string_view id) { return Delete(ModelKey(id)); }

Status Store::RestoreModels(model::ModelRepository& repo) const {
  struct Rec {
    std::string source;
    bool decommissioned = false;
    std::chrono::system_clock::time_point upload;
    std::vector<std::string> deps;
  };
  std::map<std::string, Rec> recs;
  Status bad;
  Status s = Scan("m/", [&](std::string_view key, std::string_view value) {
    auto v = core::ParseJson(value);
    if (!v.ok() || !v->is_object()) {
      bad = Status("STORE_CORRUPT", fmt::format("model record {} is not valid JSON", key));
      return;
    }
    const auto& o = v->get_object();
    Rec r;
    if (const auto* src = o.if_contains("source")) r.source = json::serialize(*src);
    if (const auto* d = o.if_contains("decommissioned"); d && d->is_bool()) {
      r.decommissioned = d->get_bool();
    }
    if (const auto* t = o.if_contains("uploadTime"); t && t->is_string()) {
      r.upload = core::ParseRfc3339(t->get_string()).value_or(std::chrono::system_clock::now());
    }
    if (const auto* d = o.if_contains("dependencies"); d && d->is_array()) {
      for (const auto& x : d->get_array()) {
        if (x.is_string()) r.deps.emplace_back(x.get_string());
      }
    }
    recs.emplace(std::string(key.substr(2)), std::move(r));
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  // Dependencies first (models cannot depend on each other in a cycle).
  std::set<std::string> done;
  std::function<Status(const std::string&, int)> restore = [&](const std::string& id,
                                                               int depth) -> Status {
    if (done.contains(id)) return {};
    auto it = recs.find(id);
    if (it == recs.end()) {
      return Status("STORE_CORRUPT", fmt::format("a stored model depends on {}, which is "
                                                 "missing",
                                                 id));
    }
    if (depth > 64) return Status("STORE_CORRUPT", "model dependencies are cyclic");
    for (const auto& d : it->second.deps) {
      if (Status st = restore(d, depth + 1); !st.ok()) return st;
    }
    model::SourceDocument doc{"store:" + id, it->second.source};
    auto r = repo.Restore(std::span(&doc, 1), it->second.decommissioned, it->second.upload);
    if (!r.ok()) {
      std::string why = r.diagnostics.empty() ? "" : model::FormatDiagnostic(r.diagnostics[0]);
      return Status("STORE_CORRUPT", fmt::format("stored model {} no longer loads: {}", id, why));
    }
    done.insert(id);
    return {};
  };
  for (const auto& [id, rec] : recs) {
    if (Status st = restore(id, 0); !st.ok()) return st;
  }
  return {};
}

Status Store::Put(std::string_view key, std::string_view value) {
  return FromRocks(impl_->db->Put(impl_->write_options, rocksdb::Slice(key.data(), key.size()),
                                  rocksdb::Slice(value.data(), value.size())),
                   "put");
}

Status Store::Delete(std::string_view key) {
  return FromRocks(impl_->db->Delete(impl_->write_options, rocksdb::Slice(key.data(), key.size())),
                   "delete");
}

std::optional<std::string> Store::Get(std::string_view key) const {
  std::string v;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &v);
  if (!s.ok()) return std::nullopt;
  return v;
}

const std::optional<tsdb::LogCut>& Store::history_log_cut() const { return impl_->history_log_cut; }

std::uint64_t Store::ApproximateBytes() const {
  std::uint64_t sst = 0, wal = 0;
  impl_->db->GetIntProperty("rocksdb.total-sst-files-size", &sst);
  rocksdb::VectorLogPtr files;
  if (impl_->db->GetSortedWalFiles(files).ok()) {
    for (const auto& f : files) wal += f->SizeFileBytes();
  }
  return sst + wal;
}

}  // namespace doppel::store
