// doppel::sync — flood protection: token buckets by key (MQTT ingest keys them by mapping and
// topic).
//
// What it does
//   RateLimiter::Allow(key, rate, burst, now) takes one token from the bucket of `key`: a bucket
//   holds at most `burst` tokens and refills at `rate` tokens per second; an empty bucket refuses.
//   So a key may send `burst` messages at once and `rate` per second for ever; the excess is
//   refused (the caller rejects it as MAPPING_RATE_LIMITED). Other keys are not affected.
//   The time is passed in (steady clock), so tests need no sleeping.
//
// How to use it
//   RateLimiter limiter;
//   if (!limiter.Allow(mapping_id + '\n' + topic, 100, 200, std::chrono::steady_clock::now())) ...
//
// Memory: at most `max_keys` buckets (default 100,000). When full, buckets that have refilled
//   completely (idle keys: forgetting them changes nothing) are dropped; if none has, the new key
//   is refused, so a flood of made-up topics cannot grow memory. Refusals for that reason are
//   counted (`overflow_refusals`).
//
// Threads: every method may be called from any thread (one mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace doppel::sync {

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RateLimiter(std::size_t max_keys = 100'000) : max_keys_(max_keys) {}

  // True if `key` may pass now. rate <= 0: no limit (always true, no bucket kept).
  bool Allow(std::string_view key, double rate, double burst, TimePoint now) {
    if (!(rate > 0)) return true;
    burst = std::max(burst, 1.0);
    std::lock_guard lock(mu_);
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= max_keys_) DropIdle(now);
      if (buckets_.size() >= max_keys_) {
        ++overflow_refusals_;
        return false;
      }
      it = buckets_.emplace(std::string(key), Bucket{burst, rate, burst, now}).first;
    }
    Bucket& b = it->second;
    b.rate = rate;
    b.burst = burst;
    Refill(b, now);
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return buckets_.size();
  }
  std::uint64_t overflow_refusals() const {
    std::lock_guard lock(mu_);
    return overflow_refusals_;
  }

 private:
  struct Bucket {
    double tokens;
    double rate;
    double burst;
    TimePoint last;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  static void Refill(Bucket& b, TimePoint now) {
    if (now > b.last) {
      const double seconds = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(b.burst, b.tokens + seconds * b.rate);
      b.last = now;
    }
  }

  void DropIdle(TimePoint now) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      Refill(it->second, now);
      if (it->second.tokens >= it->second.burst) {
        it = buckets_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket, Hash, std::equal_to<>> buckets_;
  std::uint64_t overflow_refusals_ = 0;
};

}  // namespace doppel::sync
