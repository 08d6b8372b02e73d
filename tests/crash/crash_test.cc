// The kill -9 crash test (durability contract of twin/twin_graph.h: a write is acknowledged only
// after its group commit is durable).
//
// Runs a real `doppel serve` subprocess (env DOPPEL_BINARY) on a data directory in a temp dir,
// uploads the factory models, creates 50 CncMill twins and a ProductionLine, then for each cycle:
//   * 8 client threads (one keep-alive HTTP connection each) write as fast as they can:
//     JSON Patches that set a twin's counter property to a strictly increasing per-twin value
//     and, in the same patch, a second property derived from it (/serialNumber = "sn-<n>"), so a
//     half-applied patch is visible; relationship creations and deletions; twin creations (unique
//     ids) and deletions. Each thread owns a disjoint set of twins, so per-twin order is known.
//   * at a random moment (seeded; 50-600 ms into the load) the server gets SIGKILL; the write
//     each thread had in flight is "unknown" (it may or may not have been applied);
//   * the server restarts on the same data directory and the test checks: every acknowledged
//     write is present, every acknowledged delete stays deleted, no twin shows a half-applied
//     patch, every twin reads back with its model, COUNT() matches the expected set within the
//     unknown window (and exactly once the unknowns are resolved), etags survive unchanged and
//     a write after the restart gets an etag never seen before.
// Cycles alternate --fsync always (most) and interval (which survives a process crash too).
// Finally the server gets SIGTERM and must exit 0 (and the data must still verify after it).
//
// Env: DOPPEL_CRASH_CYCLES (default 20), DOPPEL_CRASH_SEED (default fixed; printed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/json.h"
#include "sync/mosquitto_process.h"
#include "sync/mqtt_client.h"

extern char** environ;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kCnc = "dtmi:doppel:example:factory:CncMill;1";
constexpr const char* kLine = "dtmi:doppel:example:factory:ProductionLine;1";
constexpr const char* kModelIds[] = {"dtmi:doppel:example:factory:Asset;1",
                                     "dtmi:doppel:example:factory:Machine;1", kCnc, kLine,
                                     "dtmi:doppel:example:factory:ThermalSensor;1"};
constexpr int kMills = 50;
constexpr int kThreads = 8;
constexpr const char* kLineId = "line-1";

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::atoi(v);
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const fs::path& p, std::size_t bytes = 4000) {
  std::string s = ReadFile(p);
  return s.size() <= bytes ? s : "..." + s.substr(s.size() - bytes);
}

std::string MillId(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "mill-%02d", i);
  return buf;
}

// --- a small blocking HTTP/1.1 keep-alive client (Boost.Beast) --------------------------------

struct Response {
  unsigned status = 0;
  std::string body;
  std::string etag;
};

class HttpConn {
 public:
  explicit HttpConn(std::uint16_t port) : port_(port) {}

  // nullopt on any transport error (connect, write, read); the connection is then closed and the
  // next call reconnects.
  std::optional<Response> Send(
      http::verb verb, const std::string& target, const std::string& body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    beast::error_code ec;
    if (!sock_.is_open()) {
      sock_.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port_), ec);
      if (ec) return Fail();
      sock_.set_option(tcp::no_delay(true), ec);
    }
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
      req.set(http::field::content_type,
              verb == http::verb::patch ? "application/json-patch+json" : "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(sock_, req, ec);
    if (ec) return Fail();
    // No body limit (Beast's default is 8 MB; a history answer can be larger).
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    http::read(sock_, buf_, parser, ec);
    if (ec) return Fail();
    http::response<http::string_body> res = parser.release();
    Response r;
    r.status = res.result_int();
    r.body = std::move(res.body());
    if (auto it = res.find(http::field::etag); it != res.end()) r.etag = std::string(it->value());
    if (!res.keep_alive()) Fail();
    return r;
  }

 private:
  std::nullopt_t Fail() {
    beast::error_code ignored;
    sock_.close(ignored);
    buf_.clear();
    return std::nullopt;
  }

  std::uint16_t port_;
  net::io_context ioc_;
  tcp::socket sock_{ioc_};
  beast::flat_buffer buf_;
};

std::string Describe(const std::optional<Response>& r) {
  if (!r) return "transport error";
  return std::to_string(r->status) + " " + r->body.substr(0, 300);
}

std::optional<json::value> ParseBody(const Response& r, std::size_t max_bytes = 32u << 20) {
  auto v = doppel::core::ParseJson(r.body, {.max_bytes = max_bytes});
  if (!v.ok()) {
    std::fprintf(stderr, "[crash] response body: %s\n", v.status().ToString().c_str());
    return std::nullopt;
  }
  return std::move(*v);
}

// --- the server subprocess --------------------------------------------------------------------

// Owns a `doppel serve` child; its destructor SIGKILLs and reaps it, so a failing assertion never
// leaves a server behind.
class ServerProcess {
 public:
  ServerProcess(fs::path data_dir, fs::path port_file, fs::path log_file)
      : data_dir_(std::move(data_dir)),
        port_file_(std::move(port_file)),
        log_file_(std::move(log_file)) {}
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Reap();
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits until it wrote its port file. Empty string on success.
  std::string Start(const std::string& fsync) {
    if (pid_ > 0) return "already running";
    std::error_code ec;
    fs::remove(port_file_, ec);
    const char* bin = std::getenv("DOPPEL_BINARY");
    if (bin == nullptr || *bin == '\0') return "DOPPEL_BINARY is not set";
    std::vector<std::string> args = {
        bin,          "serve",       "--data-dir",  data_dir_.string(),
        "--listen",   "127.0.0.1:0", "--port-file", port_file_.string(),
        "--insecure", "--fsync",     fsync,         "--history-checkpoint-ms",
        "100"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    {
      std::ofstream(log_file_, std::ios::app)
          << "=== crash_test: starting with --fsync " << fsync << " ===\n";
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);  // the test ignores SIGPIPE; the server gets the default
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, bin, &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return std::string("posix_spawn failed: ") + std::strerror(rc);
    pid_ = pid;
    // Not a timing assertion: only a guard against a server that never comes up.
    auto give_up = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "the server exited during startup (status " + std::to_string(status) + "); log:\n" +
               Tail(log_file_);
      }
      std::string text = ReadFile(port_file_);
      if (!text.empty() && text.back() == '\n') {
        port_ = static_cast<std::uint16_t>(std::stoi(text));
        return {};
      }
      if (Clock::now() > give_up) return "no port file after 60 s; log:\n" + Tail(log_file_);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Arguments added to every later Start.
  void SetExtraArgs(std::vector<std::string> args) { extra_args_ = std::move(args); }

  void Kill(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits for the child; returns its wait status (or -1 if there was none).
  int Reap() {
    if (pid_ <= 0) return -1;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

  // SIGTERM, then wait (SIGKILL after 60 s, as a hang guard). Returns the wait status.
  int Terminate() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    auto give_up = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      if (Clock::now() > give_up) {
        ::kill(pid_, SIGKILL);
        Reap();
        return -2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::uint16_t port() const { return port_; }
  const fs::path& log_file() const { return log_file_; }

 private:
  fs::path data_dir_, port_file_, log_file_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// A temp directory removed at the end unless the test failed (then it is kept for inspection).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "doppel-crash-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (::testing::Test::HasFailure()) {
      std::printf("[crash] keeping %s for inspection\n", path_.c_str());
      return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// --- what the test expects --------------------------------------------------------------------

enum class Presence { kPresent, kAbsent, kUnknownCreate, kUnknownDelete };

struct TwinRec {
  std::string model;
  bool is_line = false;
  bool deletable = false;  // created under load: nothing points at it
  Presence presence = Presence::kPresent;
  std::int64_t durable = 0;             // last acknowledged (or verified) counter value
  std::optional<std::int64_t> pending;  // a patch in flight at the kill
  std::string etag;                     // etag of the durable version ("" if not known)
  std::int64_t next = 1;                // next counter value (strictly increasing per twin)

  const char* counter_prop() const { return is_line ? "targetThroughput" : "operatingHours"; }
  const char* derived_prop() const { return is_line ? "name" : "serialNumber"; }
  std::string Derived(std::int64_t n) const {
    return (is_line ? "line-" : "sn-") + std::to_string(n);
  }
};

struct RelRec {
  std::string source, target;
  Presence presence = Presence::kPresent;
  std::string etag;
};

// One client thread's world; persists across cycles (the thread for owner k always owns the same
// twins, so each twin's writes are issued in order by one thread).
struct Owner {
  std::map<std::string, TwinRec> twins;
  std::map<std::string, RelRec> rels;  // feeds relationships whose source this owner owns
  std::vector<std::string> mills;      // the original mills it owns (relationship sources)
  // Per cycle.
  std::vector<std::string> etags;  // etags of acknowledged writes
  std::uint64_t acked = 0, unknown = 0;
  std::vector<std::string> errors;
  int next_id = 0;
};

std::string CounterPatch(const TwinRec& t, std::int64_t n) {
  json::array p;
  p.push_back(
      json::object{{"op", "add"}, {"path", std::string("/") + t.counter_prop()}, {"value", n}});
  p.push_back(json::object{
      {"op", "add"}, {"path", std::string("/") + t.derived_prop()}, {"value", t.Derived(n)}});
  return json::serialize(p);
}

std::string NewMillBody() {
  return json::serialize(json::object{{"$metadata", json::object{{"$model", kCnc}}},
                                      {"serialNumber", "sn-0"},
                                      {"operatingHours", 0}});
}

std::optional<std::int64_t> AsInt(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    double d = v->get_double();
    auto i = static_cast<std::int64_t>(d);
    if (static_cast<double>(i) == d) return i;
  }
  return std::nullopt;
}

// One client thread's load until its connection fails (the kill) or a write is rejected.
void RunLoad(Owner& o, int index, int cycle, std::uint16_t port, std::uint64_t seed,
             const std::vector<std::string>& all_mills, const std::atomic<bool>& killed) {
  std::mt19937_64 rng(seed * 1000003u + static_cast<std::uint64_t>(cycle) * 101u +
                      static_cast<std::uint64_t>(index));
  HttpConn conn(port);
  std::vector<std::string> live_twins, live_rels;
  for (const auto& [id, t] : o.twins) {
    if (t.presence == Presence::kPresent) live_twins.push_back(id);
  }
  for (const auto& [id, r] : o.rels) {
    if (r.presence == Presence::kPresent) live_rels.push_back(id);
  }
  auto pick = [&](std::vector<std::string>& v) -> std::size_t {
    return std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng);
  };
  auto lost = [&](const char* what) {
    ++o.unknown;
    if (!killed.load()) {
      o.errors.push_back(std::string("connection failed before the kill (during ") + what + ")");
    }
  };
  auto rejected = [&](const char* what, const std::string& target,
                      const std::optional<Response>& r) {
    o.errors.push_back(std::string(what) + " " + target + " was rejected: " + Describe(r));
  };
  for (;;) {
    int dice = std::uniform_int_distribution<int>(0, 99)(rng);
    if (dice < 10) {
      // Create a feeds relationship (unique id) from an owned mill to any mill.
      std::string source =
          o.mills[std::uniform_int_distribution<std::size_t>(0, o.mills.size() - 1)(rng)];
      std::string target =
          all_mills[std::uniform_int_distribution<std::size_t>(0, all_mills.size() - 1)(rng)];
      std::string id = "f" + std::to_string(cycle) + "." + std::to_string(index) + "." +
                       std::to_string(o.next_id++);
      RelRec& r = o.rels[id];
      r.source = source;
      r.target = target;
      auto res = conn.Send(
          http::verb::put, "/digitaltwins/" + source + "/relationships/" + id,
          json::serialize(json::object{{"$relationshipName", "feeds"}, {"$targetId", target}}),
          {{"If-None-Match", "*"}});
      if (!res) {
        r.presence = Presence::kUnknownCreate;
        return lost("relationship create");
      }
      if (res->status != 200 || res->etag.empty()) {
        r.presence = Presence::kAbsent;
        return rejected("PUT relationship", id, res);
      }
      r.presence = Presence::kPresent;
      r.etag = res->etag;
      o.etags.push_back(res->etag);
      live_rels.push_back(id);
      ++o.acked;
    } else if (dice < 17 && !live_rels.empty()) {
      std::size_t i = pick(live_rels);
      std::string id = live_rels[i];
      RelRec& r = o.rels[id];
      auto res =
          conn.Send(http::verb::delete_, "/digitaltwins/" + r.source + "/relationships/" + id);
      if (!res) {
        r.presence = Presence::kUnknownDelete;
        return lost("relationship delete");
      }
      if (res->status != 204) return rejected("DELETE relationship", id, res);
      r.presence = Presence::kAbsent;
      live_rels[i] = live_rels.back();
      live_rels.pop_back();
      ++o.acked;
    } else if (dice < 22) {
      std::string id = "n" + std::to_string(cycle) + "." + std::to_string(index) + "." +
                       std::to_string(o.next_id++);
      TwinRec& t = o.twins[id];
      t.model = kCnc;
      t.deletable = true;
      auto res = conn.Send(http::verb::put, "/digitaltwins/" + id, NewMillBody(),
                           {{"If-None-Match", "*"}});
      if (!res) {
        t.presence = Presence::kUnknownCreate;
        return lost("twin create");
      }
      if (res->status != 200 || res->etag.empty()) {
        t.presence = Presence::kAbsent;
        return rejected("PUT twin", id, res);
      }
      t.presence = Presence::kPresent;
      t.etag = res->etag;
      o.etags.push_back(res->etag);
      live_twins.push_back(id);
      ++o.acked;
    } else if (dice < 25) {
      // Delete a twin created under load (never the original mills: relationships use them).
      std::vector<std::size_t> candidates;
      for (std::size_t i = 0; i < live_twins.size(); ++i) {
        if (o.twins[live_twins[i]].deletable) candidates.push_back(i);
      }
      if (candidates.empty()) continue;
      std::size_t i =
          candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng)];
      std::string id = live_twins[i];
      TwinRec& t = o.twins[id];
      auto res = conn.Send(http::verb::delete_, "/digitaltwins/" + id);
      if (!res) {
        t.presence = Presence::kUnknownDelete;
        return lost("twin delete");
      }
      if (res->status != 204) return rejected("DELETE twin", id, res);
      t.presence = Presence::kAbsent;
      live_twins[i] = live_twins.back();
      live_twins.pop_back();
      ++o.acked;
    } else {
      // The bulk: a counter patch that sets two properties at once.
      std::string id = live_twins[pick(live_twins)];
      TwinRec& t = o.twins[id];
      std::int64_t n = t.next++;
      auto res = conn.Send(http::verb::patch, "/digitaltwins/" + id, CounterPatch(t, n));
      if (!res) {
        t.pending = n;
        return lost("counter patch");
      }
      if (res->status != 204 || res->etag.empty()) return rejected("PATCH twin", id, res);
      t.durable = n;
      t.etag = res->etag;
      o.etags.push_back(res->etag);
      ++o.acked;
    }
  }
}

// Collects failures; reports the first few with one ADD_FAILURE.
struct Problems {
  std::vector<std::string> list;
  void Add(std::string s) { list.push_back(std::move(s)); }
  bool empty() const { return list.empty(); }
  void Report(const std::string& context) const {
    if (list.empty()) return;
    std::string msg = context + ": " + std::to_string(list.size()) + " problem(s):";
    for (std::size_t i = 0; i < list.size() && i < 25; ++i) msg += "\n  " + list[i];
    ADD_FAILURE() << msg;
  }
};

struct VerifyStats {
  std::size_t twins_present = 0, rels_present = 0, unknown = 0, unknown_applied = 0;
  std::int64_t count = -1;
};

// Verifies the restarted server against the owners' records and resolves unknowns.
VerifyStats Verify(std::uint16_t port, std::vector<Owner>& owners,
                   std::unordered_set<std::string>& seen, Problems& p) {
  VerifyStats st;
  HttpConn conn(port);
  // Models survive.
  auto models = conn.Send(http::verb::get, "/models");
  if (!models || models->status != 200) {
    p.Add("GET /models: " + Describe(models));
  } else if (auto v = ParseBody(*models)) {
    std::set<std::string> ids;
    for (const auto& m : v->at("value").as_array()) ids.emplace(m.at("id").as_string());
    for (const char* id : kModelIds) {
      if (!ids.contains(id)) p.Add(std::string("model ") + id + " is missing after the restart");
    }
  }

  // COUNT() within the unknown window (before resolving anything).
  std::int64_t lower = 0, upper = 0;
  for (const auto& o : owners) {
    for (const auto& [id, t] : o.twins) {
      if (t.presence == Presence::kPresent) ++lower, ++upper;
      if (t.presence == Presence::kUnknownCreate || t.presence == Presence::kUnknownDelete) ++upper;
    }
  }
  auto count_query = [&]() -> std::int64_t {
    auto r =
        conn.Send(http::verb::post, "/query",
                  json::serialize(json::object{{"query", "SELECT COUNT() FROM DIGITALTWINS"}}));
    if (!r || r->status != 200) {
      p.Add("COUNT() query: " + Describe(r));
      return -1;
    }
    auto v = ParseBody(*r);
    const json::value* c = nullptr;
    if (v && v->is_object() && v->at("value").is_array() && !v->at("value").as_array().empty()) {
      c = v->at("value").as_array()[0].as_object().if_contains("COUNT");
    }
    auto n = AsInt(c);
    if (!n) p.Add("COUNT() answer has no count: " + r->body);
    return n.value_or(-1);
  };
  std::int64_t n = count_query();
  if (n >= 0 && (n < lower || n > upper)) {
    p.Add("COUNT() = " + std::to_string(n) + ", expected within [" + std::to_string(lower) + ", " +
          std::to_string(upper) + "]");
  }

  // Every twin.
  std::int64_t exact = 0;
  for (auto& o : owners) {
    for (auto& [id, t] : o.twins) {
      auto r = conn.Send(http::verb::get, "/digitaltwins/" + id);
      if (!r || (r->status != 200 && r->status != 404)) {
        p.Add("GET " + id + ": " + Describe(r));
        continue;
      }
      bool unknown = t.presence == Presence::kUnknownCreate ||
                     t.presence == Presence::kUnknownDelete || t.pending.has_value();
      if (unknown) ++st.unknown;
      bool exists = r->status == 200;
      if (t.presence == Presence::kPresent && !exists) {
        p.Add("acknowledged twin " + id + " is gone after the restart");
      }
      if (t.presence == Presence::kAbsent && exists) {
        p.Add("twin " + id + " whose delete was acknowledged (or never created) exists");
      }
      if ((t.presence == Presence::kUnknownCreate && exists) ||
          (t.presence == Presence::kUnknownDelete && !exists)) {
        ++st.unknown_applied;
      }
      if (!exists) {
        t.presence = Presence::kAbsent;
        t.pending.reset();
        continue;
      }
      auto v = ParseBody(*r);
      if (!v || !v->is_object()) {
        p.Add("GET " + id + " is not a JSON object: " + r->body);
        continue;
      }
      const json::object& doc = v->as_object();
      const json::value* meta = doc.if_contains("$metadata");
      const json::value* model =
          meta && meta->is_object() ? meta->as_object().if_contains("$model") : nullptr;
      if (!model || !model->is_string() || model->as_string() != t.model) {
        p.Add("twin " + id + " has the wrong $model: " + r->body.substr(0, 200));
      }
      auto value = AsInt(doc.if_contains(t.counter_prop()));
      const json::value* derived = doc.if_contains(t.derived_prop());
      if (!value) {
        p.Add("twin " + id + " lacks a numeric " + t.counter_prop() + ": " +
              r->body.substr(0, 300));
        continue;
      }
      if (!derived || !derived->is_string() || derived->as_string() != t.Derived(*value)) {
        p.Add("HALF-APPLIED write on twin " + id + ": " + t.counter_prop() + " = " +
              std::to_string(*value) + " but " + t.derived_prop() + " = " +
              (derived ? json::serialize(*derived) : std::string("(missing)")));
      }
      if (*value == t.durable) {
        if (!t.etag.empty() && r->etag != t.etag) {
          p.Add("twin " + id + " has its acknowledged value " + std::to_string(*value) +
                " but etag " + r->etag + " instead of the acknowledged " + t.etag);
        }
      } else if (t.pending && *value == *t.pending) {
        ++st.unknown_applied;
      } else {
        p.Add("twin " + id + " has " + t.counter_prop() + " = " + std::to_string(*value) +
              "; acknowledged: " + std::to_string(t.durable) +
              (t.pending ? ", in flight at the kill: " + std::to_string(*t.pending) : "") +
              (*value < t.durable ? " — AN ACKNOWLEDGED WRITE WAS LOST" : ""));
      }
      if (r->etag.empty()) {
        p.Add("GET " + id + " has no ETag");
      } else if (r->etag != t.etag) {
        // A version nobody acknowledged (an unknown write that made it): its etag must be new.
        if (seen.contains(r->etag)) {
          p.Add("twin " + id + " carries etag " + r->etag + ", already used by another write");
        }
        seen.insert(r->etag);
      }
      t.presence = Presence::kPresent;
      t.durable = *value;
      t.etag = r->etag;
      t.pending.reset();
      t.next = std::max(t.next, *value + 1);
      ++exact;
    }
  }
  st.twins_present = static_cast<std::size_t>(exact);

  // Relationships: the line's 50 "contains" and every mill's "feeds".
  auto list = [&](const std::string& source) -> std::map<std::string, json::object> {
    std::map<std::string, json::object> out;
    auto r = conn.Send(http::verb::get, "/digitaltwins/" + source + "/relationships");
    if (!r || r->status != 200) {
      p.Add("GET " + source + "/relationships: " + Describe(r));
      return out;
    }
    auto v = ParseBody(*r);
    if (!v) return out;
    for (const auto& rel : v->at("value").as_array()) {
      out.emplace(std::string(rel.at("$relationshipId").as_string()), rel.as_object());
    }
    return out;
  };
  auto contains = list(kLineId);
  if (contains.size() != kMills) {
    p.Add("line-1 has " + std::to_string(contains.size()) + " relationships, expected " +
          std::to_string(kMills));
  }
  std::map<std::string, std::map<std::string, json::object>> on_server;
  for (int i = 0; i < kMills; ++i) on_server[MillId(i)] = list(MillId(i));
  for (auto& o : owners) {
    for (auto& [id, r] : o.rels) {
      auto& server_rels = on_server[r.source];
      auto it = server_rels.find(id);
      bool exists = it != server_rels.end();
      bool unknown =
          r.presence == Presence::kUnknownCreate || r.presence == Presence::kUnknownDelete;
      if (unknown) ++st.unknown;
      if (r.presence == Presence::kPresent && !exists) {
        p.Add("acknowledged relationship " + r.source + "/" + id + " is gone after the restart");
      }
      if (r.presence == Presence::kAbsent && exists) {
        p.Add("relationship " + r.source + "/" + id + " whose delete was acknowledged exists");
      }
      if ((r.presence == Presence::kUnknownCreate && exists) ||
          (r.presence == Presence::kUnknownDelete && !exists)) {
        ++st.unknown_applied;
      }
      if (exists) {
        const json::object& doc = it->second;
        const json::value* target = doc.if_contains("$targetId");
        const json::value* etag = doc.if_contains("$etag");
        if (!target || *target != json::value(r.target)) {
          p.Add("relationship " + id + " has the wrong target: " + json::serialize(doc));
        }
        std::string server_etag = etag && etag->is_string() ? std::string(etag->as_string()) : "";
        if (r.presence == Presence::kPresent || r.presence == Presence::kUnknownDelete) {
          if (server_etag != r.etag) {
            p.Add("relationship " + id + " has etag " + server_etag + ", acknowledged " + r.etag);
          }
        } else if (seen.contains(server_etag)) {
          p.Add("relationship " + id + " carries etag " + server_etag + ", already used");
        } else {
          seen.insert(server_etag);
          r.etag = server_etag;
        }
        server_rels.erase(it);
        r.presence = Presence::kPresent;
        ++st.rels_present;
      } else {
        r.presence = Presence::kAbsent;
      }
    }
  }
  for (const auto& [source, rest] : on_server) {
    for (const auto& [id, doc] : rest) {
      p.Add("relationship " + source + "/" + id +
            " exists but was never written: " + json::serialize(doc));
    }
  }

  // COUNT() again, now exactly.
  st.count = count_query();
  if (st.count >= 0 && st.count != exact) {
    p.Add("COUNT() = " + std::to_string(st.count) + " but " + std::to_string(exact) +
          " twins answer GET");
  }
  return st;
}

// A write after the restart must get an etag never seen before.
void ProbeWrite(std::uint16_t port, Owner& owner0, std::unordered_set<std::string>& seen,
                Problems& p) {
  HttpConn conn(port);
  TwinRec& t = owner0.twins.at(kLineId);
  std::int64_t n = t.next++;
  auto r =
      conn.Send(http::verb::patch, std::string("/digitaltwins/") + kLineId, CounterPatch(t, n));
  if (!r || r->status != 204 || r->etag.empty()) {
    p.Add("probe PATCH after the restart: " + Describe(r));
    return;
  }
  if (seen.contains(r->etag)) {
    p.Add("the first write after the restart got etag " + r->etag +
          ", which an earlier acknowledged write already had (etag reuse)");
  }
  seen.insert(r->etag);
  t.durable = n;
  t.etag = r->etag;
}

std::string LoadModelsBody() {
  fs::path dir = fs::path(DOPPEL_SOURCE_DIR) / "examples" / "models" / "factory";
  std::string body = "[";
  bool first = true;
  for (const char* f : {"asset.json", "thermal_sensor.json", "machine.json", "cnc_mill.json",
                        "production_line.json"}) {
    if (!first) body += ",";
    first = false;
    body += ReadFile(dir / f);
  }
  return body + "]";
}

const char* FsyncFor(int cycle) { return cycle % 4 == 3 ? "interval" : "always"; }

TEST(CrashTest, KillNineUnderLoadLosesNoAcknowledgedWrite) {
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_NE(std::getenv("DOPPEL_BINARY"), nullptr) << "run through ctest (DOPPEL_BINARY)";
  const int cycles = EnvInt("DOPPEL_CRASH_CYCLES", 20);
  const auto seed = static_cast<std::uint64_t>(EnvInt("DOPPEL_CRASH_SEED", 20240611));
  std::printf("[crash] %d cycles, seed %llu (DOPPEL_CRASH_CYCLES / DOPPEL_CRASH_SEED)\n", cycles,
              static_cast<unsigned long long>(seed));
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  ServerProcess server(tmp.path() / "data", tmp.path() / "port", tmp.path() / "server.log");
  std::string err = server.Start(FsyncFor(0));
  ASSERT_EQ(err, "");

  // Setup: models, 50 mills, the line and its 50 "contains" relationships.
  std::vector<Owner> owners(kThreads);
  std::unordered_set<std::string> seen;  // every etag ever acknowledged or observed
  std::vector<std::string> all_mills;
  {
    HttpConn conn(server.port());
    auto r = conn.Send(http::verb::post, "/models", LoadModelsBody());
    ASSERT_TRUE(r && r->status == 201) << "POST /models: " << Describe(r);
    auto put_twin = [&](const std::string& id, const std::string& body) {
      auto res = conn.Send(http::verb::put, "/digitaltwins/" + id, body);
      EXPECT_TRUE(res && res->status == 200 && !res->etag.empty())
          << "PUT " << id << ": " << Describe(res);
      if (res) seen.insert(res->etag);
      return res ? res->etag : std::string();
    };
    TwinRec line;
    line.model = kLine;
    line.is_line = true;
    line.etag = put_twin(
        kLineId, json::serialize(json::object{{"$metadata", json::object{{"$model", kLine}}},
                                              {"name", "line-0"},
                                              {"targetThroughput", 0}}));
    owners[0].twins[kLineId] = line;
    for (int i = 0; i < kMills; ++i) {
      std::string id = MillId(i);
      all_mills.push_back(id);
      TwinRec t;
      t.model = kCnc;
      t.etag = put_twin(id, NewMillBody());
      owners[i % kThreads].twins[id] = t;
      owners[i % kThreads].mills.push_back(id);
      auto rel = conn.Send(
          http::verb::put, std::string("/digitaltwins/") + kLineId + "/relationships/c-" + id,
          json::serialize(
              json::object{{"$relationshipName", "contains"}, {"$targetId", id}, {"position", i}}));
      EXPECT_TRUE(rel && rel->status == 200) << "PUT contains " << id << ": " << Describe(rel);
      if (rel) seen.insert(rel->etag);
    }
    ASSERT_FALSE(::testing::Test::HasFailure()) << "setup failed; server log:\n"
                                                << Tail(server.log_file());
  }

  std::mt19937_64 kill_rng(seed);
  std::uint64_t total_acked = 0, total_unknown = 0;
  std::map<std::string, int> mode_cycles;
  auto started = Clock::now();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const char* mode = FsyncFor(cycle);
    ++mode_cycles[mode];
    int delay_ms = std::uniform_int_distribution<int>(50, 600)(kill_rng);
    for (auto& o : owners) {
      o.etags.clear();
      o.errors.clear();
      o.acked = o.unknown = 0;
    }
    // Load, then SIGKILL at a random moment.
    std::atomic<bool> killed{false};
    {
      std::vector<std::jthread> clients;
      for (int i = 0; i < kThreads; ++i) {
        clients.emplace_back(
            [&, i] { RunLoad(owners[i], i, cycle, server.port(), seed, all_mills, killed); });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      killed.store(true);
      server.Kill(SIGKILL);
      server.Reap();
    }  // joins the clients: each stops at its first connection error
    Problems problems;
    std::uint64_t acked = 0, unknown = 0;
    for (auto& o : owners) {
      acked += o.acked;
      unknown += o.unknown;
      for (auto& e : o.errors) problems.Add(std::move(e));
      for (const auto& e : o.etags) {
        if (!seen.insert(e).second) problems.Add("etag " + e + " was acknowledged twice");
      }
    }
    total_acked += acked;
    total_unknown += unknown;

    // Restart on the same data directory and verify.
    err = server.Start(FsyncFor(cycle + 1));
    ASSERT_EQ(err, "") << "restart after cycle " << cycle;
    VerifyStats vs = Verify(server.port(), owners, seen, problems);
    ProbeWrite(server.port(), owners[0], seen, problems);
    std::printf(
        "[crash] cycle %2d fsync=%-8s kill@%3dms acked=%-5llu unknown=%llu  verified: "
        "%zu twins (COUNT %lld), %zu feeds, %zu unknown resolved (%zu applied) %s\n",
        cycle, mode, delay_ms, static_cast<unsigned long long>(acked),
        static_cast<unsigned long long>(unknown), vs.twins_present,
        static_cast<long long>(vs.count), vs.rels_present, vs.unknown, vs.unknown_applied,
        problems.empty() ? "OK" : "FAILED");
    std::fflush(stdout);
    problems.Report("cycle " + std::to_string(cycle) + " (fsync " + mode + ", kill after " +
                    std::to_string(delay_ms) + " ms, seed " + std::to_string(seed) + ")");
    if (::testing::Test::HasFailure()) {
      std::printf("[crash] server log tail:\n%s\n", Tail(server.log_file()).c_str());
      break;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf(
      "[crash] %llu acknowledged writes, %llu unknown, %d always / %d interval cycles, "
      "%.1f s\n",
      static_cast<unsigned long long>(total_acked), static_cast<unsigned long long>(total_unknown),
      mode_cycles["always"], mode_cycles["interval"], secs);
  EXPECT_GT(total_acked, 0u) << "no write was ever acknowledged";

  // A clean stop exits 0, and the data still verifies after it.
  int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "SIGTERM: wait status " << status << "; log:\n"
      << Tail(server.log_file());
  if (::testing::Test::HasFailure()) return;
  ASSERT_EQ(server.Start("always"), "");
  Problems problems;
  Verify(server.port(), owners, seen, problems);
  ProbeWrite(server.port(), owners[0], seen, problems);
  problems.Report("after a clean SIGTERM restart");
  status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "second SIGTERM: " << status;
}

// The etag rule in isolation: the newest acknowledged etag belonged to something that was deleted
// afterwards (a relationship), then the server is killed. The first write after the restart must
// not get that etag again (If-Match with a stale etag must never match a different version).
TEST(CrashTest, EtagOfDeletedRelationshipIsNotReusedAfterRestart) {
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_NE(std::getenv("DOPPEL_BINARY"), nullptr) << "run through ctest (DOPPEL_BINARY)";
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  ServerProcess server(tmp.path() / "data", tmp.path() / "port", tmp.path() / "server.log");
  ASSERT_EQ(server.Start("always"), "");
  std::set<std::string> seen;
  {
    HttpConn conn(server.port());
    auto r = conn.Send(http::verb::post, "/models", LoadModelsBody());
    ASSERT_TRUE(r && r->status == 201) << Describe(r);
    for (const char* id : {"a", "b"}) {
      r = conn.Send(http::verb::put, std::string("/digitaltwins/") + id, NewMillBody());
      ASSERT_TRUE(r && r->status == 200) << Describe(r);
      seen.insert(r->etag);
    }
    r = conn.Send(
        http::verb::put, "/digitaltwins/a/relationships/r1",
        json::serialize(json::object{{"$relationshipName", "feeds"}, {"$targetId", "b"}}));
    ASSERT_TRUE(r && r->status == 200) << Describe(r);
    seen.insert(r->etag);
    r = conn.Send(http::verb::delete_, "/digitaltwins/a/relationships/r1");
    ASSERT_TRUE(r && r->status == 204) << Describe(r);
  }
  server.Kill(SIGKILL);
  server.Reap();
  ASSERT_EQ(server.Start("always"), "");
  HttpConn conn(server.port());
  TwinRec a;
  a.model = kCnc;
  auto r = conn.Send(http::verb::patch, "/digitaltwins/a", CounterPatch(a, 1));
  ASSERT_TRUE(r && r->status == 204) << Describe(r);
  std::string all;
  for (const auto& e : seen) all += e + " ";
  EXPECT_FALSE(seen.contains(r->etag))
      << "the first write after the restart got etag " << r->etag
      << ", already acknowledged before the kill (etags seen: " << all << ")";
  int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM: " << status;
}

}  // namespace

// History: line-protocol points acknowledged with 204 survive kill -9, before and after the
// history store's checkpoints (the server checkpoints every 100 ms here), and nothing is stored
// twice. Each client thread owns one twin and writes batches of increasing, microsecond-aligned
// timestamps with value = point number; after each restart every acknowledged point must be in
// the twin's history with its value, and every stored point must be one that was sent. The
// first writer's batches are large enough (10,000 points) to be prepared in two halves on two
// threads: still one write-ahead record, stored whole or not at all. (Its history grows past the
// 32 MB of JSON ParseJson takes by default: the read-back raises the limit.)
TEST(CrashTest, KillNineLosesNoAcknowledgedHistoryPoint) {
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_NE(std::getenv("DOPPEL_BINARY"), nullptr) << "run through ctest (DOPPEL_BINARY)";
  const int cycles = std::max(2, EnvInt("DOPPEL_CRASH_CYCLES", 20) / 4);
  const auto seed = static_cast<std::uint64_t>(EnvInt("DOPPEL_CRASH_SEED", 20240611));
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  ServerProcess server(tmp.path() / "data", tmp.path() / "port", tmp.path() / "server.log");
  ASSERT_EQ(server.Start("always"), "");
  constexpr int kWriters = 3;
  auto batch_of = [](int w) -> std::int64_t { return w == 0 ? 10000 : 200; };
  {
    HttpConn conn(server.port());
    auto r = conn.Send(http::verb::post, "/models", LoadModelsBody());
    ASSERT_TRUE(r && r->status == 201) << "POST /models: " << Describe(r);
    for (int w = 0; w < kWriters; ++w) {
      auto res = conn.Send(http::verb::put, "/digitaltwins/" + MillId(w), NewMillBody());
      ASSERT_TRUE(res && res->status == 200) << Describe(res);
    }
  }
  // Point i of writer w: time base + i µs, value i.
  const std::int64_t base_us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          (std::chrono::system_clock::now() - std::chrono::hours(1)).time_since_epoch())
          .count();
  std::vector<std::int64_t> acked(kWriters, 0), sent(kWriters, 0);  // points [0, n)
  std::mt19937_64 rng(seed);
  std::uint64_t total = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::atomic<bool> stop{false};
    {
      std::vector<std::jthread> clients;
      for (int w = 0; w < kWriters; ++w) {
        clients.emplace_back([&, w] {
          HttpConn conn(server.port());
          while (!stop.load()) {
            std::string body;
            const std::int64_t first = sent[w];
            const std::int64_t batch = batch_of(w);
            for (std::int64_t i = first; i < first + batch; ++i) {
              body += "m,twin=" + MillId(w) + " spindleSpeed=" + std::to_string(i) + " " +
                      std::to_string((base_us + i) * 1000) + "\n";
            }
            sent[w] = first + batch;
            auto r = conn.Send(http::verb::post, "/write", body);
            if (!r) return;  // killed: this batch's fate is unknown
            if (r->status != 204) {
              ADD_FAILURE() << "POST /write: " << Describe(r);
              return;
            }
            acked[w] = first + batch;
          }
        });
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 700)(rng)));
      stop.store(true);
      server.Kill(SIGKILL);
      server.Reap();
    }
    ASSERT_EQ(server.Start(cycle % 2 ? "interval" : "always"), "");
    HttpConn conn(server.port());
    for (int w = 0; w < kWriters; ++w) {
      auto r = conn.Send(http::verb::get, "/digitaltwins/" + MillId(w) +
                                              "/history/spindleSpeed?epoch=us&limit=10000000");
      ASSERT_TRUE(r && r->status == 200) << Describe(r);
      auto v = ParseBody(*r, std::size_t{1} << 30);  // every point so far
      ASSERT_TRUE(v) << r->body.substr(0, 200);
      const auto& points = v->at("points").as_array();
      // Stored: 0..k-1 for some acked <= k <= sent (a batch is one write-ahead record: all or
      // nothing), each once, in order, with its value.
      ASSERT_GE(static_cast<std::int64_t>(points.size()), acked[w])
          << "twin " << MillId(w) << " cycle " << cycle << ": acknowledged points lost";
      ASSERT_LE(static_cast<std::int64_t>(points.size()), sent[w]);
      ASSERT_EQ(static_cast<std::int64_t>(points.size()) % batch_of(w), 0)
          << "a batch was stored in part";
      for (std::size_t i = 0; i < points.size(); ++i) {
        const auto& p = points[i].as_array();
        ASSERT_EQ(p[0].to_number<std::int64_t>(), base_us + static_cast<std::int64_t>(i))
            << MillId(w) << " point " << i;
        ASSERT_EQ(p[1].to_number<double>(), static_cast<double>(i)) << MillId(w) << " point " << i;
      }
      // Continue after what was stored (points sent but not stored are gone for good).
      sent[w] = acked[w] = static_cast<std::int64_t>(points.size());
    }
    std::printf("[crash] history cycle %d: %lld %lld %lld points verified\n", cycle,
                static_cast<long long>(acked[0]), static_cast<long long>(acked[1]),
                static_cast<long long>(acked[2]));
    std::fflush(stdout);
    if (::testing::Test::HasFailure()) {
      std::printf("[crash] server log tail:\n%s\n", Tail(server.log_file()).c_str());
      break;
    }
  }
  for (std::int64_t a : acked) total += static_cast<std::uint64_t>(a);
  EXPECT_GT(total, 0u) << "no history point was ever acknowledged";
}

// MQTT: QoS 1 messages the broker accepted are never lost when doppel is killed (-9) mid-stream
// and restarted. doppel holds a persistent session (a fixed --mqtt-client-id): the broker keeps
// what arrives while doppel is down and redelivers what doppel had received but not yet
// acknowledged (doppel acknowledges a message only after its readings are in history). A publisher
// sends message i (value i, source time base + i µs) to one of three twins' topics in rounds; in
// each round doppel is killed at a random moment and restarted. At the end every message must be
// in its twin's history exactly once (the broker redelivers what doppel stored but had not
// acknowledged when it died; history's drop_duplicates makes that harmless), and nothing else.
TEST(CrashTest, KillNineWithMqttLosesNoAcceptedQos1Message) {
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_NE(std::getenv("DOPPEL_BINARY"), nullptr) << "run through ctest (DOPPEL_BINARY)";
  const int rounds = std::max(2, EnvInt("DOPPEL_CRASH_CYCLES", 20) / 5);
  const auto seed = static_cast<std::uint64_t>(EnvInt("DOPPEL_CRASH_SEED", 20240611));
  doppel::sync::testing::MosquittoProcess broker;
  ASSERT_EQ(broker.Start(), "");
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  ServerProcess server(tmp.path() / "data", tmp.path() / "port", tmp.path() / "server.log");
  server.SetExtraArgs({"--mqtt", "127.0.0.1:" + std::to_string(broker.port()), "--mqtt-client-id",
                       "doppel-crash-test"});
  ASSERT_EQ(server.Start("always"), "");
  constexpr int kTwins = 3, kPerRound = 1500;
  {
    HttpConn conn(server.port());
    auto r = conn.Send(http::verb::post, "/models", LoadModelsBody());
    ASSERT_TRUE(r && r->status == 201) << "POST /models: " << Describe(r);
    for (int w = 0; w < kTwins; ++w) {
      auto res = conn.Send(http::verb::put, "/digitaltwins/" + MillId(w), NewMillBody());
      ASSERT_TRUE(res && res->status == 200) << Describe(res);
    }
    r = conn.Send(http::verb::put, "/mappings/crash",
                  R"({"topic": "crash/{machine}/telemetry", "twin": "{machine}",
                      "fields": [{"pointer": "/v", "element": "spindleSpeed"}],
                      "timestamp": {"pointer": "/us", "format": "unix-us"}, "qos": 1})");
    ASSERT_TRUE(r && r->status == 201) << "PUT /mappings/crash: " << Describe(r);
  }
  doppel::sync::MqttOptions po;
  po.port = broker.port();
  po.client_id = "crash-test-publisher";
  po.persistent_session = false;
  po.max_queued = 60000;
  doppel::sync::MqttClient publisher(po, {});
  ASSERT_TRUE(publisher.Start().ok());
  ASSERT_TRUE(publisher.WaitUntilConnected(std::chrono::seconds(30)).ok());
  const std::int64_t base_us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          (std::chrono::system_clock::now() - std::chrono::hours(1)).time_since_epoch())
          .count();
  std::mt19937_64 rng(seed);
  int next = 0;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> done{false};
    std::jthread publish([&] {
      for (int k = 0; k < kPerRound; ++k, ++next) {
        const std::string topic = "crash/" + MillId(next % kTwins) + "/telemetry";
        const std::string payload =
            "{\"v\": " + std::to_string(next) + ", \"us\": " + std::to_string(base_us + next) + "}";
        auto mid = publisher.Publish(topic, payload, 1);
        if (!mid.ok()) {
          ADD_FAILURE() << "publish " << next << ": " << mid.status().ToString();
          break;
        }
        if (k % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      done.store(true);
    });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 250)(rng)));
    server.Kill(SIGKILL);
    server.Reap();
    publish.join();  // the rest of the round goes to the broker while doppel is down
    ASSERT_TRUE(done.load());
    ASSERT_EQ(server.Start(round % 2 ? "interval" : "always"), "");
  }
  ASSERT_TRUE(publisher.Flush(std::chrono::seconds(60)).ok())
      << "the broker did not acknowledge every publish";
  publisher.Stop();
  // Wait (a guard, not a timing assertion) until every message is in history, then check.
  std::vector<std::multiset<std::int64_t>> stored(kTwins);
  auto give_up = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    std::size_t distinct = 0;
    HttpConn conn(server.port());
    for (int w = 0; w < kTwins; ++w) {
      auto r = conn.Send(http::verb::get, "/digitaltwins/" + MillId(w) +
                                              "/history/spindleSpeed?epoch=us&limit=10000000");
      ASSERT_TRUE(r && r->status == 200) << Describe(r);
      auto v = ParseBody(*r);
      ASSERT_TRUE(v) << r->body.substr(0, 200);
      stored[w].clear();
      for (const auto& p : v->at("points").as_array()) {
        const auto& pt = p.as_array();
        const auto i = static_cast<std::int64_t>(pt[1].to_number<double>());
        ASSERT_EQ(pt[0].to_number<std::int64_t>(), base_us + i) << "value and time disagree";
        ASSERT_EQ(i % kTwins, w) << "message " << i << " in the wrong twin's history";
        stored[w].insert(i);
      }
      distinct += std::set<std::int64_t>(stored[w].begin(), stored[w].end()).size();
    }
    if (distinct == static_cast<std::size_t>(next)) break;
    if (Clock::now() > give_up) {
      std::string missing;
      for (int i = 0, shown = 0; i < next && shown < 20; ++i) {
        if (!stored[i % kTwins].contains(i)) {
          missing += " " + std::to_string(i);
          ++shown;
        }
      }
      FAIL() << distinct << " of " << next << " messages in history; missing:" << missing
             << "\nserver log tail:\n"
             << Tail(server.log_file());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::size_t twice = 0;
  for (const auto& s : stored) twice += s.size();
  // The broker redelivers what doppel stored but had not acknowledged when it died (mosquitto
  // 2.0 keeps hundreds of messages in flight to a client, whatever its Receive Maximum); history
  // drops a reading it already holds, so each message is stored exactly once.
  EXPECT_EQ(twice, static_cast<std::size_t>(next)) << "a redelivered message was stored twice";
  if (::testing::Test::HasFailure()) std::ofstream(tmp.path() / "broker.log") << broker.Log();
  std::printf("[crash] mqtt: %d messages over %d kill -9 rounds, each in history once\n", next,
              rounds);
  int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM: " << status;
}
