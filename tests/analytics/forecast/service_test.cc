// Retraining schedules of the forecast service (analytics/forecast/service.h) on a fake clock:
// when a schedule runs, what a run does (train, skip when no new bucket completed, fail with the
// reason), missed periods, replacing and deleting schedules, and the worker's queue.
#include "analytics/forecast/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <mutex>
#include <numbers>
#include <thread>
#include <vector>

#include "tsdb/history.h"

namespace doppel::analytics::forecast {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kT0 = 1'800'000'000 * kSecond;  // whole minute

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = tsdb::HistoryStore::Open(backend_);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    history_ = std::move(*h);
    service_ = OpenService();
  }
  std::unique_ptr<ForecastService> OpenService(bool worker = false, std::size_t max_queued = 64) {
    ForecastServiceOptions o;
    o.history = history_.get();
    o.now_ns = [this] { return now_.load(); };
    o.worker = worker;
    o.max_queued = max_queued;
    auto s = ForecastService::Open(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  // A reading every 10 s in [from, to).
  void Append(std::int64_t from, std::int64_t to) {
    std::vector<tsdb::Sample> samples;
    for (std::int64_t t = from; t < to; t += 10 * kSecond) {
      const double x = static_cast<double>(t - kT0) / static_cast<double>(kMinute);
      samples.push_back({"m1", "temperature", t, 60 + 5 * std::sin(2 * std::numbers::pi * x / 30)});
    }
    auto st = history_->Append(samples);
    ASSERT_TRUE(st.empty()) << st.front().ToString();
  }
  static ForecastRequest Request() {
    ForecastRequest r;
    r.twin = "m1";
    r.path = "temperature";
    r.step_ns = kMinute;
    r.horizon = 5;
    r.family = Family::kAutoregressive;
    return r;
  }

  tsdb::MemoryBackend backend_;
  std::unique_ptr<tsdb::HistoryStore> history_;
  std::atomic<std::int64_t> now_{kT0 + 300 * kMinute};
  std::unique_ptr<ForecastService> service_;
};

TEST_F(ScheduleTest, RunsWhenDueTrainsThenSkipsUntilABucketCompletes) {
  Append(kT0, kT0 + 300 * kMinute);
  auto s = service_->SetSchedule(Request(), 10min);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->next_run_ns, now_ + 10 * kMinute);
  EXPECT_EQ(service_->RunDueSchedules(), 0u);  // not due yet

  now_ += 10 * kMinute;
  EXPECT_EQ(service_->RunDueSchedules(), 1u);
  RetrainSchedule got = service_->Schedules().at(0);
  EXPECT_EQ(got.last_result, "trained");
  EXPECT_EQ(got.last_version, 1u);
  EXPECT_EQ(got.last_run_ns, now_);
  EXPECT_EQ(got.next_run_ns, now_ + 10 * kMinute);
  ASSERT_EQ(service_->Models("m1").size(), 1u);
  EXPECT_EQ(service_->Models("m1").at(0).family_choice, "autoregressive");

  // No point after the last bucket: the data window ends where it ended, nothing to learn.
  now_ += 10 * kMinute;
  EXPECT_EQ(service_->RunDueSchedules(), 1u);
  got = service_->Schedules().at(0);
  EXPECT_EQ(got.last_result, "skipped");
  EXPECT_EQ(got.last_version, 1u);
  EXPECT_EQ(service_->Models("m1").size(), 1u);

  // Five more minutes of data: version 2.
  Append(kT0 + 300 * kMinute, kT0 + 305 * kMinute);
  now_ += 10 * kMinute;
  EXPECT_EQ(service_->RunDueSchedules(), 1u);
  got = service_->Schedules().at(0);
  EXPECT_EQ(got.last_result, "trained");
  EXPECT_EQ(got.last_version, 2u);
  EXPECT_EQ(got.trained, 2u);
  EXPECT_EQ(got.skipped, 1u);
  EXPECT_EQ(got.failed, 0u);
  const RetrainTotals t = service_->Totals();
  EXPECT_EQ(t.trained, 2u);
  EXPECT_EQ(t.skipped, 1u);
  EXPECT_EQ(t.schedules, 1u);
}

TEST_F(ScheduleTest, MissedPeriodsRunOnceAndTheGridIsKept) {
  Append(kT0, kT0 + 300 * kMinute);
  const std::int64_t created = now_;
  ASSERT_TRUE(service_->SetSchedule(Request(), 10min).ok());
  now_ += 95 * kMinute;  // nine periods and a half
  EXPECT_EQ(service_->RunDueSchedules(), 1u);
  EXPECT_EQ(service_->RunDueSchedules(), 0u);
  const RetrainSchedule got = service_->Schedules().at(0);
  EXPECT_EQ(got.trained + got.skipped + got.failed, 1u);
  EXPECT_EQ(got.next_run_ns, created + 100 * kMinute);
}

TEST_F(ScheduleTest, ARunWithoutDataFailsWithTheReasonAndTheScheduleStays) {
  ASSERT_TRUE(service_->SetSchedule(Request(), 1min).ok());
  now_ += kMinute;
  EXPECT_EQ(service_->RunDueSchedules(), 1u);
  const RetrainSchedule got = service_->Schedules().at(0);
  EXPECT_EQ(got.last_result, "failed");
  EXPECT_EQ(got.last_error.rfind("FORECAST_NO_DATA: ", 0), 0u) << got.last_error;
  EXPECT_EQ(got.failed, 1u);
  EXPECT_EQ(service_->Totals().failed, 1u);
}

TEST_F(ScheduleTest, BadSchedulesAreRefusedAndReplacingOrDeletingWorks) {
  EXPECT_EQ(service_->SetSchedule(Request(), 500ms).status().code(), "FORECAST_BAD_OPTIONS");
  ForecastRequest bad = Request();
  bad.step_ns = 1500;
  EXPECT_EQ(service_->SetSchedule(bad, 1h).status().code(), "FORECAST_BAD_OPTIONS");
  bad = Request();
  bad.levels = {0.8, 1.0};
  EXPECT_EQ(service_->SetSchedule(bad, 1h).status().code(), "FORECAST_BAD_OPTIONS");
  EXPECT_TRUE(service_->Schedules().empty());

  ASSERT_TRUE(service_->SetSchedule(Request(), 1h).ok());
  ForecastRequest other = Request();
  other.horizon = 20;
  ASSERT_TRUE(service_->SetSchedule(other, 2h).ok());  // replaces: one per twin and path
  ASSERT_EQ(service_->Schedules().size(), 1u);
  EXPECT_EQ(service_->Schedules().at(0).request.horizon, 20);
  EXPECT_EQ(service_->Schedules().at(0).every_ns, 2 * 3600 * kSecond);
  EXPECT_EQ(service_->Schedules("m2").size(), 0u);

  EXPECT_EQ(service_->DeleteSchedule("m1", "pressure").code(), "FORECAST_SCHEDULE_NOT_FOUND");
  EXPECT_TRUE(service_->DeleteSchedule("m1", "temperature").ok());
  EXPECT_TRUE(service_->Schedules().empty());

  ASSERT_TRUE(service_->SetSchedule(Request(), 1h).ok());
  service_->Forget("m1");
  EXPECT_TRUE(service_->Schedules().empty());
  EXPECT_EQ(service_->Totals().schedules, 0u);
}

TEST_F(ScheduleTest, TheWorkerRunsJobsInOrderAndRefusesBeyondItsQueue) {
  service_ = OpenService(/*worker=*/true, /*max_queued=*/2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  std::vector<int> order;
  std::mutex mu;
  ASSERT_TRUE(service_->Submit([&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the worker holds the first job: the queue is empty
  ASSERT_TRUE(service_->Submit([&] {
    std::lock_guard l(mu);
    order.push_back(1);
  }));
  ASSERT_TRUE(service_->Submit([&] {
    std::lock_guard l(mu);
    order.push_back(2);
  }));
  EXPECT_FALSE(service_->Submit([&] {
    std::lock_guard l(mu);
    order.push_back(3);
  }));
  EXPECT_EQ(service_->Totals().queued, 2u);
  std::promise<void> done;
  release.set_value();
  for (int i = 0; i < 1000 && service_->Totals().queued > 0; ++i) std::this_thread::sleep_for(5ms);
  // One more job after the two: once it ran, they have.
  ASSERT_TRUE(service_->Submit([&] { done.set_value(); }));
  done.get_future().wait();
  std::lock_guard l(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace doppel::analytics::forecast
