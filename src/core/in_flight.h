// doppel::core::InFlight — bounds the number of asynchronous operations in flight and waits for
// them: Acquire before starting one (blocks while `max` are running), Release from its
// completion (any thread), WaitAll to drain. Used where a producer thread feeds the twin graph's
// shards (bulk import, benchmarks).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace doppel::core {

class InFlight {
 public:
  explicit InFlight(std::size_t max) : max_(max) {}
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return n_ < max_; });
    ++n_;
  }
  // Notifies under the lock: a WaitAll() caller may destroy this object as soon as it sees zero,
  // so nothing here may touch a member after the mutex is released (ThreadSanitizer found the
  // notify-after-unlock version calling a destroyed condition variable).
  void Release() {
    std::lock_guard lock(mu_);
    --n_;
    cv_.notify_all();
  }
  void WaitAll() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t n_ = 0;
  std::size_t max_;
};

}  // namespace doppel::core
