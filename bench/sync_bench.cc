// Sync (ingest from the physical side): MQTT delivery and line-protocol HTTP ingest, each next to
// a baseline measured in the same run.
//
//   build/release/bench/sync_bench [--quick] [--parts=acd]
//
// (a) MQTT, mosquitto alone: one MqttClient publisher -> a mosquitto started by the bench (tests/
//     sync/mosquitto_process.h) -> one MqttClient subscriber, all on 127.0.0.1, MQTT 5, default
//     MqttOptions (20 QoS 1 messages in flight). A ~150-byte JSON telemetry payload whose
//     partsProduced carries the message's sequence number. QoS 1 and QoS 0:
//       * throughput: N messages published as fast as the client accepts them (QoS 1: as fast as
//         PUBACKs free the window), msgs/s = messages received / (last arrival - first publish);
//       * latency at a fixed rate (1,000 msgs/s): receive time - send time, both steady_clock in
//         this process, p50/p99/max after a warm-up.
//     These are the baseline for the doppel end-to-end row (MQTT -> twin update -> WebSocket
//     change event), which needs the MQTT mappings: a DeliverPath (below) per path; the lead adds
//     one for doppel and its rows are compared with mosquitto alone (target p99 <= 2x).
// (c) Line-protocol HTTP ingest into a real `doppel serve --insecure` (the binary of this build,
//     or $DOPPEL_BINARY) holding examples/factory.ndjson (POST /import): 1, 2 and 4 connections,
//     each POSTing /write batches of 5,000 lines `machine,twin=<machine> spindleSpeed=..,power=..
//     <ns>` spread over the factory's machine twins, timestamps increasing and inside the last
//     minute. Every answer must be 204 and GET /ingest/stats must count every reading and no
//     rejection, else the run FAILS. points/s (fields are points, the InfluxDB convention),
//     batch latency p50/p99, server CPU per point (/proc/<pid>/stat).
//     spindleSpeed and power are Telemetry in the factory model: doppel validates and counts
//     them; they change no twin and are stored nowhere until the history store exists. The row
//     "+ Property" adds cycleTime (a Property) to every line: each line is then a twin patch
//     through the graph's write path (fsync=always).
// (d) The same bytes into InfluxDB 1.6 (bench/influx_server.h: its own influxd, temp dir, free
//     ports), same connections: the baseline of (c), ratio doppel/InfluxDB. InfluxDB stores every
//     point (WAL fsync per write). Then the points it holds are counted (must equal what was
//     sent) and the latency of an aggregate query over them is measured:
//       SELECT mean(spindleSpeed) FROM machine WHERE time > now()-1h GROUP BY time(1m)
//     doppel's history is per twin and path (this query spans every twin): its aggregates are
//     compared with InfluxDB's on the same points in history_bench.
//
// The servers run one at a time (doppel's phases, then InfluxDB's), so neither's background work
// lands in the other's numbers. Fixed work per phase after a warm-up. --quick shrinks the work
// about 10x (seconds). Targets are printed as PASS/MISS and never fail the run; the exit status
// is 1 only when something failed (a publish, a lost QoS 1 message, an HTTP error, a rejected
// point, a wrong count).
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/doppel_server.h"
#include "bench/influx_server.h"
#include "bench_table.h"
#include "core/json.h"
#include "core/time.h"
#include "sync/mqtt_client.h"
#include "tests/sync/mosquitto_process.h"

#ifndef DOPPEL_BINARY_DEFAULT
#define DOPPEL_BINARY_DEFAULT "doppel"
#endif
#ifndef DOPPEL_SOURCE_DIR
#define DOPPEL_SOURCE_DIR "."
#endif

namespace doppel::bench {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

// Targets (reported, not asserted).
constexpr double kTargetE2eP99VsMosquitto = 2.0;  // e2e p99 <= 2x mosquitto alone
constexpr double kTargetIngestPointsPerSec = 1'000'000;
constexpr double kTargetIngestVsInflux = 10.0;

constexpr const char* kInfluxQuery =
    "SELECT mean(spindleSpeed) FROM machine WHERE time > now()-1h GROUP BY time(1m)";

// ---------------------------------------------------------------------------------------------
// Helpers

struct Config {
  bool quick = false;
  std::string parts = "acd";
  // (a)
  std::size_t mqtt_messages = 100'000;  // throughput, per QoS
  double mqtt_rate = 1000;              // latency phase, msgs/s
  double mqtt_latency_s = 10, mqtt_warmup_s = 1;
  // (c), (d)
  std::size_t lines_per_batch = 5000;
  std::size_t batches = 200;       // measured batches per phase, split over the connections
  std::size_t warmup_batches = 2;  // per connection, before each phase
  std::size_t property_batches = 20;
  int query_runs = 30;
};

struct Errors {
  std::mutex mu;
  std::uint64_t n = 0;
  std::string first;
  void Add(std::string what) {
    std::lock_guard lock(mu);
    std::fprintf(stderr, "\nsync_bench: ERROR: %s\n", what.c_str());
    if (n++ == 0) first = std::move(what);
  }
  std::uint64_t count() {
    std::lock_guard lock(mu);
    return n;
  }
};
Errors g_errors;

// CPU seconds of this process (all threads).
double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  in >> first;
  return first.empty() ? "?" : first;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Value at quantile q of `v` (sorted in place).
// Progress on stderr for long phases ("\r", overwritten; a newline when done).
void Progress(const std::string& what, std::size_t done, std::size_t total) {
  std::fprintf(stderr, "\r    %s: %zu/%zu%s", what.c_str(), done, total,
               done == total ? "    \n" : "    ");
  std::fflush(stderr);
}

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string pattern = (fs::temp_directory_path() / ("doppel-sync-bench-" + tag + "-XXXXXX"));
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---------------------------------------------------------------------------------------------
// Summary table (as graph_bench's)

using bench::Row;
std::vector<Row> g_rows;
// Whether the `doppel serve` under test has a history store (its OpenAPI lists /history/query);
// nullopt when no doppel ran.
std::optional<bool> g_doppel_history;

void AddRow(Row r) { g_rows.push_back(std::move(r)); }

void PrintTable() { bench::PrintTable(g_rows); }

// ---------------------------------------------------------------------------------------------
// (a) MQTT

// A machine's telemetry message, ~150 bytes; partsProduced carries the sequence number.
void MakePayload(std::uint64_t seq, SysClock::time_point now, std::string* out) {
  out->clear();
  std::string ts = core::FormatRfc3339(now);  // microseconds; cut to milliseconds
  if (ts.size() == 27) ts = ts.substr(0, 23) + "Z";
  fmt::format_to(std::back_inserter(*out),
                 R"({{"ts":"{}","temperature":{:.1f},"vibration":{:.2f},"spindleSpeed":{:.1f},)"
                 R"("power":{:.1f},"partsProduced":{},"status":"running"}})",
                 ts, 60.0 + static_cast<double>(seq % 200) * 0.1,
                 2.0 + static_cast<double>(seq % 50) * 0.01, 1500.0 + static_cast<double>(seq % 7),
                 11.7, seq);
}

// The sequence number in a payload made by MakePayload, or nullopt.
std::optional<std::uint64_t> PayloadSeq(std::string_view payload) {
  constexpr std::string_view kKey = "\"partsProduced\":";
  auto at = payload.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::uint64_t seq = 0;
  const char* p = payload.data() + at + kKey.size();
  auto [end, ec] = std::from_chars(p, payload.data() + payload.size(), seq);
  if (ec != std::errc()) return std::nullopt;
  return seq;
}

// The far end of a delivery path: where a message the bench publishes to the broker comes out,
// observed in this process. mosquitto alone: an MqttClient subscribed to the topic
// (MqttSubscriberPath). doppel end-to-end (TODO(lead), once MQTT mappings are wired): doppel
// subscribes to the topic and updates the twin; the path's Start would load the model and the
// mapping into a `doppel serve` (see DoppelServer below), open a WebSocket on /events?twin=...
// and call `arrived(seq)` for each twin.patched event (seq = the mapped value that carries
// partsProduced, or whichever field the mapping writes), from any thread.
class DeliverPath {
 public:
  virtual ~DeliverPath() = default;
  virtual std::string name() const = 0;
  // Starts listening on `topic` of the broker at 127.0.0.1:broker_port with `qos`; returns once
  // a message published now would come out (subscriptions confirmed). Empty string or an error.
  virtual std::string Start(int broker_port, const std::string& topic, int qos,
                            std::function<void(std::uint64_t seq)> arrived) = 0;
  virtual void Stop() = 0;
  // Processes (besides the broker and this one) whose CPU the path costs, e.g. `doppel serve`.
  virtual std::vector<pid_t> server_pids() const { return {}; }
};

class MqttSubscriberPath : public DeliverPath {
 public:
  std::string name() const override { return "mosquitto alone"; }
  std::string Start(int broker_port, const std::string& topic, int qos,
                    std::function<void(std::uint64_t seq)> arrived) override {
    sync::MqttOptions o;
    o.port = broker_port;
    o.client_id = fmt::format("sync-bench-sub-{}-{}", ::getpid(), ++n_);
    o.persistent_session = false;
    sync::MqttCallbacks cb;
    cb.on_message = [arrived = std::move(arrived)](const sync::MqttMessage& m) {
      if (auto seq = PayloadSeq(m.payload)) {
        arrived(*seq);
      } else {
        g_errors.Add("subscriber: a payload without partsProduced: " + m.payload.substr(0, 200));
      }
    };
    client_ = std::make_unique<sync::MqttClient>(o, std::move(cb));
    if (auto s = client_->Subscribe(topic, qos); !s.ok()) return s.ToString();
    if (auto s = client_->Start(); !s.ok()) return s.ToString();
    if (auto s = client_->WaitUntilSubscribed(std::chrono::seconds(10)); !s.ok()) {
      return s.ToString();
    }
    return {};
  }
  void Stop() override {
    if (client_) client_->Stop();
    client_.reset();
  }

 private:
  std::unique_ptr<sync::MqttClient> client_;
  int n_ = 0;
};

// Receive times by sequence number, written from the path's threads.
class Arrivals {
 public:
  explicit Arrivals(std::size_t n) : recv_ns_(n), sent_ns_(n, 0) {
    for (auto& r : recv_ns_) r.store(0, std::memory_order_relaxed);
  }
  static std::int64_t Now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  void Arrived(std::uint64_t seq) {
    const std::int64_t now = Now();
    if (seq >= recv_ns_.size()) {
      unknown_.fetch_add(1);
      return;
    }
    std::int64_t expected = 0;
    if (recv_ns_[seq].compare_exchange_strong(expected, now)) {
      count_.fetch_add(1);
      std::int64_t last = last_ns_.load();
      while (now > last && !last_ns_.compare_exchange_weak(last, now)) {
      }
    } else {
      duplicates_.fetch_add(1);
    }
  }
  // Waits until `n` messages arrived, or nothing arrived for `stall`. True if all arrived.
  bool WaitFor(std::size_t n, std::chrono::milliseconds stall) const {
    std::size_t seen = count_.load();
    auto last_progress = Clock::now();
    while (seen < n) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      const std::size_t c = count_.load();
      if (c != seen) {
        seen = c;
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > stall) {
        return false;
      }
    }
    return true;
  }
  std::size_t count() const { return count_.load(); }
  std::uint64_t duplicates() const { return duplicates_.load(); }
  std::uint64_t unknown() const { return unknown_.load(); }
  std::int64_t last_ns() const { return last_ns_.load(); }
  std::int64_t recv_ns(std::size_t seq) const { return recv_ns_[seq].load(); }
  std::vector<std::int64_t>& sent_ns() { return sent_ns_; }  // written by the publisher only

 private:
  std::vector<std::atomic<std::int64_t>> recv_ns_;
  std::vector<std::int64_t> sent_ns_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::uint64_t> duplicates_{0}, unknown_{0};
  std::atomic<std::int64_t> last_ns_{0};
};

struct MqttThroughput {
  double msgs_per_s = 0;
  std::size_t sent = 0, received = 0;
  std::uint64_t queue_full_waits = 0, duplicates = 0;
  double broker_cpu_us = 0, self_cpu_us = 0, servers_cpu_us = 0;  // per message
  bool ran = false;
};

struct MqttLatency {
  double p50_ms = 0, p99_ms = 0, max_ms = 0, rate = 0, max_publish_lag_ms = 0;
  std::size_t measured = 0, lost = 0;
  bool ran = false;
};

// One path, both QoS levels: what the rows are made of.
struct MqttResults {
  std::string path;
  MqttThroughput tput[2];  // by QoS
  MqttLatency lat[2];
};

double CpuOf(const std::vector<pid_t>& pids) {
  double s = 0;
  for (pid_t p : pids) s += std::max(0.0, ProcessCpuSeconds(p));
  return s;
}

// The publisher: an MqttClient with default options (20 QoS 1 messages in flight).
std::unique_ptr<sync::MqttClient> StartPublisher(int port, const std::string& tag) {
  sync::MqttOptions o;
  o.port = port;
  o.client_id = fmt::format("sync-bench-pub-{}-{}", ::getpid(), tag);
  o.persistent_session = false;
  auto c = std::make_unique<sync::MqttClient>(o, sync::MqttCallbacks{});
  if (auto s = c->Start(); !s.ok()) {
    g_errors.Add("publisher: " + s.ToString());
    return nullptr;
  }
  if (auto s = c->WaitUntilConnected(std::chrono::seconds(10)); !s.ok()) {
    g_errors.Add("publisher: " + s.ToString());
    return nullptr;
  }
  return c;
}

// Publishes until accepted; QoS 1 waits while the client's queue is full. False on an error.
bool PublishOne(sync::MqttClient& pub, const std::string& topic, const std::string& payload,
                int qos, std::uint64_t* queue_full_waits) {
  for (;;) {
    auto r = pub.Publish(topic, payload, qos);
    if (r.ok()) return true;
    if (r.status().code() == "MQTT_QUEUE_FULL") {
      ++*queue_full_waits;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    g_errors.Add("publish: " + r.status().ToString());
    return false;
  }
}

MqttThroughput MqttThroughputRun(const Config& cfg, sync::testing::MosquittoProcess& broker,
                                 DeliverPath& path, int qos) {
  MqttThroughput out;
  const std::size_t warm = std::max<std::size_t>(100, cfg.mqtt_messages / 20);
  const std::size_t n = cfg.mqtt_messages;
  Arrivals arr(warm + n);
  const std::string topic = fmt::format("bench/tput/q{}/{}/telemetry", qos, ::getpid());
  if (auto e = path.Start(broker.port(), topic, qos, [&](std::uint64_t s) { arr.Arrived(s); });
      !e.empty()) {
    g_errors.Add(path.name() + ": " + e);
    return out;
  }
  auto pub = StartPublisher(broker.port(), fmt::format("tput-q{}", qos));
  if (!pub) return out;
  std::string payload;
  auto publish_range = [&](std::size_t from, std::size_t to, const std::string& what) {
    for (std::size_t i = from; i < to; ++i) {
      MakePayload(i, SysClock::now(), &payload);
      if (!PublishOne(*pub, topic, payload, qos, &out.queue_full_waits)) return false;
      if ((i - from) % 10000 == 0 || i + 1 == to) Progress(what, i + 1 - from, to - from);
    }
    return true;
  };
  // Warm-up: connections, buffers and allocators settle; not measured.
  if (!publish_range(0, warm, fmt::format("QoS {} warm-up", qos))) return out;
  if (!arr.WaitFor(warm, std::chrono::seconds(5))) {
    g_errors.Add(fmt::format("QoS {} warm-up: {} of {} messages arrived", qos, arr.count(), warm));
    return out;
  }
  out.queue_full_waits = 0;
  const double broker0 = ProcessCpuSeconds(broker.pid()), self0 = SelfCpuSeconds();
  const double servers0 = CpuOf(path.server_pids());
  const std::int64_t t0 = Arrivals::Now();
  if (!publish_range(warm, warm + n, fmt::format("QoS {} throughput, published", qos))) {
    return out;
  }
  if (qos == 1) {
    if (auto s = pub->Flush(std::chrono::seconds(60)); !s.ok()) {
      g_errors.Add("publisher flush: " + s.ToString());
    }
  }
  const bool all = arr.WaitFor(warm + n, std::chrono::seconds(3));
  const double secs = static_cast<double>(arr.last_ns() - t0) * 1e-9;
  out.sent = n;
  out.received = arr.count() - warm;
  out.duplicates = arr.duplicates();
  out.msgs_per_s = secs > 0 ? static_cast<double>(out.received) / secs : 0;
  const double per = 1e6 / static_cast<double>(std::max<std::size_t>(out.received, 1));
  out.broker_cpu_us = (ProcessCpuSeconds(broker.pid()) - broker0) * per;
  out.self_cpu_us = (SelfCpuSeconds() - self0) * per;
  out.servers_cpu_us = (CpuOf(path.server_pids()) - servers0) * per;
  if (!all && qos == 1) {
    g_errors.Add(
        fmt::format("{} QoS 1: only {} of {} messages arrived", path.name(), out.received, n));
  }
  if (arr.unknown() != 0) g_errors.Add(fmt::format("{} unknown sequence numbers", arr.unknown()));
  pub->Stop();
  path.Stop();
  out.ran = true;
  return out;
}

MqttLatency MqttLatencyRun(const Config& cfg, sync::testing::MosquittoProcess& broker,
                           DeliverPath& path, int qos) {
  MqttLatency out;
  out.rate = cfg.mqtt_rate;
  const auto warm = static_cast<std::size_t>(cfg.mqtt_warmup_s * cfg.mqtt_rate);
  const auto n = static_cast<std::size_t>(cfg.mqtt_latency_s * cfg.mqtt_rate);
  Arrivals arr(warm + n);
  const std::string topic = fmt::format("bench/lat/q{}/{}/telemetry", qos, ::getpid());
  if (auto e = path.Start(broker.port(), topic, qos, [&](std::uint64_t s) { arr.Arrived(s); });
      !e.empty()) {
    g_errors.Add(path.name() + ": " + e);
    return out;
  }
  auto pub = StartPublisher(broker.port(), fmt::format("lat-q{}", qos));
  if (!pub) return out;
  std::string payload;
  std::uint64_t waits = 0;
  auto& sent = arr.sent_ns();
  const auto interval = std::chrono::duration<double>(1.0 / cfg.mqtt_rate);
  const auto start = Clock::now();
  double max_lag = 0;
  for (std::size_t i = 0; i < warm + n; ++i) {
    const auto due =
        start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
    std::this_thread::sleep_until(due);
    MakePayload(i, SysClock::now(), &payload);
    sent[i] = Arrivals::Now();
    if (i >= warm) {
      max_lag =
          std::max(max_lag, std::chrono::duration<double, std::milli>(Clock::now() - due).count());
    }
    if (!PublishOne(*pub, topic, payload, qos, &waits)) return out;
    if (i % 1000 == 0 || i + 1 == warm + n) {
      Progress(fmt::format("QoS {} latency at {}/s", qos, Grouped(cfg.mqtt_rate)), i + 1, warm + n);
    }
  }
  arr.WaitFor(warm + n, std::chrono::seconds(3));
  std::vector<double> ms;
  for (std::size_t i = warm; i < warm + n; ++i) {
    const std::int64_t r = arr.recv_ns(i);
    if (r == 0) {
      ++out.lost;
      continue;
    }
    ms.push_back(static_cast<double>(r - sent[i]) * 1e-6);
  }
  out.measured = ms.size();
  out.p50_ms = Quantile(ms, 0.50);
  out.p99_ms = Quantile(ms, 0.99);
  out.max_ms = ms.empty() ? 0 : ms.back();
  out.max_publish_lag_ms = max_lag;
  if (qos == 1 && out.lost != 0) {
    g_errors.Add(fmt::format("{} QoS 1 latency: {} messages lost", path.name(), out.lost));
  }
  pub->Stop();
  path.Stop();
  out.ran = true;
  return out;
}

MqttResults RunMqttPath(const Config& cfg, sync::testing::MosquittoProcess& broker,
                        DeliverPath& path) {
  MqttResults r;
  r.path = path.name();
  for (int qos : {1, 0}) {
    r.tput[qos] = MqttThroughputRun(cfg, broker, path, qos);
    const auto& t = r.tput[qos];
    std::printf(
        "    %-16s QoS %d throughput: %s msgs/s (%zu of %zu received, %llu duplicates; %llu "
        "queue-full waits); CPU per message: broker %.1f us, bench process %.1f us%s\n",
        r.path.c_str(), qos, Grouped(t.msgs_per_s).c_str(), t.received, t.sent,
        static_cast<unsigned long long>(t.duplicates),
        static_cast<unsigned long long>(t.queue_full_waits), t.broker_cpu_us, t.self_cpu_us,
        path.server_pids().empty() ? ""
                                   : fmt::format(", servers {:.1f} us", t.servers_cpu_us).c_str());
  }
  for (int qos : {1, 0}) {
    r.lat[qos] = MqttLatencyRun(cfg, broker, path, qos);
    const auto& l = r.lat[qos];
    std::printf(
        "    %-16s QoS %d latency at %s msgs/s: p50 %s  p99 %s  max %s (%zu messages, %zu lost; "
        "publisher at most %s late)\n",
        r.path.c_str(), qos, Grouped(l.rate).c_str(), Ms(l.p50_ms).c_str(), Ms(l.p99_ms).c_str(),
        Ms(l.max_ms).c_str(), l.measured, l.lost, Ms(l.max_publish_lag_ms).c_str());
  }
  return r;
}

std::string LossNote(std::size_t sent, std::size_t received) {
  return received < sent ? fmt::format(", {} LOST", sent - received) : "";
}

void AddMqttRows(const MqttResults& alone, const MqttResults* e2e) {
  const auto& t1 = alone.tput[1];
  const auto& t0 = alone.tput[0];
  AddRow({"MQTT pub->sub throughput QoS 1 (mosquitto alone)",
          fmt::format("{} msgs/s ({:.0f} us broker CPU/msg{})", Grouped(t1.msgs_per_s),
                      t1.broker_cpu_us, LossNote(t1.sent, t1.received)),
          fmt::format("QoS 0 {} msgs/s{}", Grouped(t0.msgs_per_s), LossNote(t0.sent, t0.received)),
          t0.msgs_per_s > 0 ? fmt::format("{:.2f}x QoS 0", t1.msgs_per_s / t0.msgs_per_s) : "-", "",
          ""});
  const auto& l1 = alone.lat[1];
  const auto& l0 = alone.lat[0];
  AddRow({fmt::format("MQTT latency QoS 1 @ {}/s (mosquitto alone)", Grouped(l1.rate)),
          fmt::format("p50 {} p99 {}", Ms(l1.p50_ms), Ms(l1.p99_ms)),
          fmt::format("QoS 0 p50 {} p99 {}{}", Ms(l0.p50_ms), Ms(l0.p99_ms),
                      l0.lost ? fmt::format(", {} lost", l0.lost) : ""),
          l0.p99_ms > 0 ? fmt::format("{:.2f}x QoS 0 p99", l1.p99_ms / l0.p99_ms) : "-", "", ""});
  // The doppel end-to-end rows: measured against mosquitto alone (same QoS, same rate).
  const std::string target = fmt::format("p99 <= {:.0f}x mosquitto ({})", kTargetE2eP99VsMosquitto,
                                         Ms(l1.p99_ms * kTargetE2eP99VsMosquitto));
  if (e2e == nullptr) {
    AddRow({"e2e MQTT -> twin -> WebSocket, QoS 1 latency",
            "not measured: needs MQTT mappings (TODO(lead): DeliverPath)",
            fmt::format("mosquitto alone p99 {}", Ms(l1.p99_ms)), "-", target, "TODO"});
    return;
  }
  const auto& e = e2e->lat[1];
  AddRow({fmt::format("e2e {} QoS 1 latency @ {}/s", e2e->path, Grouped(e.rate)),
          fmt::format("p50 {} p99 {}{}", Ms(e.p50_ms), Ms(e.p99_ms),
                      e.lost ? fmt::format(", {} LOST", e.lost) : ""),
          fmt::format("mosquitto alone p50 {} p99 {}", Ms(l1.p50_ms), Ms(l1.p99_ms)),
          l1.p99_ms > 0 ? fmt::format("{:.2f}x p99", e.p99_ms / l1.p99_ms) : "-", target,
          e.p99_ms <= kTargetE2eP99VsMosquitto * l1.p99_ms ? "PASS" : "MISS"});
  const auto& et = e2e->tput[1];
  AddRow({fmt::format("e2e {} QoS 1 throughput", e2e->path),
          fmt::format("{} msgs/s{}", Grouped(et.msgs_per_s), LossNote(et.sent, et.received)),
          fmt::format("mosquitto alone {} msgs/s", Grouped(t1.msgs_per_s)),
          t1.msgs_per_s > 0 ? fmt::format("{:.2f}x", et.msgs_per_s / t1.msgs_per_s) : "-", "", ""});
}

void PartMqtt(const Config& cfg) {
  std::printf(
      "\n[a] MQTT: MqttClient publisher -> mosquitto (own instance, 127.0.0.1) -> subscriber; "
      "MQTT 5, ~150-byte JSON payload; throughput %s msgs per QoS after a warm-up; latency at "
      "%s msgs/s for %.1f s after %.1f s\n",
      Grouped(static_cast<double>(cfg.mqtt_messages)).c_str(), Grouped(cfg.mqtt_rate).c_str(),
      cfg.mqtt_latency_s, cfg.mqtt_warmup_s);
  std::string sample;
  MakePayload(1234, SysClock::now(), &sample);
  std::printf("    payload (%zu bytes): %s\n", sample.size(), sample.c_str());
  // Queue room for a subscriber that falls behind during the QoS 0 burst (the default 1000
  // drops QoS 0 messages beyond it; mosquitto counts QoS 0 too while the client is online).
  sync::testing::MosquittoProcess broker("max_queued_messages 1000000\nlog_type error\n");
  if (auto e = broker.Start(); !e.empty()) {
    g_errors.Add("mosquitto: " + e);
    return;
  }
  MqttSubscriberPath alone;
  MqttResults base = RunMqttPath(cfg, broker, alone);
  // TODO(lead): the doppel end-to-end path. Once MQTT mappings exist, implement a DeliverPath
  // (start DoppelServer, import the factory, configure a mapping for the bench topic, read
  // /events over a WebSocket) and run it here against the same broker:
  //   DoppelEventsPath e2e(...);
  //   MqttResults e2e_results = RunMqttPath(cfg, broker, e2e);
  //   AddMqttRows(base, &e2e_results);
  AddMqttRows(base, nullptr);
}

// ---------------------------------------------------------------------------------------------
// (c), (d) line-protocol ingest

// The machine twins of the factory example: twins whose model is Machine;1 or extends it.
std::vector<std::string> MachineTwins(const std::string& ndjson, std::string* error) {
  constexpr std::string_view kMachine = "dtmi:doppel:example:factory:Machine;1";
  std::map<std::string, std::vector<std::string>> extends;  // model -> its bases
  std::vector<std::pair<std::string, std::string>> twins;   // id, model
  std::string section;
  std::size_t pos = 0;
  while (pos < ndjson.size()) {
    std::size_t end = ndjson.find('\n', pos);
    if (end == std::string::npos) end = ndjson.size();
    std::string_view line(ndjson.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto v = core::ParseJson(line);
    if (!v.ok() || !v->is_object()) {
      *error = "examples/factory.ndjson: a line is not a JSON object";
      return {};
    }
    const auto& o = v->as_object();
    if (const auto* s = o.if_contains("Section"); s && s->is_string()) {
      section = std::string(s->as_string());
    } else if (section == "Models" && o.contains("@id")) {
      auto& bases = extends[std::string(o.at("@id").as_string())];
      if (const auto* e = o.if_contains("extends")) {
        if (e->is_string()) bases.emplace_back(e->as_string());
        if (e->is_array()) {
          for (const auto& b : e->as_array()) {
            if (b.is_string()) bases.emplace_back(b.as_string());
          }
        }
      }
    } else if (section == "Twins" && o.contains("$dtId")) {
      twins.emplace_back(std::string(o.at("$dtId").as_string()),
                         std::string(o.at("$metadata").at("$model").as_string()));
    }
  }
  std::function<bool(const std::string&, int)> is_machine = [&](const std::string& m, int depth) {
    if (m == kMachine) return true;
    if (depth > 10) return false;
    auto it = extends.find(m);
    if (it == extends.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const std::string& b) { return is_machine(b, depth + 1); });
  };
  std::vector<std::string> out;
  for (const auto& [id, model] : twins) {
    if (is_machine(model, 0)) out.push_back(id);
  }
  if (out.empty()) *error = "examples/factory.ndjson has no machine twins";
  return out;
}

// One ingest phase's load: the same bytes go to doppel and to InfluxDB. Regenerated from these
// parameters (deterministic) instead of kept, so the full run does not hold ~200 MB per phase.
struct LoadSpec {
  std::string label;
  int conns = 1;
  bool with_property = false;  // + cycleTime (a Property of the Machine model)
  std::size_t warmup_batches = 0, batches = 0, lines_per_batch = 0;
  std::int64_t first_ns = 0, step_ns = 1;  // timestamp of line k: first_ns + k * step_ns
  std::size_t fields() const { return with_property ? 3 : 2; }
  std::size_t total_lines() const { return (warmup_batches + batches) * lines_per_batch; }
};

// Batch `b` of the spec (warm-up batches first). Line k of the whole load:
//   machine,twin=<twins[k % n]> spindleSpeed=<..>,power=<..>[,cycleTime=<..>] <first + k*step>
void BuildBatch(const LoadSpec& spec, const std::vector<std::string>& twins, std::size_t b,
                std::string* out) {
  out->clear();
  out->reserve(spec.lines_per_batch * 90);
  for (std::size_t i = 0; i < spec.lines_per_batch; ++i) {
    const std::size_t k = b * spec.lines_per_batch + i;
    const std::int64_t ts = spec.first_ns + static_cast<std::int64_t>(k) * spec.step_ns;
    fmt::format_to(std::back_inserter(*out), "machine,twin={} spindleSpeed={:.1f},power={:.2f}",
                   twins[k % twins.size()], 1500.0 + static_cast<double>(k % 200) * 0.5,
                   11.0 + static_cast<double>(k % 97) * 0.01);
    if (spec.with_property) {
      fmt::format_to(std::back_inserter(*out), ",cycleTime={:.1f}",
                     40.0 + static_cast<double>(k % 50) * 0.1);
    }
    fmt::format_to(std::back_inserter(*out), " {}\n", ts);
  }
}

// Timestamps for all loads, placed once: increasing across the loads (each line of every load
// has its own timestamp, so InfluxDB overwrites nothing and doppel sees no duplicates), spread
// over the last minute before now.
void PlaceInTime(std::vector<LoadSpec>* specs) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(SysClock::now().time_since_epoch())
          .count();
  std::size_t lines = 0;
  for (const auto& s : *specs) lines += s.total_lines();
  const std::int64_t first = now - 59'000'000'000LL;
  const std::int64_t step = std::max<std::int64_t>(
      1, 58'000'000'000LL / static_cast<std::int64_t>(std::max<std::size_t>(lines, 1)));
  std::int64_t k = 0;
  for (auto& s : *specs) {
    s.first_ns = first + k * step;
    s.step_ns = step;
    k += static_cast<std::int64_t>(s.total_lines());
  }
}

struct IngestRun {
  double points_per_s = 0, lines_per_s = 0, p50_ms = 0, p99_ms = 0, seconds = 0;
  double server_cpu_us_per_point = 0, client_cpu_us_per_point = 0;
  std::size_t points = 0, lines = 0, bytes = 0;
  bool ok = false;
};

// Sends the spec's batches to 127.0.0.1:port `target` over spec.conns connections (one thread
// each, one batch at a time): each connection first sends its warm-up batches, then all take
// the measured batches in order from a shared counter. Every answer must be `want` (204).
IngestRun RunIngest(const LoadSpec& spec, const std::vector<std::string>& twins, int port,
                    pid_t server_pid, const std::string& target, const std::string& server) {
  IngestRun out;
  const std::size_t warm_total = spec.warmup_batches;
  // Build every batch before the clock starts (generation is not what is measured).
  std::vector<std::string> bodies(warm_total + spec.batches);
  for (std::size_t b = 0; b < bodies.size(); ++b) BuildBatch(spec, twins, b, &bodies[b]);
  for (const auto& b : bodies) out.bytes += b.size();

  std::atomic<std::size_t> next{warm_total}, done{0};
  std::atomic<bool> failed{false};
  std::atomic<int> warmed{0};
  std::atomic<bool> go{false};
  std::mutex mu;
  std::vector<double> lat_ms;
  const std::string label = fmt::format("{} {}, {} conn", server, spec.label, spec.conns);
  auto client = [&](int ci) {
    HttpConnection c;
    if (auto e = c.Connect(port); !e.empty()) {
      g_errors.Add(server + ": " + e);
      failed = true;
    }
    auto send = [&](std::size_t b) {
      auto r = c.Send("POST", target, bodies[b]);
      if (!r.ok(204)) {
        g_errors.Add(fmt::format("{} POST {} (batch {}): {}{} {}", server, target, b, r.error,
                                 r.status, r.body.substr(0, 600)));
        failed = true;
        return false;
      }
      return true;
    };
    // Warm-up batches: connection i sends warm-up batches i, i + conns, ...
    for (std::size_t b = static_cast<std::size_t>(ci); !failed && b < warm_total;
         b += static_cast<std::size_t>(spec.conns)) {
      send(b);
    }
    warmed.fetch_add(1);
    while (!go.load()) std::this_thread::yield();
    std::vector<double> mine;
    for (;;) {
      if (failed) break;
      const std::size_t b = next.fetch_add(1);
      if (b >= bodies.size()) break;
      const auto t0 = Clock::now();
      if (!send(b)) break;
      mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      const std::size_t d = done.fetch_add(1) + 1;
      if (d % 10 == 0 || d == spec.batches) Progress(label, d, spec.batches);
    }
    std::lock_guard lock(mu);
    lat_ms.insert(lat_ms.end(), mine.begin(), mine.end());
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(spec.conns));
  for (int i = 0; i < spec.conns; ++i) threads.emplace_back(client, i);
  while (warmed.load() < spec.conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double server0 = ProcessCpuSeconds(server_pid);
  const double self0 = SelfCpuSeconds();
  const auto t0 = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  out.seconds = Seconds(t0, Clock::now());
  if (failed) return out;
  out.lines = spec.batches * spec.lines_per_batch;
  out.points = out.lines * spec.fields();
  out.points_per_s = static_cast<double>(out.points) / out.seconds;
  out.lines_per_s = static_cast<double>(out.lines) / out.seconds;
  out.server_cpu_us_per_point =
      (ProcessCpuSeconds(server_pid) - server0) / static_cast<double>(out.points) * 1e6;
  out.client_cpu_us_per_point = (SelfCpuSeconds() - self0) / static_cast<double>(out.points) * 1e6;
  out.p50_ms = Quantile(lat_ms, 0.50);
  out.p99_ms = Quantile(lat_ms, 0.99);
  out.ok = true;
  return out;
}

void PrintIngest(const std::string& server, const LoadSpec& spec, const IngestRun& r) {
  std::printf(
      "    %-8s %-10s %d conn: %s points/s (%s lines/s), batch of %zu lines p50 %s p99 %s; "
      "server CPU %.3f us/point, client %.3f us/point (%zu points in %.2f s)\n",
      server.c_str(), spec.label.c_str(), spec.conns, Grouped(r.points_per_s).c_str(),
      Grouped(r.lines_per_s).c_str(), spec.lines_per_batch, Ms(r.p50_ms).c_str(),
      Ms(r.p99_ms).c_str(), r.server_cpu_us_per_point, r.client_cpu_us_per_point, r.points,
      r.seconds);
}

// doppel's ingest counters.
// InfluxDB's count of points per field of `machine` (count_<field>).
std::map<std::string, std::uint64_t> InfluxCounts(InfluxServer& influx, const std::string& db) {
  std::map<std::string, std::uint64_t> out;
  auto r = influx.Query(db, "SELECT count(*) FROM machine");
  if (!r.error.empty()) {
    g_errors.Add("InfluxDB count: " + r.error);
    return out;
  }
  auto v = core::ParseJson(r.body);
  try {
    const auto& series = v->at("results").at(0).at("series").at(0);
    const auto& cols = series.at("columns").as_array();
    const auto& vals = series.at("values").at(0).as_array();
    for (std::size_t i = 1; i < cols.size() && i < vals.size(); ++i) {
      out[std::string(cols[i].as_string())] = vals[i].to_number<std::uint64_t>();
    }
  } catch (const std::exception& e) {
    g_errors.Add(std::string("InfluxDB count: unexpected answer: ") + r.body.substr(0, 300));
  }
  return out;
}

void PartIngest(const Config& cfg, bool run_doppel, bool run_influx) {
  std::string error;
  const std::string ndjson =
      ReadWholeFile(fs::path(DOPPEL_SOURCE_DIR) / "examples" / "factory.ndjson");
  if (ndjson.empty()) {
    g_errors.Add("cannot read " DOPPEL_SOURCE_DIR "/examples/factory.ndjson");
    return;
  }
  const std::vector<std::string> twins = MachineTwins(ndjson, &error);
  if (twins.empty()) {
    g_errors.Add(error);
    return;
  }
  // The loads, each placed in time once: the same bytes go to both servers.
  std::vector<LoadSpec> specs;
  for (int conns : {1, 2, 4}) {
    LoadSpec s;
    s.label = "telemetry";
    s.conns = conns;
    s.warmup_batches = cfg.warmup_batches * static_cast<std::size_t>(conns);
    s.batches = cfg.batches;
    s.lines_per_batch = cfg.lines_per_batch;
    specs.push_back(s);
  }
  {
    LoadSpec s;
    s.label = "+Property";
    s.conns = 1;
    s.with_property = true;
    s.warmup_batches = 1;
    s.batches = cfg.property_batches;
    s.lines_per_batch = cfg.lines_per_batch;
    specs.push_back(s);
  }
  PlaceInTime(&specs);
  std::size_t all_lines = 0, all_points = 0, property_lines = 0;
  for (const auto& s : specs) {
    all_lines += s.total_lines();
    all_points += s.total_lines() * s.fields();
    if (s.with_property) property_lines += s.total_lines();
  }
  std::string sample;
  {
    LoadSpec one = specs[0];
    one.lines_per_batch = 1;
    BuildBatch(one, twins, 0, &sample);
  }
  std::printf(
      "\n[c/d] line protocol over HTTP: batches of %zu lines over the %zu machine twins of "
      "examples/factory.ndjson (%s), e.g.\n      %s"
      "      per phase: %zu measured batches after %zu warm-up batches per connection; the "
      "same bytes to doppel (fsync=always) and then to InfluxDB 1.6\n",
      cfg.lines_per_batch, twins.size(), fmt::format("{}", fmt::join(twins, ", ")).c_str(),
      sample.c_str(), cfg.batches, cfg.warmup_batches);

  std::vector<IngestRun> doppel_runs(specs.size()), influx_runs(specs.size());
  if (run_doppel) {
    DoppelServer doppel;
    if (auto e = doppel.Start("always"); !e.empty()) {
      g_errors.Add("doppel serve: " + e);
      return;
    }
    if (auto e = doppel.Import(ndjson); !e.empty()) {
      g_errors.Add("import of examples/factory.ndjson: " + e);
      return;
    }
    {
      HttpConnection c;
      auto r = c.Connect(doppel.port()).empty() ? c.Send("GET", "/openapi.json") : HttpResponse{};
      g_doppel_history = r.body.find("\"/history/query\"") != std::string::npos;
    }
    std::printf(
        "    doppel serve (pid %d, %s) on 127.0.0.1:%d, factory imported; %s\n", doppel.pid(),
        DoppelServer::BinaryPath().c_str(), doppel.port(),
        *g_doppel_history ? "with a history store (/history/query)" : "without a history store");
    std::string stats_error;
    auto before = DoppelIngestStats(doppel.port(), &stats_error);
    for (std::size_t i = 0; i < specs.size(); ++i) {
      doppel_runs[i] = RunIngest(specs[i], twins, doppel.port(), doppel.pid(), "/write", "doppel");
      if (!doppel_runs[i].ok) break;
      PrintIngest("doppel", specs[i], doppel_runs[i]);
    }
    // Every reading must have been received and none rejected: a bench that measures
    // rejections measures nothing.
    auto after = DoppelIngestStats(doppel.port(), &stats_error);
    if (!stats_error.empty()) g_errors.Add(stats_error);
    if (before && after) {
      const std::uint64_t received = after->received - before->received;
      const std::uint64_t telemetry = after->telemetry - before->telemetry;
      const std::uint64_t rejected = after->rejected - before->rejected;
      std::printf(
          "    doppel /ingest/stats: %llu readings received, %llu telemetry, %llu Property "
          "(%llu applied to twins, %llu superseded by a newer one of the same batch, %llu "
          "duplicates, %llu out of order), rejected %s\n",
          static_cast<unsigned long long>(received), static_cast<unsigned long long>(telemetry),
          static_cast<unsigned long long>(received - telemetry - rejected),
          static_cast<unsigned long long>(after->applied - before->applied),
          static_cast<unsigned long long>(after->superseded - before->superseded),
          static_cast<unsigned long long>(after->duplicates - before->duplicates),
          static_cast<unsigned long long>(after->out_of_order - before->out_of_order),
          after->rejected_json.c_str());
      const bool complete = std::all_of(doppel_runs.begin(), doppel_runs.end(),
                                        [](const IngestRun& r) { return r.ok; });
      if (rejected != 0) {
        g_errors.Add(fmt::format("doppel rejected {} readings: {}; dead letters {}", rejected,
                                 after->rejected_json, after->dead_letters.substr(0, 800)));
      }
      if (complete && (received != all_points || telemetry != all_points - property_lines)) {
        g_errors.Add(fmt::format(
            "doppel counted {} readings ({} telemetry), the bench sent {} ({} telemetry)", received,
            telemetry, all_points, all_points - property_lines));
      }
    }
    doppel.Stop();
  }

  if (!run_influx) {
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (!doppel_runs[i].ok) continue;
      const auto& d = doppel_runs[i];
      AddRow({fmt::format("HTTP /write -> doppel, {}, {} conn", specs[i].label, specs[i].conns),
              fmt::format("{} pts/s p50 {} p99 {} ({:.2f} us CPU/pt)", Grouped(d.points_per_s),
                          Ms(d.p50_ms), Ms(d.p99_ms), d.server_cpu_us_per_point),
              "(InfluxDB not run: --parts without d)", "-", "", ""});
    }
    return;
  }

  InfluxServer influx;
  if (auto e = influx.Start(); !e.empty()) {
    g_errors.Add("influxd: " + e);
    return;
  }
  const std::string db = "bench";
  if (auto e = influx.CreateDatabase(db); !e.empty()) {
    g_errors.Add("InfluxDB: " + e);
    return;
  }
  std::printf("    influxd (pid %d, %s) on 127.0.0.1:%d, data in %s\n", influx.pid(),
              InfluxServer::BinaryPath().c_str(), influx.http_port(), influx.dir().c_str());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    influx_runs[i] = RunIngest(specs[i], twins, influx.http_port(), influx.pid(),
                               InfluxServer::WriteTarget(db), "InfluxDB");
    if (!influx_runs[i].ok) break;
    PrintIngest("InfluxDB", specs[i], influx_runs[i]);
  }
  const bool influx_complete =
      std::all_of(influx_runs.begin(), influx_runs.end(), [](const IngestRun& r) { return r.ok; });
  auto counts = InfluxCounts(influx, db);
  std::printf("    InfluxDB holds: %s points of spindleSpeed, %s of power, %s of cycleTime\n",
              Grouped(static_cast<double>(counts["count_spindleSpeed"])).c_str(),
              Grouped(static_cast<double>(counts["count_power"])).c_str(),
              Grouped(static_cast<double>(counts["count_cycleTime"])).c_str());
  if (influx_complete &&
      (counts["count_spindleSpeed"] != all_lines || counts["count_power"] != all_lines ||
       counts["count_cycleTime"] != property_lines)) {
    g_errors.Add(fmt::format(
        "InfluxDB holds {} spindleSpeed / {} cycleTime points, the bench "
        "sent {} / {}",
        counts["count_spindleSpeed"], counts["count_cycleTime"], all_lines, property_lines));
  }

  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& d = doppel_runs[i];
    const auto& f = influx_runs[i];
    if (!f.ok) continue;
    Row row;
    row.name = fmt::format("HTTP /write {} pts, {} conn, doppel vs InfluxDB 1.6", specs[i].label,
                           specs[i].conns);
    row.baseline =
        fmt::format("InfluxDB {} pts/s p50 {} p99 {} ({:.2f} us CPU/pt)", Grouped(f.points_per_s),
                    Ms(f.p50_ms), Ms(f.p99_ms), f.server_cpu_us_per_point);
    if (d.ok) {
      row.result = fmt::format("{} pts/s p50 {} p99 {} ({:.2f} us CPU/pt)", Grouped(d.points_per_s),
                               Ms(d.p50_ms), Ms(d.p99_ms), d.server_cpu_us_per_point);
      row.ratio = fmt::format("{:.2f}x InfluxDB", d.points_per_s / f.points_per_s);
    } else {
      row.result = run_doppel ? "FAILED" : "(doppel not run: --parts without c)";
      row.ratio = "-";
    }
    if (!specs[i].with_property) {
      row.target = fmt::format(">= {} pts/s, >= {:.0f}x", Grouped(kTargetIngestPointsPerSec),
                               kTargetIngestVsInflux);
      if (d.ok) {
        row.status = d.points_per_s >= kTargetIngestPointsPerSec &&
                             d.points_per_s >= kTargetIngestVsInflux * f.points_per_s
                         ? "PASS"
                         : "MISS";
      }
    }
    AddRow(std::move(row));
  }

  // The aggregate query over everything written.
  std::vector<double> ms;
  std::size_t buckets = 0;
  const int warm = 2;
  for (int i = 0; i < warm + cfg.query_runs; ++i) {
    HttpConnection c;
    if (auto e = c.Connect(influx.http_port()); !e.empty()) {
      g_errors.Add(e);
      break;
    }
    const auto t0 = Clock::now();
    auto r = c.Send("GET", InfluxServer::QueryTarget(db, kInfluxQuery));
    const auto t1 = Clock::now();
    if (!r.ok(200) || r.body.find("\"error\"") != std::string::npos) {
      g_errors.Add(
          fmt::format("InfluxDB query: {} {}{}", r.status, r.error, r.body.substr(0, 300)));
      break;
    }
    // The answer must hold the written data: at least one minute bucket with a mean.
    buckets = 0;
    auto v = core::ParseJson(r.body);
    if (v.ok()) {
      try {
        for (const auto& row : v->at("results").at(0).at("series").at(0).at("values").as_array()) {
          if (!row.as_array().at(1).is_null()) ++buckets;
        }
      } catch (const std::exception&) {
        buckets = 0;
      }
    }
    if (buckets == 0) {
      g_errors.Add("InfluxDB query: no bucket with data: " + r.body.substr(0, 300));
      break;
    }
    if (i >= warm) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  if (!ms.empty()) {
    const double p50 = Quantile(ms, 0.5), p99 = Quantile(ms, 0.99);
    std::printf(
        "    InfluxDB query over %s points (%zu one-minute buckets with data): p50 %s p99 "
        "%s (%zu runs)\n      %s\n",
        Grouped(static_cast<double>(counts["count_spindleSpeed"])).c_str(), buckets,
        Ms(p50).c_str(), Ms(p99).c_str(), ms.size(), kInfluxQuery);
    AddRow({"query mean(spindleSpeed) GROUP BY time(1m), last 1h: InfluxDB",
            fmt::format("p50 {} p99 {} over {} points", Ms(p50), Ms(p99),
                        Grouped(static_cast<double>(counts["count_spindleSpeed"]))),
            "-", "-", "", ""});
    // doppel's aggregates are measured against InfluxDB's on the same points in history_bench
    // (parts 3 and 4): its history is per twin and path, this query spans every twin.
    AddRow({"query mean(spindleSpeed) GROUP BY time(1m), last 1h: doppel",
            "per-series aggregates: see history_bench parts 3-4", "-", "-", "", ""});
  }
  influx.Stop();
}

int Main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
    } else if (a.starts_with("--parts=")) {
      cfg.parts = a.substr(8);
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: sync_bench [--quick] [--parts=acd]\n"
          "  --quick      about 10x less work per phase (smoke run, seconds)\n"
          "  --parts=...  run only these parts: a MQTT (mosquitto alone), c line protocol into "
          "doppel, d the same into InfluxDB 1.6 (+ query)\n"
          "  env: DOPPEL_BINARY (doppel), DOPPEL_MOSQUITTO (mosquitto), DOPPEL_INFLUXD "
          "(influxd)\n");
      return 0;
    } else {
      std::fprintf(stderr, "sync_bench: unknown argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.mqtt_messages /= 10;
    cfg.mqtt_latency_s = 1;
    cfg.mqtt_warmup_s = 0.2;
    cfg.batches /= 10;
    cfg.warmup_batches = 1;
    cfg.property_batches /= 5;
    cfg.query_runs = 5;
  }
  // A peer that closes a socket must not kill the bench.
  std::signal(SIGPIPE, SIG_IGN);
  std::printf(
      "sync_bench%s: MQTT delivery and line-protocol ingest (temp dirs under %s, %u hardware "
      "threads, load average %s)\n",
      cfg.quick ? " --quick (about 10x less work)" : "", fs::temp_directory_path().c_str(),
      std::thread::hardware_concurrency(), LoadAverage().c_str());
  if (cfg.parts.find('a') != std::string::npos) PartMqtt(cfg);
  const bool c = cfg.parts.find('c') != std::string::npos;
  const bool d = cfg.parts.find('d') != std::string::npos;
  if (c || d) PartIngest(cfg, c, d);
  PrintTable();
  if (g_doppel_history) {
    std::printf(
        "notes: spindleSpeed and power are Telemetry in the factory model: this doppel serve %s. "
        "InfluxDB stores every point, with a WAL fsync per write. The +Property rows add "
        "cycleTime, a Property: those readings also go through the twin write path "
        "(fsync=always; the /ingest/stats line above says how many became twin patches). CPU "
        "per point is the server process's (/proc/<pid>/stat).\n",
        *g_doppel_history
            ? "validates them and appends them to its history store"
            : "validates and counts them but stores them nowhere (it has no history store)");
  }
  std::printf(
      "load average at the end: %s (on %u hardware threads; wall-clock numbers assume an "
      "otherwise idle machine)\n",
      LoadAverage().c_str(), std::thread::hardware_concurrency());
  if (cfg.quick) std::printf("(--quick: about 10x less work; numbers are a smoke test)\n");
  auto n = g_errors.count();
  if (n != 0) {
    std::printf("ERRORS: %llu; first: %s\n", static_cast<unsigned long long>(n),
                g_errors.first.c_str());
    return 1;
  }
  std::printf("no errors\n");
  return 0;
}

}  // namespace
}  // namespace doppel::bench

int main(int argc, char** argv) {
  try {
    return doppel::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_bench: %s\n", e.what());
    return 1;
  }
}
