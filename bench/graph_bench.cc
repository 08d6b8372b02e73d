// End-to-end throughput and latency of the twin graph, the HTTP API, bulk import and queries.
//
//   build/release/bench/graph_bench [--quick]
//
// One run measures, each against a baseline taken in the same run (so the ratio shows what a
// layer costs on top of the one below it):
//   1. In-process PATCH throughput: TwinGraph over a real Store (temp dir) with 1,000 twins and
//      64 PatchTwin calls in flight, fsync=always and fsync=never. Baseline: Store::Commit of
//      single-key batches of the same size from 64 threads, same sync policy (the storage floor).
//   2. HTTP PATCH /digitaltwins/{id} over 1 and 16 keep-alive connections against an in-process
//      api::Server (insecure; I/O threads and shards sized as `doppel serve` does), with p50/p99
//      latency, each connection either sending one request at a time or keeping 32 pipelined
//      requests outstanding (HTTP/1.1 pipelining, which the server supports; the 50k/s target is
//      for 16 pipelined connections). Baseline: GET /healthz with the same connections and depth
//      (the HTTP stack alone). One client thread on raw sockets drives all connections.
//   3. Import of 100,000 twins and 200,000 relationships through ImportJobs::Run (NDJSON built
//      in memory; Areas contain Machines, Machines feed Machines) with fsync=always. Baseline:
//      the same import with fsync=never.
//   4. Query latency (p50/p99) over the imported graph: $dtId lookup, equality on an indexed
//      property, a 2-hop MATCH. Baseline: SELECT COUNT() FROM DIGITALTWINS (a full scan).
//
// --quick shrinks every size (and duration) 10x for a smoke run. Targets are printed as
// PASS/MISS and never fail the run; the exit status is 1 only when something failed (a write,
// an HTTP request, an import line, a query, or a wrong result).
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/auth.h"
#include "api/import_job.h"
#include "api/server.h"
#include "bench_table.h"
#include "core/in_flight.h"
#include "core/threads.h"
#include "model/model.h"
#include "store/store.h"
#include "twin/query/query.h"
#include "twin/twin_graph.h"

namespace doppel::bench {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

// Targets (reported, not asserted).
constexpr double kTargetHttpPatchesPerSec = 50'000;  // 16 connections, pipelined
constexpr int kPipelineDepth = 32;           // requests outstanding per connection when pipelining
constexpr double kTargetImportSeconds = 10;  // 100k twins + 200k relationships
constexpr double kTargetSelectiveP50Ms = 10;

constexpr const char* kMachineModel =
    R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:bench:factory:Machine;1", "@type": "Interface", "displayName": "Machine", "contents": [{"@type": "Property", "name": "serial", "schema": "string"}, {"@type": "Property", "name": "line", "schema": "string"}, {"@type": "Property", "name": "temperature", "schema": "double", "writable": true}, {"@type": "Property", "name": "status", "schema": "string", "writable": true}, {"@type": "Relationship", "name": "feeds", "target": "dtmi:bench:factory:Machine;1", "properties": [{"@type": "Property", "name": "buffer", "schema": "integer"}]}]})";
constexpr const char* kAreaModel =
    R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:bench:factory:Area;1", "@type": "Interface", "displayName": "Area", "contents": [{"@type": "Property", "name": "name", "schema": "string"}, {"@type": "Relationship", "name": "contains", "target": "dtmi:bench:factory:Machine;1"}]})";
constexpr const char* kMachine = "dtmi:bench:factory:Machine;1";

// ---------------------------------------------------------------------------------------------
// Helpers

struct Config {
  bool quick = false;
  int scale = 1;                  // divisor
  std::size_t twins = 1000;       // part 1 and 2
  std::size_t patches = 100'000;  // part 1, per policy
  int in_flight = 64;             // part 1
  double http_warmup_s = 0.3, http_run_s = 3.0;
  std::size_t import_twins = 100'000, import_rels = 200'000;
  int query_runs = 300, scan_runs_max = 200;
  double scan_budget_s = 10;
};

// Counts failures; the first one is kept for the report.
struct Errors {
  std::mutex mu;
  std::uint64_t n = 0;
  std::string first;
  void Add(std::string what) {
    std::lock_guard lock(mu);
    if (n++ == 0) first = std::move(what);
  }
  std::uint64_t count() {
    std::lock_guard lock(mu);
    return n;
  }
};

// CPU time (user + system) of the whole process so far: with other work on the machine, CPU per
// operation is the steadier number.
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// CPU seconds so far of this process's threads, summed by thread name (/proc/self/task/*/stat;
// clock-tick resolution, fine over a run of seconds).
std::map<std::string, double> CpuByThreadName() {
  std::map<std::string, double> out;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(e.path() / "comm"), stat(e.path() / "stat");
    std::string name, line;
    std::getline(comm, name);
    std::getline(stat, line);
    auto rp = line.rfind(')');
    if (rp == std::string::npos) continue;
    std::istringstream in(line.substr(rp + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::atof(field.c_str());
      if (i == 15) stime = std::atof(field.c_str());
    }
    out[name] += (utime + stime) / tick;
  }
  return out;
}

// "name 45%, other 30%": each thread group's share of one core over `seconds`.
std::string CpuShares(const std::map<std::string, double>& before,
                      const std::map<std::string, double>& after, double seconds) {
  std::vector<std::pair<double, std::string>> v;
  for (const auto& [name, t] : after) {
    auto it = before.find(name);
    double d = t - (it == before.end() ? 0 : it->second);
    if (d > 0) v.emplace_back(d / seconds * 100, name);
  }
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (const auto& [pct, name] : v) {
    out += fmt::format("{}{} {:.0f}%", out.empty() ? "" : ", ", name, pct);
  }
  return out;
}

// CPU time of the calling thread.
double ThreadCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Seconds the process's live threads spent runnable but waiting for a CPU (field 2 of
// /proc/self/task/*/schedstat): the share of the wall time lost to other work on the machine.
double RunQueueWaitSeconds() {
  double total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/task", ec)) {
    std::FILE* f = std::fopen((e.path() / "schedstat").c_str(), "r");
    if (f == nullptr) continue;
    unsigned long long run = 0, wait = 0;
    if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) total += static_cast<double>(wait) * 1e-9;
    std::fclose(f);
  }
  return total;
}

std::string LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  char buf[64] = {};
  std::string out = std::fgets(buf, sizeof buf, f) ? buf : "?";
  std::fclose(f);
  return out.substr(0, out.find(' '));
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Value at quantile q of `v` (sorted in place).
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> next{0};
    path_ = fs::temp_directory_path() /
            fmt::format("doppel-graph-bench-{}-{}-{}", getpid(), next.fetch_add(1), tag);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const char* PolicyName(store::SyncPolicy p) {
  return p == store::SyncPolicy::kAlways  ? "always"
         : p == store::SyncPolicy::kNever ? "never"
                                          : "interval";
}

// A store + model repository + graph, torn down in the right order.
struct Engine {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<model::ModelRepository> models;
  std::unique_ptr<twin::TwinGraph> graph;

  ~Engine() {
    graph.reset();
    models.reset();
    store.reset();
    dir.reset();
  }
};

// Opens a fresh engine; with `add_models` the bench models are added.
std::unique_ptr<Engine> OpenEngine(const std::string& tag, store::SyncPolicy sync, bool add_models,
                                   std::string* error) {
  auto e = std::make_unique<Engine>();
  e->dir = std::make_unique<TempDir>(tag);
  store::StoreOptions so;
  so.dir = e->dir->path();
  so.sync = sync;
  auto st = store::Store::Open(so);
  if (!st.ok()) {
    *error = st.status().ToString();
    return nullptr;
  }
  e->store = std::move(*st);
  e->models = std::make_unique<model::ModelRepository>(e->store.get());
  if (add_models) {
    model::SourceDocument docs[] = {{"machine", kMachineModel}, {"area", kAreaModel}};
    auto r = e->models->Add(docs);
    if (!r.ok()) {
      *error = "the bench models do not load:";
      for (const auto& d : r.diagnostics) *error += "\n  " + model::FormatDiagnostic(d);
      return nullptr;
    }
  }
  twin::GraphOptions go;
  go.shards = core::ThreadsPerStage();  // as `doppel serve` does
  e->graph = std::make_unique<twin::TwinGraph>(*e->models, e->store.get(), go);
  return e;
}

json::object MachineTwin(std::size_t i) {
  return json::object{{"$metadata", json::object{{"$model", kMachine}}},
                      {"serial", fmt::format("SN-{}", i)},
                      {"line", fmt::format("line-{}", i % 100)},
                      {"temperature", 20.0 + static_cast<double>(i % 50) * 0.5},
                      {"status", "running"}};
}

// Creates machines m-0..m-(n-1) through the graph (64 in flight).
bool CreateMachines(twin::TwinGraph& graph, std::size_t n, Errors& errors) {
  core::InFlight gate(64);
  for (std::size_t i = 0; i < n; ++i) {
    gate.Acquire();
    graph.PutTwin(fmt::format("m-{}", i), MachineTwin(i), {}, [&](core::Result<twin::TwinPtr> r) {
      if (!r.ok()) errors.Add("create twin: " + r.status().ToString());
      gate.Release();
    });
  }
  gate.WaitAll();
  return errors.count() == 0;
}

json::value TemperaturePatch(double v) {
  return json::array{json::object{{"op", "replace"}, {"path", "/temperature"}, {"value", v}}};
}

// ---------------------------------------------------------------------------------------------
// Summary table

using bench::Row;
std::vector<Row> g_rows;
Errors g_errors;

void AddRow(Row r) { g_rows.push_back(std::move(r)); }

void PrintTable() { bench::PrintTable(g_rows); }

// ---------------------------------------------------------------------------------------------
// 1. In-process patches vs the storage floor

double RawCommitsPerSec(const Config& cfg, store::SyncPolicy sync, const std::string& value,
                        double* cpu_us_per_op) {
  std::string error;
  auto e = OpenEngine(fmt::format("raw-{}", PolicyName(sync)), sync, false, &error);
  if (!e) {
    g_errors.Add(error);
    return 0;
  }
  const int threads = cfg.in_flight;
  const std::size_t per_thread = cfg.patches / static_cast<std::size_t>(threads);
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (std::size_t i = 0; i < per_thread; ++i) {
        twin::LogBatch b;
        b.ops.emplace_back(twin::TwinKey(fmt::format("m-{}", (t * per_thread + i) % cfg.twins)),
                           value);
        if (auto s = e->store->Commit(b); !s.ok()) g_errors.Add("raw commit: " + s.ToString());
      }
    });
  }
  auto t0 = Clock::now();
  double c0 = CpuSeconds();
  go = true;
  for (auto& t : ts) t.join();
  double secs = Seconds(t0, Clock::now());
  const double n = static_cast<double>(per_thread * static_cast<std::size_t>(threads));
  *cpu_us_per_op = (CpuSeconds() - c0) / n * 1e6;
  return n / secs;
}

struct PatchRun {
  double per_sec = 0;
  std::uint64_t commits = 0;
  std::size_t doc_bytes = 0;
  double cpu_us = 0;  // per patch
};

PatchRun GraphPatchesPerSec(const Config& cfg, store::SyncPolicy sync) {
  PatchRun out;
  std::string error;
  auto e = OpenEngine(fmt::format("graph-{}", PolicyName(sync)), sync, true, &error);
  if (!e) {
    g_errors.Add(error);
    return out;
  }
  if (!CreateMachines(*e->graph, cfg.twins, g_errors)) return out;
  const auto commits_before = e->graph->stats().commits;
  core::InFlight gate(cfg.in_flight);
  std::mt19937 rng(42);
  double c0 = CpuSeconds();
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < cfg.patches; ++i) {
    gate.Acquire();
    std::size_t k = rng() % cfg.twins;
    e->graph->PatchTwin(fmt::format("m-{}", k),
                        TemperaturePatch(15.0 + static_cast<double>(i % 1000) * 0.01), {},
                        [&](core::Result<twin::TwinPtr> r) {
                          if (!r.ok()) g_errors.Add("PatchTwin: " + r.status().ToString());
                          gate.Release();
                        });
  }
  gate.WaitAll();
  double secs = Seconds(t0, Clock::now());
  out.per_sec = static_cast<double>(cfg.patches) / secs;
  out.cpu_us = (CpuSeconds() - c0) / static_cast<double>(cfg.patches) * 1e6;
  out.commits = e->graph->stats().commits - commits_before;
  out.doc_bytes = json::serialize(e->graph->FindTwin("m-0")->doc).size();
  return out;
}

// The stored document of a patched machine, as the graph writes it (for equally sized batches).
std::string SampleStoredDoc() {
  std::string error;
  auto e = OpenEngine("sample", store::SyncPolicy::kNever, true, &error);
  if (!e) return std::string(300, 'x');
  auto r = e->graph->PutTwinSync("m-0", MachineTwin(0));
  if (!r.ok()) return std::string(300, 'x');
  auto p = e->graph->PatchTwinSync("m-0", TemperaturePatch(21.5));
  if (!p.ok()) return std::string(300, 'x');
  return json::serialize((*p)->doc);
}

void PartInProcess(const Config& cfg) {
  std::printf("\n[1] in-process PatchTwin, %zu twins, %d in flight, %zu patches per policy\n",
              cfg.twins, cfg.in_flight, cfg.patches);
  const std::string value = SampleStoredDoc();
  std::printf("    stored twin document: %zu bytes\n", value.size());
  for (auto sync : {store::SyncPolicy::kAlways, store::SyncPolicy::kNever}) {
    double raw_cpu = 0;
    double raw = RawCommitsPerSec(cfg, sync, value, &raw_cpu);
    PatchRun g = GraphPatchesPerSec(cfg, sync);
    double per_group =
        g.commits ? static_cast<double>(cfg.patches) / static_cast<double>(g.commits) : 0;
    std::printf(
        "    fsync=%-6s graph %s patches/s (%llu group commits, %.1f writes/commit, "
        "%.1f us CPU/patch); raw Store::Commit from %d threads %s commits/s (%.1f us "
        "CPU/commit)\n",
        PolicyName(sync), Grouped(g.per_sec).c_str(), static_cast<unsigned long long>(g.commits),
        per_group, g.cpu_us, cfg.in_flight, Grouped(raw).c_str(), raw_cpu);
    AddRow({fmt::format("in-process patches/s, fsync={}", PolicyName(sync)),
            fmt::format("{}/s ({:.0f} us CPU/op)", Grouped(g.per_sec), g.cpu_us),
            fmt::format("raw commit {}/s ({:.0f} us CPU/op)", Grouped(raw), raw_cpu),
            raw > 0 ? fmt::format("{:.2f}x floor", g.per_sec / raw) : "-", "", ""});
  }
}

// ---------------------------------------------------------------------------------------------
// 2. HTTP

enum class Load { kHealthz, kPatch };

struct LoadResult {
  double per_sec = 0;
  double p50_ms = 0, p99_ms = 0;
  std::uint64_t requests = 0;
  double cpu_us = 0;         // per request, server and client together
  double client_cpu_us = 0;  // per request, the client thread alone
  std::string threads;       // CPU share by thread name (100% = one core)
};

// A closed-loop HTTP/1.1 load generator on raw Asio sockets (so that the client's own parsing
// costs little next to the server's): each connection keeps `depth` requests outstanding,
// writing the requests it owes in one write and reading answers as they come. depth 1 is plain
// keep-alive; depth > 1 is HTTP pipelining. The answer parser only understands what doppel
// sends (a status line, "Content-Length: " when there is a body).
class HttpLoad {
 public:
  HttpLoad(std::uint16_t port, int conns, int depth, Load kind, std::size_t twins, double warmup_s,
           double run_s)
      : port_(port), depth_(depth), kind_(kind), twins_(twins) {
    for (int i = 0; i < conns; ++i) conns_.push_back(std::make_unique<Conn>(ioc_, i));
    warm_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
    run_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(run_s));
  }

  LoadResult Run() {
    net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port_);
    for (auto& c : conns_) {
      beast::error_code ec;
      c->socket.connect(ep, ec);
      if (ec) {
        g_errors.Add("connect: " + ec.message());
        return {};
      }
      c->socket.set_option(net::ip::tcp::no_delay(true));
    }
    start_ = Clock::now();
    cpu0_ = CpuSeconds();
    const double thread0 = ThreadCpuSeconds();
    const auto threads0 = CpuByThreadName();
    measure_from_ = start_ + warm_;
    measure_to_ = measure_from_ + run_;
    for (auto& c : conns_) {
      for (int i = 0; i < depth_; ++i) Queue(*c);
      Write(*c);
      Read(*c);
    }
    ioc_.run();
    const double cpu = CpuSeconds() - cpu0_;
    const double client_cpu = ThreadCpuSeconds() - thread0;
    LoadResult r;
    r.threads = CpuShares(threads0, CpuByThreadName(), Seconds(start_, Clock::now()));
    r.requests = done_;
    r.client_cpu_us = all_ ? client_cpu / static_cast<double>(all_) * 1e6 : 0;
    r.per_sec = static_cast<double>(done_) / Seconds(measure_from_, measure_to_);
    r.p50_ms = Quantile(lat_ms_, 0.50);
    r.p99_ms = Quantile(lat_ms_, 0.99);
    r.cpu_us = all_ ? cpu / static_cast<double>(all_) * 1e6 : 0;
    for (auto& c : conns_) {
      beast::error_code ec;
      c->socket.shutdown(net::ip::tcp::socket::shutdown_both, ec);
      c->socket.close(ec);
    }
    return r;
  }

 private:
  struct Conn {
    Conn(net::io_context& ioc, int i) : socket(ioc), rng(static_cast<unsigned>(i) * 7919u + 1u) {}
    net::ip::tcp::socket socket;
    std::mt19937 rng;
    std::string out, sending;  // requests owed; requests being written
    bool writing = false;
    std::string in;  // received bytes not yet parsed
    std::array<char, 64 * 1024> chunk{};
    std::deque<Clock::time_point> sent;  // send time of each outstanding request
  };

  // Appends one request to the connection's output, unless the run is over.
  void Queue(Conn& c) {
    auto now = Clock::now();
    if (now >= measure_to_) return;
    if (kind_ == Load::kPatch) {
      char body[96];
      auto n = fmt::format_to_n(body, sizeof body,
                                R"([{{"op":"replace","path":"/temperature","value":{}}}])",
                                10 + static_cast<double>(c.rng() % 10000) * 0.01)
                   .size;
      fmt::format_to(std::back_inserter(c.out),
                     "PATCH /digitaltwins/m-{} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                     c.rng() % twins_, n, std::string_view(body, n));
    } else {
      c.out += "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    }
    c.sent.push_back(now);
  }

  void Write(Conn& c) {
    if (c.writing || c.out.empty()) return;
    c.writing = true;
    c.sending.swap(c.out);
    c.out.clear();
    net::async_write(c.socket, net::buffer(c.sending),
                     [this, &c](beast::error_code ec, std::size_t) {
                       c.writing = false;
                       if (ec) return g_errors.Add("HTTP write: " + ec.message());
                       Write(c);
                     });
  }

  void Read(Conn& c) {
    if (c.sent.empty()) return;  // every answer is in: this connection is done
    c.socket.async_read_some(net::buffer(c.chunk), [this, &c](beast::error_code ec, std::size_t n) {
      if (ec) return g_errors.Add("HTTP read: " + ec.message());
      c.in.append(c.chunk.data(), n);
      auto end = Clock::now();
      std::size_t pos = 0;
      const unsigned want = kind_ == Load::kPatch ? 204 : 200;
      while (true) {
        std::size_t hdr_end = c.in.find("\r\n\r\n", pos);
        if (hdr_end == std::string::npos) break;
        std::string_view head(c.in.data() + pos, hdr_end - pos);
        std::size_t body_len = 0;
        if (auto cl = head.find("Content-Length: "); cl != std::string_view::npos) {
          std::from_chars(head.data() + cl + 16, head.data() + head.size(), body_len);
        }
        if (c.in.size() < hdr_end + 4 + body_len) break;
        unsigned status = 0;
        if (head.size() > 12) std::from_chars(head.data() + 9, head.data() + 12, status);
        ++all_;
        if (status != want) {
          g_errors.Add(fmt::format("HTTP {}: {}", status, c.in.substr(pos, 400)));
        } else if (c.sent.front() >= measure_from_ && end <= measure_to_) {
          ++done_;
          lat_ms_.push_back(
              std::chrono::duration<double, std::milli>(end - c.sent.front()).count());
        }
        c.sent.pop_front();
        pos = hdr_end + 4 + body_len;
        Queue(c);
      }
      c.in.erase(0, pos);
      Write(c);
      Read(c);
    });
  }

  net::io_context ioc_;
  std::uint16_t port_;
  int depth_;
  Load kind_;
  std::size_t twins_;
  std::vector<std::unique_ptr<Conn>> conns_;
  Clock::duration warm_, run_;
  Clock::time_point start_, measure_from_, measure_to_;
  std::uint64_t done_ = 0, all_ = 0;
  double cpu0_ = 0;
  std::vector<double> lat_ms_;
};

void PartHttp(const Config& cfg) {
  std::printf(
      "\n[2] HTTP (in-process api::Server, insecure, %d I/O threads, %d shards), %zu "
      "twins, %.1f s per run after %.1f s warm-up; 1 client thread on raw sockets, each "
      "connection keeping `depth` requests outstanding (depth > 1: HTTP/1.1 pipelining)\n",
      core::ThreadsPerStage(), core::ThreadsPerStage(), cfg.twins, cfg.http_run_s,
      cfg.http_warmup_s);
  struct Shape {
    int conns, depth;
  };
  const Shape shapes[] = {{1, 1}, {16, 1}, {1, kPipelineDepth}, {16, kPipelineDepth}};
  std::optional<LoadResult> health[std::size(shapes)];
  for (auto sync : {store::SyncPolicy::kAlways, store::SyncPolicy::kNever}) {
    std::string error;
    auto e = OpenEngine(fmt::format("http-{}", PolicyName(sync)), sync, true, &error);
    if (!e) {
      g_errors.Add(error);
      return;
    }
    if (!CreateMachines(*e->graph, cfg.twins, g_errors)) return;
    api::KeyStore keys(nullptr);
    api::ServerOptions so;
    so.port = 0;
    so.insecure = true;
    so.io_threads = core::ThreadsPerStage();  // as `doppel serve` does
    api::Server server({e->models.get(), e->graph.get(), e->store.get(), &keys}, so);
    if (auto s = server.Start(); !s.ok()) {
      g_errors.Add(s.ToString());
      return;
    }
    for (std::size_t si = 0; si < std::size(shapes); ++si) {
      const auto [conns, depth] = shapes[si];
      if (!health[si]) {
        health[si] = HttpLoad(server.port(), conns, depth, Load::kHealthz, cfg.twins,
                              cfg.http_warmup_s, cfg.http_run_s)
                         .Run();
        std::printf(
            "    GET /healthz        %2d conn x depth %2d: %s req/s  p50 %s  p99 %s  "
            "(%.1f us CPU/req, client %.1f)\n",
            conns, depth, Grouped(health[si]->per_sec).c_str(), Ms(health[si]->p50_ms).c_str(),
            Ms(health[si]->p99_ms).c_str(), health[si]->cpu_us, health[si]->client_cpu_us);
      }
      auto c0 = e->graph->stats().commits;
      auto w0 = e->graph->stats().writes;
      LoadResult p = HttpLoad(server.port(), conns, depth, Load::kPatch, cfg.twins,
                              cfg.http_warmup_s, cfg.http_run_s)
                         .Run();
      auto st = e->graph->stats();
      double per_commit = st.commits > c0 ? static_cast<double>(st.writes - w0) /
                                                static_cast<double>(st.commits - c0)
                                          : 0;
      std::printf(
          "    PATCH fsync=%-6s  %2d conn x depth %2d: %s req/s  p50 %s  p99 %s  "
          "(%.1f writes/commit, %.1f us CPU/req, client %.1f)\n",
          PolicyName(sync), conns, depth, Grouped(p.per_sec).c_str(), Ms(p.p50_ms).c_str(),
          Ms(p.p99_ms).c_str(), per_commit, p.cpu_us, p.client_cpu_us);
      std::printf("        threads: %s\n", p.threads.c_str());
      const LoadResult& h = *health[si];
      Row row{
          fmt::format("HTTP PATCH/s, {} conn x depth {}, fsync={}", conns, depth, PolicyName(sync)),
          fmt::format("{}/s p50 {} p99 {} ({:.0f} us CPU/req)", Grouped(p.per_sec), Ms(p.p50_ms),
                      Ms(p.p99_ms), p.cpu_us),
          fmt::format("healthz {}/s p50 {} p99 {}", Grouped(h.per_sec), Ms(h.p50_ms), Ms(h.p99_ms)),
          h.per_sec > 0 ? fmt::format("{:.2f}x healthz", p.per_sec / h.per_sec) : "-",
          "",
          ""};
      if (conns == 16 && depth == kPipelineDepth) {
        row.target = fmt::format(">= {}/s", Grouped(kTargetHttpPatchesPerSec));
        row.status = p.per_sec >= kTargetHttpPatchesPerSec ? "PASS" : "MISS";
      }
      AddRow(std::move(row));
    }
    server.Stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Import, 4. queries

// Areas a-0..a-(A-1) contain machines m-0..m-(M-1) (A = twins/100, so M = 99% of the twins);
// every machine feeds the next one (ring) and the first `extra` machines also feed m+100, so
// that contains + feeds = rels.
std::string BuildImport(std::size_t twins, std::size_t rels, std::size_t* machines_out) {
  const std::size_t areas = std::max<std::size_t>(1, twins / 100);
  const std::size_t machines = twins - areas;
  const std::size_t extra = rels > 2 * machines ? std::min(machines, rels - 2 * machines) : 0;
  *machines_out = machines;
  std::string s;
  s.reserve(twins * 160 + rels * 140);
  s += R"({"Section": "Header"})"
       "\n";
  s += R"({"fileVersion": "1.0.0", "author": "graph_bench", "organization": "doppel"})"
       "\n";
  s += R"({"Section": "Models"})"
       "\n";
  s += kMachineModel;
  s += '\n';
  s += kAreaModel;
  s += '\n';
  s += R"({"Section": "Twins"})"
       "\n";
  for (std::size_t a = 0; a < areas; ++a) {
    s += fmt::format(
        R"({{"$dtId": "a-{}", "$metadata": {{"$model": "dtmi:bench:factory:Area;1"}}, "name": "Area {}"}})"
        "\n",
        a, a);
  }
  for (std::size_t m = 0; m < machines; ++m) {
    s += fmt::format(
        R"({{"$dtId": "m-{}", "$metadata": {{"$model": "{}"}}, "serial": "SN-{}", "line": "line-{}", "temperature": {:.1f}, "status": "running"}})"
        "\n",
        m, kMachine, m, m % 100, 20.0 + static_cast<double>(m % 50) * 0.5);
  }
  s += R"({"Section": "Relationships"})"
       "\n";
  for (std::size_t m = 0; m < machines; ++m) {
    s += fmt::format(
        R"({{"$sourceId": "a-{}", "$relationshipId": "contains-m-{}", "$targetId": "m-{}", "$relationshipName": "contains"}})"
        "\n",
        m % areas, m, m);
  }
  for (std::size_t m = 0; m < machines; ++m) {
    s += fmt::format(
        R"({{"$sourceId": "m-{}", "$relationshipId": "feeds-{}", "$targetId": "m-{}", "$relationshipName": "feeds", "buffer": {}}})"
        "\n",
        m, (m + 1) % machines, (m + 1) % machines, m % 7);
    if (m < extra) {
      s += fmt::format(
          R"({{"$sourceId": "m-{}", "$relationshipId": "feeds-{}", "$targetId": "m-{}", "$relationshipName": "feeds", "buffer": 0}})"
          "\n",
          m, (m + 100) % machines, (m + 100) % machines);
    }
  }
  return s;
}

struct ImportRun {
  double seconds = 0, twin_phase_s = 0, cpu_s = 0, runq_s = 0;
  std::size_t twins = 0, rels = 0;
  std::uint64_t commits = 0;
  std::unique_ptr<Engine> engine;
};

ImportRun RunImport(const std::string& ndjson, store::SyncPolicy sync) {
  ImportRun out;
  std::string error;
  out.engine = OpenEngine(fmt::format("import-{}", PolicyName(sync)), sync, false, &error);
  if (!out.engine) {
    g_errors.Add(error);
    return out;
  }
  Engine& e = *out.engine;
  api::ImportJob job;
  job.id = "bench";
  std::mutex mu;
  // Watches the graph to split the wall time into the twin and relationship phases.
  std::atomic<bool> done{false};
  std::atomic<double> first_rel_s{0};
  auto t0 = Clock::now();
  const double c0 = CpuSeconds();
  const double q0 = RunQueueWaitSeconds();
  std::thread watch([&] {
    while (!done.load()) {
      if (first_rel_s.load() == 0 && e.graph->stats().relationships > 0) {
        first_rel_s = Seconds(t0, Clock::now());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  api::ImportJobs::Run(*e.models, *e.graph, ndjson, /*allow_models=*/true, &job, &mu);
  out.seconds = Seconds(t0, Clock::now());
  out.cpu_s = CpuSeconds() - c0;
  out.runq_s = RunQueueWaitSeconds() - q0;
  done = true;
  watch.join();
  out.twin_phase_s = first_rel_s.load();
  out.twins = job.twins;
  out.rels = job.relationships;
  out.commits = e.graph->stats().commits;
  if (job.error_count != 0) {
    g_errors.Add(fmt::format("import ({}): {} error(s); first: line {}: {}", PolicyName(sync),
                             job.error_count, job.errors.empty() ? 0 : job.errors[0].line,
                             job.errors.empty() ? "" : job.errors[0].error.ToString()));
  }
  return out;
}

struct Latency {
  double p50 = 0, p99 = 0;
  std::size_t runs = 0, rows = 0;
  std::string plan;
};

// Runs make_query(i) `runs` times (after `warmup` unmeasured runs); checks each result.
Latency MeasureQuery(const twin::GraphView& g, const std::function<std::string(int)>& make_query,
                     int warmup, int runs, double budget_s,
                     const std::function<bool(const boost::json::array&)>& check) {
  Latency out;
  std::vector<double> ms;
  twin::query::QueryOptions opts;
  opts.page_size = 1000;
  opts.timeout = std::chrono::seconds(60);
  auto start = Clock::now();
  for (int i = 0; i < warmup + runs; ++i) {
    std::string text = make_query(i);
    auto t0 = Clock::now();
    auto page = twin::query::RunQuery(g, text, opts);
    auto t1 = Clock::now();
    if (!page.ok()) {
      g_errors.Add(fmt::format("query {}: {}", text, page.status().ToString()));
      return out;
    }
    if (!check(page->items)) {
      g_errors.Add(fmt::format("query {}: unexpected result {}", text,
                               json::serialize(page->items).substr(0, 300)));
      return out;
    }
    if (i >= warmup) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      out.rows = page->items.size();
    }
    if (i == warmup + runs - 1 || (i >= warmup + 20 && Seconds(start, t1) > budget_s)) {
      auto q = twin::query::Query::Parse(text);
      if (q.ok()) out.plan = q->Explain(g);
      if (i >= warmup + 20 && Seconds(start, t1) > budget_s) break;
    }
  }
  out.runs = ms.size();
  out.p50 = Quantile(ms, 0.5);
  out.p99 = Quantile(ms, 0.99);
  return out;
}

void PartImportAndQuery(const Config& cfg, bool queries) {
  std::size_t machines = 0;
  auto tb = Clock::now();
  const std::string ndjson = BuildImport(cfg.import_twins, cfg.import_rels, &machines);
  std::printf(
      "\n[3] import: %zu twins (%zu machines), %zu relationships, %.1f MB NDJSON "
      "(built in %.2f s, not timed)\n",
      cfg.import_twins, machines, cfg.import_rels, static_cast<double>(ndjson.size()) / 1e6,
      Seconds(tb, Clock::now()));

  double never_s = 0, never_cpu = 0;
  {
    ImportRun never = RunImport(ndjson, store::SyncPolicy::kNever);
    never_s = never.seconds;
    never_cpu = never.cpu_s;
    std::printf(
        "    fsync=never : %.2f s (twins %.2f s, relationships %.2f s; %.2f s CPU, %.2f s "
        "runnable-but-not-running), %zu twins, %zu relationships, %llu group commits\n",
        never.seconds, never.twin_phase_s, never.seconds - never.twin_phase_s, never.cpu_s,
        never.runq_s, never.twins, never.rels, static_cast<unsigned long long>(never.commits));
  }
  ImportRun run = RunImport(ndjson, store::SyncPolicy::kAlways);
  std::printf(
      "    fsync=always: %.2f s (twins %.2f s, relationships %.2f s; %.2f s CPU, %.2f s "
      "runnable-but-not-running), %zu twins, %zu relationships, %llu group commits; twin "
      "phase %s twins/s, relationship phase %s relationships/s\n",
      run.seconds, run.twin_phase_s, run.seconds - run.twin_phase_s, run.cpu_s, run.runq_s,
      run.twins, run.rels, static_cast<unsigned long long>(run.commits),
      Grouped(static_cast<double>(run.twins) / std::max(run.twin_phase_s, 1e-9)).c_str(),
      Grouped(static_cast<double>(run.rels) / std::max(run.seconds - run.twin_phase_s, 1e-9))
          .c_str());
  const double objects = static_cast<double>(run.twins + run.rels);
  AddRow({fmt::format("import {}k twins + {}k rels, fsync=always", cfg.import_twins / 1000,
                      cfg.import_rels / 1000),
          fmt::format("{:.2f} s ({} twins/s, {} twins+rels/s; {:.1f} s CPU)", run.seconds,
                      Grouped(static_cast<double>(run.twins) / run.seconds),
                      Grouped(objects / run.seconds), run.cpu_s),
          fmt::format("fsync=never {:.2f} s ({:.1f} s CPU)", never_s, never_cpu),
          never_s > 0 ? fmt::format("{:.2f}x", run.seconds / never_s) : "-",
          fmt::format("< {:.0f} s", kTargetImportSeconds / cfg.scale),
          run.seconds < kTargetImportSeconds / cfg.scale ? "PASS" : "MISS"});
  if (!run.engine || !queries) return;

  // ---- 4. queries over the imported graph
  const twin::TwinGraph& g = *run.engine->graph;
  std::printf("\n[4] queries over %zu twins (%d runs each after warm-up; page size 1000)\n",
              g.TwinCount(), cfg.query_runs);
  const std::size_t n_twins = g.TwinCount();
  Latency scan = MeasureQuery(
      g, [](int) { return std::string("SELECT COUNT() FROM DIGITALTWINS"); }, 2, cfg.scan_runs_max,
      cfg.scan_budget_s,
      [&](const json::array& rows) {
        return rows.size() == 1 && rows[0].is_object() &&
               rows[0].get_object().if_contains("COUNT") &&
               rows[0].at("COUNT").to_number<std::size_t>() == n_twins;
      });
  std::printf("    %-58s p50 %-10s p99 %-10s (%zu runs)  plan: %s\n",
              "baseline: SELECT COUNT() FROM DIGITALTWINS", Ms(scan.p50).c_str(),
              Ms(scan.p99).c_str(), scan.runs, scan.plan.c_str());

  auto pick = [machines](int i) { return (4711 + static_cast<std::size_t>(i) * 7919) % machines; };
  auto one_row = [](const json::array& rows) { return rows.size() == 1; };
  struct Q {
    std::string label;
    std::function<std::string(int)> text;
    std::function<bool(const json::array&)> check;
    bool selective;
  };
  std::vector<Q> qs = {
      {"$dtId lookup: WHERE T.$dtId = 'm-4711'",
       [&](int i) {
         return fmt::format("SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'm-{}'", pick(i));
       },
       one_row, true},
      {"property equality: WHERE T.serial = 'SN-4711'",
       [&](int i) {
         return fmt::format("SELECT * FROM DIGITALTWINS T WHERE T.serial = 'SN-{}'", pick(i));
       },
       one_row, true},
      {"2-hop MATCH (a)-[:feeds]->(m)-[:feeds]->(b), a = 'm-17'",
       [&](int i) {
         return fmt::format(
             "SELECT b FROM DIGITALTWINS MATCH (a)-[:feeds]->(m)-[:feeds]->(b) WHERE a.$dtId = "
             "'m-{}'",
             i % 2 == 0 ? 17 : pick(i));
       },
       [](const json::array& rows) { return !rows.empty(); }, false},
  };
  for (const auto& q : qs) {
    // Warm-up covers the property_index_threshold queries after which the graph indexes a
    // filtered property.
    Latency l = MeasureQuery(g, q.text, 10, cfg.query_runs, 1e9, q.check);
    std::printf("    %-58s p50 %-10s p99 %-10s (%zu runs)  plan: %s\n", q.label.c_str(),
                Ms(l.p50).c_str(), Ms(l.p99).c_str(), l.runs, l.plan.c_str());
    Row row{"query " + q.label,
            fmt::format("p50 {} p99 {}", Ms(l.p50), Ms(l.p99)),
            fmt::format("scan COUNT() p50 {}", Ms(scan.p50)),
            l.p50 > 0 ? fmt::format("{:.0f}x faster", scan.p50 / l.p50) : "-",
            "",
            ""};
    if (q.selective) {
      row.target = fmt::format("p50 <= {:.0f} ms", kTargetSelectiveP50Ms);
      row.status = l.p50 <= kTargetSelectiveP50Ms ? "PASS" : "MISS";
    }
    AddRow(std::move(row));
  }
  AddRow({"query baseline: SELECT COUNT() (full scan)",
          fmt::format("p50 {} p99 {}", Ms(scan.p50), Ms(scan.p99)), "-", "-", "", ""});
}

int Main(int argc, char** argv) {
  Config cfg;
  std::string parts = "1234";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
    } else if (a.starts_with("--parts=")) {
      parts = a.substr(8);
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: graph_bench [--quick] [--parts=1234]\n"
          "  --quick      every size and duration 10x smaller (smoke run)\n"
          "  --parts=...  run only these parts: 1 in-process patches, 2 HTTP, "
          "3 import, 4 queries (after an import)\n");
      return 0;
    } else {
      std::fprintf(stderr, "graph_bench: unknown argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.scale = 10;
    cfg.twins /= 10;
    cfg.patches /= 10;
    cfg.http_warmup_s /= 10;
    cfg.http_run_s /= 10;
    cfg.import_twins /= 10;
    cfg.import_rels /= 10;
    cfg.query_runs = 200;
    cfg.scan_runs_max = 20;
    cfg.scan_budget_s /= 10;
  }
  std::printf(
      "graph_bench%s: doppel twin graph end-to-end (temp dirs under %s, %u hardware "
      "threads, load average %s)\n",
      cfg.quick ? " --quick (sizes / 10)" : "", fs::temp_directory_path().c_str(),
      std::thread::hardware_concurrency(), LoadAverage().c_str());
  if (parts.find('1') != std::string::npos) PartInProcess(cfg);
  if (parts.find('2') != std::string::npos) PartHttp(cfg);
  if (parts.find('3') != std::string::npos || parts.find('4') != std::string::npos) {
    PartImportAndQuery(cfg, parts.find('4') != std::string::npos);
  }
  PrintTable();
  std::printf(
      "load average at the end: %s (on %u hardware threads; wall-clock numbers assume an "
      "otherwise idle machine)\n",
      LoadAverage().c_str(), std::thread::hardware_concurrency());
  if (cfg.quick) {
    std::printf(
        "(--quick: sizes are 10x smaller; the import target is scaled, the others are "
        "not comparable)\n");
  }
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
    std::fprintf(stderr, "graph_bench: %s\n", e.what());
    return 1;
  }
}
