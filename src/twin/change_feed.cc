#include "twin/change_feed.h"

#include <algorithm>
#include <boost/json.hpp>

#include "core/time.h"

namespace doppel::twin {

const char* ChangeKindName(ChangeKind k) {
  switch (k) {
    case ChangeKind::kTwinCreated: return "twin.created";
    case ChangeKind::kTwinReplaced: return "twin.replaced";
    case ChangeKind::kTwinPatched: return "twin.patched";
    case ChangeKind::kTwinDeleted: return "twin.deleted";
    case ChangeKind::kRelationshipCreated: return "relationship.created";
    case ChangeKind::kRelationshipReplaced: return "relationship.replaced";
    case ChangeKind::kRelationshipPatched: return "relationship.patched";
    case ChangeKind::kRelationshipDeleted: return "relationship.deleted";
    case ChangeKind::kTwinStale: return "twin.stale";
    case ChangeKind::kTwinFresh: return "twin.fresh";
    case ChangeKind::kTwinAnomaly: return "twin.anomaly";
    case ChangeKind::kTwinAnomalyCleared: return "twin.anomalyCleared";
  }
  return "?";
}

bool IsNotice(ChangeKind k) {
  return k == ChangeKind::kTwinStale || k == ChangeKind::kTwinFresh ||
         k == ChangeKind::kTwinAnomaly || k == ChangeKind::kTwinAnomalyCleared;
}

boost::json::value ChangeEvent::ToJson() const {
  boost::json::object o;
  o["type"] = ChangeKindName(kind);
  if (!IsNotice(kind)) o["seq"] = seq;
  o["twinId"] = twin_id;
  o["model"] = model;
  if (!relationship_id.empty()) o["relationshipId"] = relationship_id;
  if (!etag.empty()) o["etag"] = etag;
  if (!patch.is_null()) o["patch"] = patch;
  if (!data.is_null()) o["data"] = data;
  o["time"] = core::FormatRfc3339(time);
  return o;
}

bool Subscription::Drain(std::vector<ChangeEventPtr>* out) {
  std::lock_guard lock(mu_);
  out->insert(out->end(), queue_.begin(), queue_.end());
  queue_.clear();
  return !overflowed_;
}

bool Subscription::overflowed() const {
  std::lock_guard lock(mu_);
  return overflowed_;
}

std::shared_ptr<Subscription> ChangeFeed::Subscribe(std::size_t capacity,
                                                    std::function<void()> notify) {
  auto s = std::make_shared<Subscription>();
  s->capacity_ = capacity;
  s->notify_ = std::move(notify);
  std::lock_guard lock(mu_);
  subs_.push_back(s);
  return s;
}

void ChangeFeed::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
}

void ChangeFeed::Publish(const ChangeEventPtr& e) {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lock(mu_);
    subs = subs_;
  }
  for (const auto& s : subs) {
    bool notify = false;
    {
      std::lock_guard lock(s->mu_);
      if (s->overflowed_) continue;
      if (s->queue_.size() >= s->capacity_) {
        s->overflowed_ = true;
      } else {
        s->queue_.push_back(e);
      }
      notify = true;
    }
    if (notify && s->notify_) s->notify_();
  }
}

std::size_t ChangeFeed::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace doppel::twin
