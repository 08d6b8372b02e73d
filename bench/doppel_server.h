// A `doppel serve` child process for benchmarks (header-only): the binary of this build (or
// $DOPPEL_BINARY), `--insecure`, a free port, its own data directory removed afterwards; NDJSON
// import through POST /import, and the ingest counters of GET /ingest/stats. Uses the process
// and HTTP helpers of influx_server.h.
#pragma once

#include <fmt/format.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "bench/influx_server.h"
#include "core/json.h"

namespace doppel::bench {

// A fresh temporary directory (mkdtemp), removed with everything in it.
class ServerDir {
 public:
  ServerDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "doppel-bench-serve-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ServerDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ServerDir(const ServerDir&) = delete;
  ServerDir& operator=(const ServerDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A `doppel serve --insecure` child on a free port with its own data directory.
class DoppelServer {
 public:
  static std::string BinaryPath() {
    const char* env = std::getenv("DOPPEL_BINARY");
    return env != nullptr && *env != '\0' ? env : DOPPEL_BINARY_DEFAULT;
  }
  ~DoppelServer() { Stop(); }

  std::string Start(const std::string& fsync) {
    if (dir_.path().empty()) return "mkdtemp failed";
    const std::string bin = BinaryPath();
    if (::access(bin.c_str(), X_OK) != 0) {
      return bin +
             " is missing or not executable (build the `doppel` target, or set "
             "DOPPEL_BINARY)";
    }
    const std::filesystem::path port_file = dir_.path() / "port";
    pid_ = SpawnChild(
        {bin, "serve", "--data-dir", (dir_.path() / "data").string(), "--listen", "127.0.0.1:0",
         "--port-file", port_file.string(), "--insecure", "--fsync", fsync},
        log_path().string());
    if (pid_ < 0) return std::string("fork: ") + std::strerror(errno);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReapChild(&pid_, false)) {
        return "doppel serve exited during start-up; its log:\n" +
               TailLines(ReadWholeFile(log_path()), 30);
      }
      std::string text = ReadWholeFile(port_file);
      if (!text.empty() && text.back() == '\n') {
        port_ = std::atoi(text.c_str());
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Stop();
    return "doppel serve wrote no port file within 60 s";
  }
  void Stop() { TerminateChild(&pid_, std::chrono::seconds(30)); }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::filesystem::path log_path() const { return dir_.path() / "doppel.log"; }

  // POST /import and wait for the job; empty string if it succeeded.
  std::string Import(const std::string& ndjson) {
    HttpConnection c;
    if (auto e = c.Connect(port_); !e.empty()) return e;
    auto r = c.Send("POST", "/import", ndjson, "application/x-ndjson");
    if (!r.ok(202)) return fmt::format("POST /import: {} {}{}", r.status, r.error, r.body);
    auto job = core::ParseJson(r.body);
    if (!job.ok() || !job->is_object() || !job->as_object().contains("id")) {
      return "POST /import: unexpected answer " + r.body;
    }
    const std::string id(job->at("id").as_string());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto g = c.Send("GET", "/import/" + id);
      if (!g.ok(200)) return fmt::format("GET /import/{}: {} {}{}", id, g.status, g.error, g.body);
      auto v = core::ParseJson(g.body);
      if (!v.ok() || !v->is_object()) return "GET /import: unexpected answer " + g.body;
      const auto& status = v->at("status").as_string();
      if (status == "succeeded") return {};
      if (status != "running") return "import " + std::string(status) + ": " + g.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "the import did not finish within 60 s";
  }

 private:
  ServerDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct IngestCounters {
  std::uint64_t received = 0, applied = 0, duplicates = 0, out_of_order = 0, telemetry = 0,
                superseded = 0, rejected = 0;
  std::string rejected_json, dead_letters;
};

// GET /ingest/stats of the server on `port`; nullopt and *error set when that fails.
inline std::optional<IngestCounters> DoppelIngestStats(int port, std::string* error) {
  HttpConnection c;
  if (auto e = c.Connect(port); !e.empty()) {
    *error = e;
    return std::nullopt;
  }
  auto r = c.Send("GET", "/ingest/stats?limit=3");
  auto v = core::ParseJson(r.ok(200) ? std::string_view(r.body) : std::string_view());
  if (!r.ok(200) || !v.ok() || !v->is_object()) {
    *error = fmt::format("GET /ingest/stats: {} {}{}", r.status, r.error, r.body);
    return std::nullopt;
  }
  const auto& o = v->as_object();
  IngestCounters s;
  auto num = [&](const char* k) { return o.at(k).to_number<std::uint64_t>(); };
  s.received = num("received");
  s.applied = num("applied");
  s.duplicates = num("duplicates");
  s.out_of_order = num("outOfOrder");
  s.telemetry = num("telemetry");
  if (o.contains("superseded")) s.superseded = num("superseded");
  for (const auto& [code, n] : o.at("rejected").as_object()) {
    s.rejected += n.to_number<std::uint64_t>();
  }
  s.rejected_json = boost::json::serialize(o.at("rejected"));
  s.dead_letters = boost::json::serialize(o.at("deadLetters"));
  return s;
}

}  // namespace doppel::bench
