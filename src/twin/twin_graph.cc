#include "twin/twin_graph.h"

#include <fmt/format.h>
#include <pthread.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/json.h"
#include "core/time.h"
#include "twin/json_patch.h"
#include "twin/twin_document.h"

namespace doppel::twin {

namespace json = boost::json;
using core::Status;

Status TwinNotFound(std::string_view id) {
  return Status("TWIN_NOT_FOUND", fmt::format("no twin '{}'", id));
}

namespace {

// Index key of a primitive property value. Numbers compare like JSON values: 1 == 1.0,
// 0.0 == -0.0, and integers beyond 2^53 stay exact (no rounding through double).
std::optional<std::string> ValueKey(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      std::string key = "s";  // built with += : GCC 12 -O3 misreports -Wrestrict on "s" + str
      key += v.get_string();
      return key;
    }
    case json::kind::bool_:
      return v.get_bool() ? "b1" : "b0";
    case json::kind::int64:
      return fmt::format("i{}", v.get_int64());
    case json::kind::uint64:
      return fmt::format("i{}", v.get_uint64());
    case json::kind::double_: {
      double d = v.get_double();
      if (d == 0) return "i0";  // -0.0 == 0
      // A whole number keys like the same integer (1.0 == 1, 1e19 == 10000000000000000000).
      if (std::isfinite(d) && std::trunc(d) == d) return fmt::format("i{:.0f}", d);
      return fmt::format("d{}", d);
    }
    default:
      return std::nullopt;
  }
}

std::size_t HashId(std::string_view id) { return std::hash<std::string_view>{}(id); }

bool PreconditionFails(const Preconditions& pre, const std::string* current_etag, Status* why) {
  if (pre.if_none_match_any && current_etag != nullptr) {
    *why =
        Status("PRECONDITION_FAILED", "If-None-Match: * was given and the resource already exists");
    return true;
  }
  if (!pre.if_match.empty()) {
    if (current_etag == nullptr) {
      // A missing resource never matches (RFC 9110 §13.1.1).
      *why = Status(
          "PRECONDITION_FAILED",
          fmt::format("If-Match: {} was given and the resource does not exist", pre.if_match));
      return true;
    }
    if (pre.if_match != "*" && pre.if_match != *current_etag) {
      *why = Status("PRECONDITION_FAILED",
                    fmt::format("If-Match: {} does not match the current etag {}", pre.if_match,
                                *current_etag));
      return true;
    }
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shard state. Only the shard's thread mutates it (under the unique lock); readers take the
// shared lock just long enough to copy pointers.

struct TwinGraph::Shard {
  mutable std::shared_mutex mu;
  std::unordered_map<std::string, TwinPtr> twins;
  std::unordered_map<std::string, std::unordered_set<std::string>> by_model;
  std::unordered_map<std::string, std::map<std::string, RelationshipPtr>> outgoing;
  std::size_t relationship_count = 0;
  // property -> value key -> twin ids
  std::unordered_map<std::string, std::unordered_map<std::string, std::unordered_set<std::string>>>
      property_index;

  // The write queue.
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<std::unique_ptr<Op>> queue;
  bool stopping = false;
  std::thread thread;
  std::size_t index = 0;

  void IndexTwin(const TwinPtr& t, bool add) {
    if (add) {
      by_model[t->model].insert(t->id);
    } else if (auto it = by_model.find(t->model); it != by_model.end()) {
      it->second.erase(t->id);
      if (it->second.empty()) by_model.erase(it);
    }
    for (auto& [prop, values] : property_index) {
      const json::value* v = t->doc.if_contains(prop);
      if (v == nullptr) continue;
      auto key = ValueKey(*v);
      if (!key) continue;
      if (add) {
        values[*key].insert(t->id);
      } else if (auto it = values.find(*key); it != values.end()) {
        it->second.erase(t->id);
        if (it->second.empty()) values.erase(it);
      }
    }
  }
};

// Incoming relationships by target, written by the source's shard after commit. It also
// arbitrates between shards: a relationship being created towards a target registers itself as
// pending before it checks that the target exists, and a twin being deleted marks itself
// deleting only when it has neither incoming nor pending relationships. So a relationship and
// the deletion of its target, racing on two shards, can never both succeed.
class TwinGraph::IncomingIndex {
 public:
  void Add(const std::string& target, const std::string& source, const std::string& rel) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    s.map[target].rels.insert({source, rel});
  }
  void Remove(const std::string& target, const std::string& source, const std::string& rel) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(target);
    if (it == s.map.end()) return;
    it->second.rels.erase({source, rel});
    Compact(s, it);
  }
  std::vector<std::pair<std::string, std::string>> Of(std::string_view target) const {
    const Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(std::string(target));
    if (it == s.map.end()) return {};
    return {it->second.rels.begin(), it->second.rels.end()};
  }
  // False if `target` is being deleted.
  bool BeginPending(const std::string& target) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    Entry& e = s.map[target];
    if (e.deleting) {
      Compact(s, s.map.find(target));
      return false;
    }
    ++e.pending;
    return true;
  }
  void EndPending(const std::string& target) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(target);
    if (it == s.map.end()) return;
    --it->second.pending;
    Compact(s, it);
  }
  // False (nothing marked) if `target` has incoming or pending relationships.
  bool BeginDelete(const std::string& target, std::size_t* incoming) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    Entry& e = s.map[target];
    *incoming = e.rels.size() + static_cast<std::size_t>(e.pending);
    if (*incoming > 0 || e.deleting) {
      Compact(s, s.map.find(target));
      return false;
    }
    e.deleting = true;
    return true;
  }
  void EndDelete(const std::string& target) {
    Stripe& s = StripeOf(target);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(target);
    if (it == s.map.end()) return;
    it->second.deleting = false;
    Compact(s, it);
  }

 private:
  struct Entry {
    std::set<std::pair<std::string, std::string>> rels;
    int pending = 0;
    bool deleting = false;
  };
  struct Stripe {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
  };
  static void Compact(Stripe& s, std::unordered_map<std::string, Entry>::iterator it) {
    if (it != s.map.end() && it->second.rels.empty() && it->second.pending == 0 &&
        !it->second.deleting) {
      s.map.erase(it);
    }
  }
  Stripe& StripeOf(std::string_view k) { return stripes_[HashId(k) % stripes_.size()]; }
  const Stripe& StripeOf(std::string_view k) const { return stripes_[HashId(k) % stripes_.size()]; }
  std::array<Stripe, 64> stripes_;
};

// One group commit in progress on a shard: reads see the shard's published state overlaid with
// the effects of the group's earlier writes.
class Tx {
 public:
  Tx(const std::unordered_map<std::string, TwinPtr>& twins,
     const std::unordered_map<std::string, std::map<std::string, RelationshipPtr>>& outgoing)
      : twins_(twins), outgoing_(outgoing) {}

  TwinPtr GetTwin(const std::string& id) const {
    if (auto it = twin_overlay.find(id); it != twin_overlay.end()) return it->second;
    auto it = twins_.find(id);
    return it == twins_.end() ? nullptr : it->second;
  }
  RelationshipPtr GetRel(const std::string& src, const std::string& rel) const {
    if (auto it = rel_overlay.find({src, rel}); it != rel_overlay.end()) return it->second;
    auto it = outgoing_.find(src);
    if (it == outgoing_.end()) return nullptr;
    auto r = it->second.find(rel);
    return r == it->second.end() ? nullptr : r->second;
  }
  // All current outgoing relationships of `src`.
  std::vector<RelationshipPtr> Outgoing(const std::string& src) const {
    std::map<std::string, RelationshipPtr> merged;
    if (auto it = outgoing_.find(src); it != outgoing_.end()) merged = it->second;
    for (const auto& [k, r] : rel_overlay) {
      if (k.first != src) continue;
      if (r) {
        merged[k.second] = r;
      } else {
        merged.erase(k.second);
      }
    }
    std::vector<RelationshipPtr> out;
    out.reserve(merged.size());
    for (auto& [k, r] : merged) out.push_back(r);
    return out;
  }
  void PutTwin(const TwinPtr& t) {
    twin_overlay[t->id] = t;
    batch.ops.emplace_back(TwinKey(t->id), json::serialize(t->doc));
  }
  void DeleteTwin(const std::string& id) {
    twin_overlay[id] = nullptr;
    batch.ops.emplace_back(TwinKey(id), std::nullopt);
  }
  void PutRel(const RelationshipPtr& r) {
    rel_overlay[{r->source, r->id}] = r;
    batch.ops.emplace_back(RelationshipKey(r->source, r->id), json::serialize(r->doc));
  }
  void DeleteRel(const std::string& src, const std::string& rel) {
    rel_overlay[{src, rel}] = nullptr;
    batch.ops.emplace_back(RelationshipKey(src, rel), std::nullopt);
  }

  LogBatch batch;
  // Cross-shard reservations to release once the group is published (or failed).
  std::vector<std::string> pending_targets;     // IncomingIndex::BeginPending
  std::vector<std::string> deleting;            // IncomingIndex::BeginDelete
  std::map<std::string, TwinPtr> twin_overlay;  // nullptr = deleted
  std::map<std::pair<std::string, std::string>, RelationshipPtr> rel_overlay;  // nullptr = deleted
  // Previous published versions, for index maintenance.
  std::vector<ChangeEventPtr> events;

 private:
  const std::unordered_map<std::string, TwinPtr>& twins_;
  const std::unordered_map<std::string, std::map<std::string, RelationshipPtr>>& outgoing_;
};

struct TwinGraph::Op {
  // Runs on the shard thread: checks, then stages its effects into the Tx. An error stages
  // nothing.
  std::function<Status(Tx&)> execute;
  // Runs after the group is durable (or failed) with the op's final status.
  std::function<void(const Status&)> complete;
};

// ---------------------------------------------------------------------------------------------

TwinGraph::TwinGraph(model::ModelRepository& models, TwinLog* log, GraphOptions options)
    : models_(models), log_(log), options_(options), incoming_(std::make_unique<IncomingIndex>()) {
  if (options_.shards < 1) options_.shards = 1;
  for (int i = 0; i < options_.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->index = static_cast<std::size_t>(i);
  }
  // A model that twins use cannot be deleted.
  models_.SetDeleteGuard([this](std::string_view id) -> Status {
    if (ModelInUse(id)) {
      return Status("MODEL_IN_USE", fmt::format("model '{}' cannot be deleted: twins use it", id));
    }
    return {};
  });
  for (auto& s : shards_) {
    Shard* shard = s.get();
    shard->thread = std::thread([this, shard] { RunShard(*shard); });
  }
}

TwinGraph::~TwinGraph() {
  models_.SetDeleteGuard(nullptr);
  for (auto& s : shards_) {
    {
      std::lock_guard lock(s->queue_mu);
      s->stopping = true;
    }
    s->queue_cv.notify_all();
  }
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

TwinGraph::Shard& TwinGraph::ShardOf(std::string_view twin_id) const {
  return *shards_[HashId(twin_id) % shards_.size()];
}

void TwinGraph::Submit(Shard& s, std::unique_ptr<Op> op) {
  {
    std::unique_lock lock(s.queue_mu);
    if (s.stopping) {
      lock.unlock();
      op->complete(Status("SHUTTING_DOWN", "the twin graph is shutting down"));
      return;
    }
    s.queue.push_back(std::move(op));
  }
  s.queue_cv.notify_one();
}

void TwinGraph::RunShard(Shard& shard) {
  // Named so that `top -H` and profilers tell the shards apart (15 chars at most).
  pthread_setname_np(pthread_self(), fmt::format("doppel-shard{}", shard.index).c_str());
  std::vector<std::unique_ptr<Op>> group;
  std::vector<Status> results;
  for (;;) {
    group.clear();
    {
      std::unique_lock lock(shard.queue_mu);
      shard.queue_cv.wait(lock, [&] { return shard.stopping || !shard.queue.empty(); });
      if (shard.queue.empty() && shard.stopping) return;
      while (!shard.queue.empty() && group.size() < options_.max_group) {
        group.push_back(std::move(shard.queue.front()));
        shard.queue.pop_front();
      }
    }
    // Stage. Only this thread mutates the shard, so reading it without the lock is safe.
    Tx tx(shard.twins, shard.outgoing);
    results.assign(group.size(), Status());
    for (std::size_t i = 0; i < group.size(); ++i) results[i] = group[i]->execute(tx);

    // Commit: one durable batch for the whole group. It also records the shard's sequence
    // high-water mark, so that sequence numbers (and etags) of deleted objects are never
    // reissued after a restart.
    Status commit;
    if (!tx.batch.empty()) {
      tx.batch.ops.emplace_back(fmt::format("meta/seq/{}", shard.index),
                                std::to_string(seq_.load()));
    }
    if (!tx.batch.empty() && log_ != nullptr) {
      commit = log_->Commit(tx.batch);
      if (!commit.ok()) {
        commit = Status("STORE_IO", "the write could not be made durable: " + commit.message());
      }
    }
    if (commit.ok() && !tx.batch.empty()) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      // Publish.
      std::vector<std::tuple<std::string, std::string, std::string, bool>> incoming_changes;
      {
        std::unique_lock lock(shard.mu);
        for (auto& [id, t] : tx.twin_overlay) {
          if (auto it = shard.twins.find(id); it != shard.twins.end()) {
            shard.IndexTwin(it->second, false);
            if (t) {
              it->second = t;
            } else {
              shard.twins.erase(it);
            }
          } else if (t) {
            shard.twins.emplace(id, t);
          }
          if (t) shard.IndexTwin(t, true);
        }
        for (auto& [key, r] : tx.rel_overlay) {
          auto& out = shard.outgoing[key.first];
          if (auto it = out.find(key.second); it != out.end()) {
            incoming_changes.emplace_back(it->second->target, key.first, key.second, false);
            out.erase(it);
            --shard.relationship_count;
          }
          if (r) {
            out.emplace(key.second, r);
            ++shard.relationship_count;
            incoming_changes.emplace_back(r->target, key.first, key.second, true);
          }
          if (out.empty()) shard.outgoing.erase(key.first);
        }
      }
      for (const auto& [target, src, rel, add] : incoming_changes) {
        if (add) {
          incoming_->Add(target, src, rel);
        } else {
          incoming_->Remove(target, src, rel);
        }
      }
      for (const auto& e : tx.events) feed_.Publish(e);
    }
    for (const auto& t : tx.pending_targets) incoming_->EndPending(t);
    for (const auto& t : tx.deleting) incoming_->EndDelete(t);
    for (std::size_t i = 0; i < group.size(); ++i) {
      Status final_status = results[i].ok() ? commit : results[i];
      if (final_status.ok()) {
        writes_.fetch_add(1, std::memory_order_relaxed);
      } else {
        failed_writes_.fetch_add(1, std::memory_order_relaxed);
      }
      group[i]->complete(final_status);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writes

namespace {

// `patch` without the operations on properties whose sourceTime is at or after `t`.
json::value DropStaleOps(const Twin& twin, const json::value& patch,
                         std::chrono::system_clock::time_point t) {
  json::array kept;
  if (!patch.is_array()) return kept;
  for (const auto& op : patch.get_array()) {
    const auto* path = op.is_object() ? op.get_object().if_contains("path") : nullptr;
    if (path != nullptr && path->is_string()) {
      auto current = PropertySourceTime(twin, path->get_string());
      if (current && *current >= t) continue;
    }
    kept.push_back(op);
  }
  return kept;
}

// Validates the user view of a twin and resolves its model. `current_model` is the model the
// twin uses now (null when creating): a decommissioned model stays usable by the twins already
// on it, but no twin can be created on it or moved onto it.
core::Result<model::ResolvedPtr> CheckTwinBody(const model::ModelRepository& models,
                                               const std::string& id, const json::object& user,
                                               const std::string* current_model) {
  const json::value* dtid = user.if_contains("$dtId");
  if (dtid != nullptr && (!dtid->is_string() || dtid->get_string() != id)) {
    return Status("INVALID_TWIN",
                  fmt::format("$dtId {} differs from the id '{}' in the request",
                              core::Abbreviate(*dtid), id),
                  "/$dtId");
  }
  const json::value* meta = user.if_contains("$metadata");
  const json::value* model_id =
      meta != nullptr && meta->is_object() ? meta->get_object().if_contains("$model") : nullptr;
  if (model_id == nullptr || !model_id->is_string()) {
    return Status("INVALID_TWIN", "a twin needs \"$metadata\": {\"$model\": \"dtmi:...\"}",
                  "/$metadata/$model");
  }
  auto info = models.Get(model_id->get_string());
  if (!info) {
    auto resolved = models.Resolve(model_id->get_string());
    if (!resolved.ok()) {
      return Status(
          "MODEL_NOT_FOUND",
          fmt::format("model '{}' is not in the model repository", model_id->get_string()),
          "/$metadata/$model");
    }
  } else if (info->decommissioned &&
             (current_model == nullptr || *current_model != model_id->get_string())) {
    return Status("MODEL_DECOMMISSIONED",
                  fmt::format("model '{}' is decommissioned; twins cannot be created on it or "
                              "moved onto it",
                              model_id->get_string()),
                  "/$metadata/$model");
  }
  auto resolved = models.Resolve(model_id->get_string());
  if (!resolved.ok()) return resolved.status();
  auto violations = ValidateTwinContent(**resolved, user, true);
  if (!violations.empty()) {
    Status error("INVALID_TWIN",
                 fmt::format("the twin does not conform to {}: {} problem(s); first: {}",
                             (*resolved)->id(), violations.size(), violations.front().message()),
                 violations.front().pointer());
    return std::move(error).WithDetails(std::move(violations));
  }
  return *resolved;
}

ChangeEventPtr MakeEvent(ChangeKind kind, std::uint64_t seq, std::string twin_id, std::string model,
                         std::string rel, std::string etag, json::value patch, json::value data) {
  auto e = std::make_shared<ChangeEvent>();
  e->kind = kind;
  e->seq = seq;
  e->twin_id = std::move(twin_id);
  e->model = std::move(model);
  e->relationship_id = std::move(rel);
  e->etag = std::move(etag);
  e->patch = std::move(patch);
  e->data = std::move(data);
  e->time = std::chrono::system_clock::now();
  return e;
}

// An Op's completion that hands `done` the staged result, or the failure.
template <typename T>
std::function<void(const Status&)> DeliverTo(std::function<void(core::Result<T>)> done,
                                             std::shared_ptr<T> result) {
  return [done = std::move(done), result = std::move(result)](const Status& s) {
    if (s.ok()) {
      done(*result);
    } else {
      done(s);
    }
  };
}

// Wraps an async write into a blocking call.
template <typename T, typename F>
T Wait(F&& start) {
  std::promise<T> p;
  auto f = p.get_future();
  start([&p](T r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

void TwinGraph::PutTwin(std::string id, json::value body, Preconditions pre, TwinDone done) {
  if (Status s = CheckId(id, "twin"); !s.ok()) return done(s);
  if (!body.is_object()) {
    return done(Status("INVALID_TWIN", "the twin must be a JSON object"));
  }
  auto result = std::make_shared<TwinPtr>();
  Shard& shard = ShardOf(id);  // before id moves into the op
  auto op = std::make_unique<Op>();
  op->execute = [this, id = std::move(id), body = std::move(body), pre = std::move(pre),
                 result](Tx& tx) -> Status {
    TwinPtr current = tx.GetTwin(id);
    Status why;
    if (PreconditionFails(pre, current ? &current->etag : nullptr, &why)) return why;
    const json::object& user = body.get_object();
    auto model = CheckTwinBody(models_, id, user, current ? &current->model : nullptr);
    if (!model.ok()) return model.status();
    auto t = std::make_shared<Twin>();
    t->id = id;
    t->model = (*model)->id();
    t->seq = seq_.fetch_add(1) + 1;
    t->etag = EtagOf(t->seq);
    t->doc = BuildStoredDoc(id, t->seq, user, current.get(), **model, Touched{"*"},
                            std::chrono::system_clock::now(), std::nullopt);
    tx.PutTwin(t);
    tx.events.push_back(MakeEvent(current ? ChangeKind::kTwinReplaced : ChangeKind::kTwinCreated,
                                  t->seq, id, t->model, {}, t->etag, nullptr, t->doc));
    *result = t;
    return {};
  };
  op->complete = DeliverTo(std::move(done), result);
  Submit(shard, std::move(op));
}

void TwinGraph::PatchTwin(std::string id, json::value patch, Preconditions pre, TwinDone done,
                          WriteContext ctx) {
  if (Status s = CheckId(id, "twin"); !s.ok()) return done(s);
  auto result = std::make_shared<TwinPtr>();
  Shard& shard = ShardOf(id);  // before id moves into the op
  auto op = std::make_unique<Op>();
  op->execute = [this, id = std::move(id), patch = std::move(patch), pre = std::move(pre), ctx,
                 result](Tx& tx) -> Status {
    TwinPtr current = tx.GetTwin(id);
    if (!current) return TwinNotFound(id);
    Status why;
    if (PreconditionFails(pre, &current->etag, &why)) return why;
    auto current_model = models_.Resolve(current->model);
    if (!current_model.ok()) return current_model.status();
    const json::value* ops = &patch;
    json::value newer;
    if (ctx.only_newer && ctx.source_time) {
      newer = DropStaleOps(*current, patch, *ctx.source_time);
      if (newer.as_array().empty()) {
        *result = current;  // nothing newer: no write, same version
        return {};
      }
      ops = &newer;
    }
    json::value user = UserView(*current, **current_model);
    auto patched = ApplyJsonPatch(user, *ops);
    if (!patched.ok()) return patched.status();
    if (!patched->is_object())
      return Status("INVALID_TWIN",
                    "the patch replaced the twin with "
                    "a non-object");
    const json::object& obj = patched->get_object();
    auto model = CheckTwinBody(models_, id, obj, &current->model);
    if (!model.ok()) return model.status();
    auto t = std::make_shared<Twin>();
    t->id = id;
    t->model = (*model)->id();
    t->seq = seq_.fetch_add(1) + 1;
    t->etag = EtagOf(t->seq);
    t->doc = BuildStoredDoc(id, t->seq, obj, current.get(), **model, TouchedByPatch(*ops),
                            std::chrono::system_clock::now(), ctx.source_time);
    tx.PutTwin(t);
    tx.events.push_back(
        MakeEvent(ChangeKind::kTwinPatched, t->seq, id, t->model, {}, t->etag, *ops, nullptr));
    *result = t;
    return {};
  };
  op->complete = DeliverTo(std::move(done), result);
  Submit(shard, std::move(op));
}

void TwinGraph::PatchComponent(std::string id, std::string component, json::value patch,
                               Preconditions pre, TwinDone done) {
  if (!patch.is_array()) {
    return done(Status("PATCH_NOT_ARRAY", "a JSON Patch must be an array of operations"));
  }
  std::string prefix = "/";
  prefix += core::EscapePointerToken(component);
  json::array rewritten;
  const auto& ops = patch.get_array();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    json::value o = ops[i];
    if (o.is_object()) {
      for (const char* member : {"path", "from"}) {
        if (auto* p = o.get_object().if_contains(member); p && p->is_string()) {
          std::string_view ptr = p->get_string();
          // RFC 6901: a pointer is empty or starts with '/'. Prefixing anything else would
          // point outside the component ("Mode" -> "/driveMode").
          if (!ptr.empty() && ptr[0] != '/') {
            return done(Status("PATCH_INVALID_POINTER",
                               fmt::format("operation {}: '{}' is not a JSON pointer (it must "
                                           "start with '/')",
                                           i, ptr),
                               fmt::format("/{}/{}", i, member)));
          }
          *p = prefix + std::string(ptr);
        }
      }
    }
    rewritten.push_back(std::move(o));
  }
  // The component must exist as a component of the twin's model; checked against the result.
  TwinPtr t = FindTwin(id);
  if (t) {
    auto model = models_.Resolve(t->model);
    const model::ResolvedContent* rc = model.ok() ? (*model)->Find(component) : nullptr;
    if (rc == nullptr || rc->content->kind != model::ContentKind::kComponent) {
      return done(Status("COMPONENT_NOT_FOUND", fmt::format("twin '{}' ({}) has no component '{}'",
                                                            id, t->model, component)));
    }
  }
  PatchTwin(std::move(id), json::value(std::move(rewritten)), std::move(pre), std::move(done));
}

void TwinGraph::DeleteTwin(std::string id, Preconditions pre, Done done) {
  Shard& shard = ShardOf(id);  // before id moves into the op
  auto op = std::make_unique<Op>();
  op->execute = [this, id = std::move(id), pre = std::move(pre)](Tx& tx) -> Status {
    TwinPtr current = tx.GetTwin(id);
    if (!current) return TwinNotFound(id);
    Status why;
    if (PreconditionFails(pre, &current->etag, &why)) return why;
    auto out = tx.Outgoing(id);
    std::size_t incoming = 0;
    // Reserve the deletion against relationships being created towards this twin on any
    // shard (see IncomingIndex); released after the group is published.
    bool reserved = out.empty() && incoming_->BeginDelete(id, &incoming);
    if (!reserved) {
      if (out.empty()) incoming = std::max<std::size_t>(incoming, 1);
      return Status("TWIN_HAS_RELATIONSHIPS",
                    fmt::format("twin '{}' still has {} outgoing and {} incoming relationship(s); "
                                "delete them first",
                                id, out.size(), incoming));
    }
    tx.deleting.push_back(id);
    std::uint64_t seq = seq_.fetch_add(1) + 1;
    tx.DeleteTwin(id);
    tx.events.push_back(
        MakeEvent(ChangeKind::kTwinDeleted, seq, id, current->model, {}, {}, nullptr, nullptr));
    return {};
  };
  op->complete = [done = std::move(done)](const Status& s) { done(s); };
  Submit(shard, std::move(op));
}

Status TwinGraph::StageRelationship(Tx& tx, const std::string& source, const std::string& rel_id,
                                    const json::value* body, const json::value* patch,
                                    const Preconditions& pre, RelationshipPtr* result) {
  TwinPtr src = tx.GetTwin(source);
  if (!src) return TwinNotFound(source);
  RelationshipPtr current = tx.GetRel(source, rel_id);
  if (patch != nullptr && !current) {
    return Status("RELATIONSHIP_NOT_FOUND",
                  fmt::format("twin '{}' has no relationship '{}'", source, rel_id));
  }
  Status why;
  if (PreconditionFails(pre, current ? &current->etag : nullptr, &why)) return why;
  json::value patched;
  if (patch != nullptr) {
    auto r = ApplyJsonPatch(json::value(RelationshipUserView(*current)), *patch);
    if (!r.ok()) return r.status();
    patched = std::move(*r);
    body = &patched;
  }
  if (!body->is_object()) {
    return Status("INVALID_RELATIONSHIP", "the relationship must be a JSON object");
  }
  auto src_model = models_.Resolve(src->model);
  if (!src_model.ok()) return src_model.status();
  const json::object& obj = body->get_object();
  std::string target_id;
  if (const auto* t = obj.if_contains("$targetId"); t && t->is_string()) {
    target_id = std::string(t->get_string());
  }
  // Register as pending towards the target before looking it up, so a concurrent deletion of
  // the target on its own shard either sees us (and refuses) or has already marked itself
  // deleting (and we refuse). Released after the group is published.
  bool pending = !target_id.empty() && incoming_->BeginPending(target_id);
  if (!target_id.empty() && !pending) {
    return Status("TARGET_NOT_FOUND", fmt::format("target twin '{}' is being deleted", target_id),
                  "/$targetId");
  }
  // A target owned by this shard is read through the group (it may have been written earlier
  // in it); one owned by another shard is read as published.
  TwinPtr target = target_id.empty()                         ? nullptr
                   : &ShardOf(target_id) == &ShardOf(source) ? tx.GetTwin(target_id)
                                                             : FindTwin(target_id);
  model::ResolvedPtr target_model;
  if (target) {
    auto tm = models_.Resolve(target->model);
    if (tm.ok()) target_model = *tm;
  }
  std::string name;
  if (const auto* n = obj.if_contains("$relationshipName"); n && n->is_string()) {
    name = std::string(n->get_string());
  }
  // Counting siblings costs a walk over the source's relationships: only done when the
  // definition limits them.
  std::size_t same_name = 0;
  const model::ResolvedContent* def = (*src_model)->Find(name);
  if (def != nullptr && def->content->kind == model::ContentKind::kRelationship &&
      def->content->max_multiplicity) {
    for (const auto& r : tx.Outgoing(source)) {
      if (r->name == name && r->id != rel_id) ++same_name;
    }
  }
  std::uint64_t seq = seq_.fetch_add(1) + 1;
  auto doc = BuildRelationshipDoc(source, rel_id, seq, obj, **src_model, target, target_model.get(),
                                  same_name);
  if (!doc.ok()) {
    if (pending) incoming_->EndPending(target_id);
    return doc.status();
  }
  if (pending) tx.pending_targets.push_back(target_id);
  auto r = std::make_shared<Relationship>();
  r->id = rel_id;
  r->source = source;
  r->target = target_id;
  r->name = name;
  r->seq = seq;
  r->etag = EtagOf(seq);
  r->doc = std::move(*doc);
  tx.PutRel(r);
  ChangeKind kind = patch != nullptr ? ChangeKind::kRelationshipPatched
                    : current        ? ChangeKind::kRelationshipReplaced
                                     : ChangeKind::kRelationshipCreated;
  tx.events.push_back(MakeEvent(kind, seq, source, src->model, rel_id, r->etag,
                                patch != nullptr ? *patch : json::value(nullptr),
                                patch != nullptr ? json::value(nullptr) : json::value(r->doc)));
  *result = r;
  return {};
}

void TwinGraph::PutRelationship(std::string source, std::string rel_id, json::value body,
                                Preconditions pre, RelationshipDone done) {
  if (Status s = CheckId(source, "twin"); !s.ok()) return done(s);
  if (Status s = CheckId(rel_id, "relationship"); !s.ok()) return done(s);
  if (!body.is_object()) {
    return done(Status("INVALID_RELATIONSHIP", "the relationship must be a JSON object"));
  }
  auto result = std::make_shared<RelationshipPtr>();
  Shard& shard = ShardOf(source);  // before source moves into the op
  auto op = std::make_unique<Op>();
  op->execute = [this, source = std::move(source), rel_id = std::move(rel_id),
                 body = std::move(body), pre = std::move(pre), result](Tx& tx) {
    return StageRelationship(tx, source, rel_id, &body, nullptr, pre, result.get());
  };
  op->complete = DeliverTo(std::move(done), result);
  Submit(shard, std::move(op));
}

void TwinGraph::PatchRelationship(std::string source, std::string rel_id, json::value patch,
                                  Preconditions pre, RelationshipDone done) {
  if (Status s = CheckId(source, "twin"); !s.ok()) return done(s);
  if (Status s = CheckId(rel_id, "relationship"); !s.ok()) return done(s);
  auto result = std::make_shared<RelationshipPtr>();
  Shard& shard = ShardOf(source);  // before source moves into the op
  auto op = std::make_unique<Op>();
  // Applied on the shard thread to the latest version, like a twin patch.
  op->execute = [this, source = std::move(source), rel_id = std::move(rel_id),
                 patch = std::move(patch), pre = std::move(pre), result](Tx& tx) {
    return StageRelationship(tx, source, rel_id, nullptr, &patch, pre, result.get());
  };
  op->complete = DeliverTo(std::move(done), result);
  Submit(shard, std::move(op));
}

void TwinGraph::DeleteRelationship(std::string source, std::string rel_id, Preconditions pre,
                                   Done done) {
  Shard& shard = ShardOf(source);  // before source moves into the op
  auto op = std::make_unique<Op>();
  op->execute = [this, source = std::move(source), rel_id = std::move(rel_id),
                 pre = std::move(pre)](Tx& tx) -> Status {
    RelationshipPtr current = tx.GetRel(source, rel_id);
    if (!current) {
      return Status("RELATIONSHIP_NOT_FOUND",
                    fmt::format("twin '{}' has no relationship '{}'", source, rel_id));
    }
    Status why;
    if (PreconditionFails(pre, &current->etag, &why)) return why;
    std::uint64_t seq = seq_.fetch_add(1) + 1;
    TwinPtr src = tx.GetTwin(source);
    tx.DeleteRel(source, rel_id);
    tx.events.push_back(MakeEvent(ChangeKind::kRelationshipDeleted, seq, source,
                                  src ? src->model : "", rel_id, {}, nullptr, nullptr));
    return {};
  };
  op->complete = [done = std::move(done)](const Status& s) { done(s); };
  Submit(shard, std::move(op));
}

core::Result<TwinPtr> TwinGraph::PutTwinSync(std::string id, json::value body, Preconditions pre) {
  return Wait<core::Result<TwinPtr>>(
      [&](auto cb) { PutTwin(std::move(id), std::move(body), pre, std::move(cb)); });
}
core::Result<TwinPtr> TwinGraph::PatchTwinSync(std::string id, json::value patch, Preconditions pre,
                                               WriteContext ctx) {
  return Wait<core::Result<TwinPtr>>(
      [&](auto cb) { PatchTwin(std::move(id), std::move(patch), pre, std::move(cb), ctx); });
}
core::Result<TwinPtr> TwinGraph::PatchComponentSync(std::string id, std::string component,
                                                    json::value patch, Preconditions pre) {
  return Wait<core::Result<TwinPtr>>([&](auto cb) {
    PatchComponent(std::move(id), std::move(component), std::move(patch), pre, std::move(cb));
  });
}
core::Status TwinGraph::DeleteTwinSync(std::string id, Preconditions pre) {
  return Wait<Status>([&](auto cb) { DeleteTwin(std::move(id), pre, std::move(cb)); });
}
core::Result<RelationshipPtr> TwinGraph::PutRelationshipSync(std::string source, std::string rel_id,
                                                             json::value body, Preconditions pre) {
  return Wait<core::Result<RelationshipPtr>>([&](auto cb) {
    PutRelationship(std::move(source), std::move(rel_id), std::move(body), pre, std::move(cb));
  });
}
core::Result<RelationshipPtr> TwinGraph::PatchRelationshipSync(std::string source,
                                                               std::string rel_id,
                                                               json::value patch,
                                                               Preconditions pre) {
  return Wait<core::Result<RelationshipPtr>>([&](auto cb) {
    PatchRelationship(std::move(source), std::move(rel_id), std::move(patch), pre, std::move(cb));
  });
}
core::Status TwinGraph::DeleteRelationshipSync(std::string source, std::string rel_id,
                                               Preconditions pre) {
  return Wait<Status>([&](auto cb) {
    DeleteRelationship(std::move(source), std::move(rel_id), pre, std::move(cb));
  });
}

// ---------------------------------------------------------------------------------------------
// Reads

TwinPtr TwinGraph::FindTwin(std::string_view id) const {
  Shard& s = ShardOf(id);
  std::shared_lock lock(s.mu);
  auto it = s.twins.find(std::string(id));
  return it == s.twins.end() ? nullptr : it->second;
}

void TwinGraph::ForEachTwin(const std::function<bool(const TwinPtr&)>& fn) const {
  for (const auto& s : shards_) {
    std::vector<TwinPtr> copy;
    {
      std::shared_lock lock(s->mu);
      copy.reserve(s->twins.size());
      for (const auto& [id, t] : s->twins) copy.push_back(t);
    }
    for (const auto& t : copy) {
      if (!fn(t)) return;
    }
  }
}

std::size_t TwinGraph::TwinCount() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::shared_lock lock(s->mu);
    n += s->twins.size();
  }
  return n;
}

std::vector<TwinPtr> TwinGraph::TwinsOfModels(std::span<const std::string> model_ids) const {
  std::vector<TwinPtr> out;
  for (const auto& s : shards_) {
    std::shared_lock lock(s->mu);
    for (const auto& m : model_ids) {
      auto it = s->by_model.find(m);
      if (it == s->by_model.end()) continue;
      for (const auto& id : it->second) out.push_back(s->twins.at(id));
    }
  }
  return out;
}

std::vector<RelationshipPtr> TwinGraph::Outgoing(std::string_view source,
                                                 std::string_view name) const {
  Shard& s = ShardOf(source);
  std::shared_lock lock(s.mu);
  std::vector<RelationshipPtr> out;
  auto it = s.outgoing.find(std::string(source));
  if (it == s.outgoing.end()) return out;
  for (const auto& [id, r] : it->second) {
    if (name.empty() || r->name == name) out.push_back(r);
  }
  return out;
}

std::vector<RelationshipPtr> TwinGraph::Incoming(std::string_view target) const {
  std::vector<RelationshipPtr> out;
  for (const auto& [src, rel] : incoming_->Of(target)) {
    if (auto r = FindRelationship(src, rel); r && r->target == target) out.push_back(r);
  }
  return out;
}

RelationshipPtr TwinGraph::FindRelationship(std::string_view source,
                                            std::string_view rel_id) const {
  Shard& s = ShardOf(source);
  std::shared_lock lock(s.mu);
  auto it = s.outgoing.find(std::string(source));
  if (it == s.outgoing.end()) return nullptr;
  auto r = it->second.find(std::string(rel_id));
  return r == it->second.end() ? nullptr : r->second;
}

bool TwinGraph::ModelInUse(std::string_view model_id) const {
  for (const auto& s : shards_) {
    std::shared_lock lock(s->mu);
    if (s->by_model.contains(std::string(model_id))) return true;
  }
  return false;
}

std::optional<std::vector<TwinPtr>> TwinGraph::TwinsWithProperty(std::string_view property,
                                                                 const json::value& value) const {
  auto key = ValueKey(value);
  if (!key) return std::nullopt;
  std::vector<TwinPtr> out;
  for (const auto& s : shards_) {
    std::shared_lock lock(s->mu);
    auto idx = s->property_index.find(std::string(property));
    if (idx == s->property_index.end()) return std::nullopt;
    auto it = idx->second.find(*key);
    if (it == idx->second.end()) continue;
    for (const auto& id : it->second) out.push_back(s->twins.at(id));
  }
  return out;
}

void TwinGraph::NoteFilteredProperty(std::string_view property) const {
  {
    std::lock_guard lock(usage_mu_);
    int& n = property_usage_[std::string(property)];
    if (++n != options_.property_index_threshold) return;
  }
  for (const auto& s : shards_) {
    std::unique_lock lock(s->mu);
    auto& values = s->property_index[std::string(property)];
    for (const auto& [id, t] : s->twins) {
      const json::value* v = t->doc.if_contains(property);
      if (v == nullptr) continue;
      if (auto key = ValueKey(*v)) values[*key].insert(id);
    }
  }
}

TwinGraph::Stats TwinGraph::stats() const {
  Stats st;
  for (const auto& s : shards_) {
    std::shared_lock lock(s->mu);
    st.twins += s->twins.size();
    st.relationships += s->relationship_count;
    st.indexed_properties = std::max(st.indexed_properties, s->property_index.size());
  }
  st.writes = writes_.load();
  st.failed_writes = failed_writes_.load();
  st.commits = commits_.load();
  return st;
}

// ---------------------------------------------------------------------------------------------
// Recovery

core::Status TwinGraph::Load() {
  if (log_ == nullptr) return {};
  std::uint64_t max_seq = 0;
  Status bad;
  Status s = log_->Scan("t/", [&](std::string_view key, std::string_view value) {
    auto doc = core::ParseJson(value);
    if (!doc.ok() || !doc->is_object()) {
      bad = Status("STORE_CORRUPT", fmt::format("twin record {} is not valid JSON", key));
      return;
    }
    auto t = std::make_shared<Twin>();
    t->doc = std::move(doc->get_object());
    t->id = std::string(key.substr(2));
    const auto* meta = t->doc.if_contains("$metadata");
    const auto* model =
        meta && meta->is_object() ? meta->get_object().if_contains("$model") : nullptr;
    const auto* etag = t->doc.if_contains("$etag");
    if (model == nullptr || !model->is_string() || etag == nullptr || !etag->is_string()) {
      bad = Status("STORE_CORRUPT", fmt::format("twin record {} lacks $model or $etag", key));
      return;
    }
    t->model = std::string(model->get_string());
    t->etag = std::string(etag->get_string());
    t->seq = SeqOfEtag(t->etag).value_or(0);
    max_seq = std::max(max_seq, t->seq);
    Shard& shard = ShardOf(t->id);
    std::unique_lock lock(shard.mu);
    shard.twins[t->id] = t;
    shard.IndexTwin(t, true);
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  s = log_->Scan("r/", [&](std::string_view key, std::string_view value) {
    auto doc = core::ParseJson(value);
    if (!doc.ok() || !doc->is_object()) {
      bad = Status("STORE_CORRUPT", "a relationship record is not valid JSON");
      return;
    }
    auto r = std::make_shared<Relationship>();
    r->doc = std::move(doc->get_object());
    auto str = [&](const char* k) -> std::string {
      const auto* v = r->doc.if_contains(k);
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    r->id = str("$relationshipId");
    r->source = str("$sourceId");
    r->target = str("$targetId");
    r->name = str("$relationshipName");
    r->etag = str("$etag");
    r->seq = SeqOfEtag(r->etag).value_or(0);
    (void)key;
    max_seq = std::max(max_seq, r->seq);
    Shard& shard = ShardOf(r->source);
    {
      std::unique_lock lock(shard.mu);
      shard.outgoing[r->source][r->id] = r;
      ++shard.relationship_count;
    }
    incoming_->Add(r->target, r->source, r->id);
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  s = log_->Scan("meta/seq/", [&](std::string_view, std::string_view value) {
    std::uint64_t v = 0;
    std::from_chars(value.data(), value.data() + value.size(), v);
    max_seq = std::max(max_seq, v);
  });
  if (!s.ok()) return s;
  seq_.store(max_seq);
  return {};
}

}  // namespace doppel::twin
