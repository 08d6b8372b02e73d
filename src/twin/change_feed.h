// doppel::twin — the change feed: every committed write, in commit order per twin, to any number
// of subscribers.
//
// Each subscriber has a bounded queue. A subscriber that falls behind is never silently skipped
// ahead: once its queue is full it is marked overflowed, receives no further events, and its
// next Drain reports the overflow so the client can resynchronize (re-read state) and
// resubscribe.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace doppel::twin {

enum class ChangeKind {
  kTwinCreated,
  kTwinReplaced,
  kTwinPatched,
  kTwinDeleted,
  kRelationshipCreated,
  kRelationshipReplaced,
  kRelationshipPatched,
  kRelationshipDeleted,
  // Not writes: sync quality (sync/sync_quality.h) saw the twin go stale or recover. seq is 0
  // (no "seq" in ToJson), no etag; `data` holds the evidence (age, expected interval, last source
  // time).
  kTwinStale,
  kTwinFresh,
  // Not writes either: anomaly detection (analytics/anomaly/anomaly.h) flagged a series of the
  // twin, or cleared the flag. `data` holds the evidence, with data.path the element's JSON
  // Pointer.
  kTwinAnomaly,
  kTwinAnomalyCleared,
};
const char* ChangeKindName(ChangeKind k);  // "twin.created", ...
// A notice about a twin rather than a write: stale, fresh, anomaly, anomalyCleared (no seq).
bool IsNotice(ChangeKind k);

struct ChangeEvent {
  ChangeKind kind;
  std::uint64_t seq = 0;          // global write sequence number
  std::string twin_id;            // the twin, or the relationship's source
  std::string model;              // the twin's (or source twin's) model
  std::string relationship_id;    // relationship events
  std::string etag;               // new etag (empty for deletes)
  boost::json::value patch;       // patched: the RFC 6902 patch applied
  boost::json::value data;        // created/replaced: the new document
  std::chrono::system_clock::time_point time;

  boost::json::value ToJson() const;
};
using ChangeEventPtr = std::shared_ptr<const ChangeEvent>;

class ChangeFeed;

class Subscription {
 public:
  // Moves queued events into `out`. Returns false once the subscription overflowed (the events
  // already queued before the overflow are still delivered first).
  bool Drain(std::vector<ChangeEventPtr>* out);
  bool overflowed() const;

 private:
  friend class ChangeFeed;
  mutable std::mutex mu_;
  std::deque<ChangeEventPtr> queue_;
  std::size_t capacity_ = 0;
  bool overflowed_ = false;
  std::function<void()> notify_;
};

class ChangeFeed {
 public:
  // `notify` is called (from a writer thread; keep it cheap, e.g. post to an executor) whenever
  // events become available or the subscription overflows.
  std::shared_ptr<Subscription> Subscribe(std::size_t capacity, std::function<void()> notify);
  void Unsubscribe(const std::shared_ptr<Subscription>& s);
  void Publish(const ChangeEventPtr& e);
  std::size_t subscribers() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;
};

}  // namespace doppel::twin
