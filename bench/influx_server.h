// A real InfluxDB 1.6 server for benchmarks (header-only), plus the small blocking HTTP/1.1
// client the benchmarks use to talk to it and to `doppel serve`.
//
// InfluxServer starts /usr/bin/influxd (or $DOPPEL_INFLUXD; Debian package `influxdb`, installed
// by scripts/bootstrap) as a child process with a generated config in a fresh temporary
// directory: its meta, data and WAL directories live there, HTTP listens on a free port of
// 127.0.0.1 and the RPC service (backup/restore) on another, so it never touches a system
// instance (/var/lib/influxdb, port 8086) that the package may have set up. Reporting, the
// _internal monitor database, continuous queries, the HTTP access log and the query log are off
// (they would only add noise); everything that stores points is at its defaults (the WAL is
// fsynced on every write: wal-fsync-delay 0s).
//
//   InfluxServer influx;
//   if (std::string e = influx.Start(); !e.empty()) fail(e);      // waits for /ping → 204
//   influx.CreateDatabase("bench");
//   influx.Write("bench", "machine,twin=m1 power=11.7 1764169200000000000\n");
//   auto r = influx.Query("bench", "SELECT count(power) FROM machine");   // r.body: JSON
//
// The child gets PR_SET_PDEATHSIG (SIGKILL): if the process that started it dies, so does
// influxd. Linux sends that signal when the *thread* that forked exits, so call Start from a
// thread that lives as long as the server should (the main thread). The destructor stops the
// server (SIGTERM, SIGKILL after 10 s) and removes the directory.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace doppel::bench {

// ---------------------------------------------------------------------------------------------
// Process helpers

// CPU seconds (user + system) that process `pid` has used so far, from /proc/<pid>/stat (clock-
// tick resolution: fine over runs of a second or more). -1 if the process is gone.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  const auto rp = line.rfind(')');  // the command name may contain spaces
  if (rp == std::string::npos) return -1;
  std::istringstream fields(line.substr(rp + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A TCP port of 127.0.0.1 that is free now, below the kernel's ephemeral range (so no outgoing
// connection takes it as its source port in the meantime). 0 if none was found.
inline int FreeLocalPort() {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  std::random_device seed;
  std::mt19937 rng(seed());
  for (int attempt = 0; attempt < 100 && ephemeral_low > kLowest + 100; ++attempt) {
    const int port = std::uniform_int_distribution<int>(kLowest, ephemeral_low - 1)(rng);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return port;
  }
  return 0;
}

// Starts `argv[0]` with `argv`, stdout and stderr appended to `log`, no inherited descriptors
// above 2, PR_SET_PDEATHSIG(SIGKILL), SIGPIPE at its default. Returns the pid, or -1 (errno set).
inline pid_t SpawnChild(const std::vector<std::string>& args, const std::string& log) {
  // Everything the child needs is prepared before fork: between fork and exec it may only make
  // async-signal-safe calls (other threads of the parent may hold locks).
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::signal(SIGPIPE, SIG_DFL);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
  }
  if (::close_range(3, ~0U, 0) != 0) {
    for (int i = 3; i < 65536; ++i) ::close(i);
  }
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// True (and *pid set to -1) if the child has exited.
inline bool ReapChild(pid_t* pid, bool block) {
  if (*pid <= 0) return true;
  int status = 0;
  const pid_t r = ::waitpid(*pid, &status, block ? 0 : WNOHANG);
  if (r == *pid || (r < 0 && errno == ECHILD)) {
    *pid = -1;
    return true;
  }
  return false;
}

// SIGTERM, wait up to `grace`, then SIGKILL. True if it exited on SIGTERM.
inline bool TerminateChild(pid_t* pid, std::chrono::milliseconds grace) {
  if (*pid <= 0) return true;
  ::kill(*pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReapChild(pid, false)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(*pid, SIGKILL);
  ReapChild(pid, true);
  return false;
}

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string TailLines(const std::string& text, int lines) {
  std::size_t pos = text.size();
  for (int i = 0; i <= lines && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct HttpResponse {
  int status = 0;     // 0: transport error (see error)
  std::string body;   // decoded (chunked bodies are reassembled)
  std::string error;  // transport error, empty otherwise
  bool ok(int want) const { return error.empty() && status == want; }
};

// One keep-alive HTTP/1.1 connection to 127.0.0.1:<port>, blocking, one request at a time. The
// request is written as one header block plus the body (no copy of the body); the response is
// read with Beast's parser (Content-Length or chunked). Not thread-safe: one per thread.
class HttpConnection {
 public:
  HttpConnection() : socket_(ioc_) {}

  std::string Connect(int port) {
    boost::system::error_code ec;
    socket_.close(ec);
    buffer_.clear();
    port_ = port;
    socket_.connect(
        {boost::asio::ip::make_address_v4("127.0.0.1"), static_cast<std::uint16_t>(port)}, ec);
    if (ec) return "connect to 127.0.0.1:" + std::to_string(port) + ": " + ec.message();
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
    return {};
  }

  HttpResponse Send(std::string_view method, std::string_view target, std::string_view body = {},
                    std::string_view content_type = "text/plain; charset=utf-8") {
    HttpResponse out;
    header_.clear();
    header_.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1:");
    header_.append(std::to_string(port_)).append("\r\n");
    if (!body.empty() || method == "POST" || method == "PUT") {
      header_.append("Content-Type: ").append(content_type).append("\r\n");
      header_.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    header_.append("\r\n");
    const std::array<boost::asio::const_buffer, 2> bufs = {
        boost::asio::buffer(header_), boost::asio::buffer(body.data(), body.size())};
    boost::system::error_code ec;
    boost::asio::write(socket_, bufs, ec);
    if (ec) {
      out.error = "HTTP write: " + ec.message();
      return out;
    }
    boost::beast::http::response_parser<boost::beast::http::string_body> parser;
    parser.body_limit(1ull << 30);
    boost::beast::http::read(socket_, buffer_, parser, ec);
    if (ec) {
      out.error = "HTTP read: " + ec.message();
      return out;
    }
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    return out;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::string header_;
  int port_ = 0;
};

// Percent-encodes a query parameter value.
inline std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// InfluxServer

class InfluxServer {
 public:
  InfluxServer() = default;
  ~InfluxServer() {
    Stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  InfluxServer(const InfluxServer&) = delete;
  InfluxServer& operator=(const InfluxServer&) = delete;

  // The server binary: $DOPPEL_INFLUXD, else /usr/bin/influxd.
  static std::string BinaryPath() {
    const char* env = std::getenv("DOPPEL_INFLUXD");
    return env != nullptr && *env != '\0' ? env : "/usr/bin/influxd";
  }

  // Starts influxd on free ports and waits (up to 60 s) until GET /ping answers 204. Empty
  // string on success, else what went wrong (with the end of its log).
  std::string Start() {
    if (pid_ > 0) return "influxd is already running";
    const std::string binary = BinaryPath();
    if (::access(binary.c_str(), X_OK) != 0) {
      return "InfluxDB is not installed: " + binary +
             " is missing or not executable. Install the Debian package `influxdb` (1.6; "
             "scripts/bootstrap does) or point DOPPEL_INFLUXD at an influxd 1.x binary.";
    }
    if (dir_.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "doppel-influxd-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        return std::string("mkdtemp: ") + std::strerror(errno);
      }
      dir_ = pattern;
    }
    std::string error;
    for (int attempt = 0; attempt < 5; ++attempt) {
      http_port_ = FreeLocalPort();
      rpc_port_ = FreeLocalPort();
      if (http_port_ == 0 || rpc_port_ == 0 || http_port_ == rpc_port_) {
        error = "found no free TCP port";
        continue;
      }
      error = SpawnAndWait(binary);
      if (error.empty() || Log().find("address already in use") == std::string::npos) break;
    }
    return error;
  }

  // SIGTERM (influxd closes its shards), SIGKILL after 10 s.
  void Stop() { TerminateChild(&pid_, std::chrono::seconds(10)); }

  int http_port() const { return http_port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path LogPath() const { return dir_ / "influxd.log"; }
  std::string Log() const { return ReadWholeFile(LogPath()); }
  double CpuSeconds() const { return pid_ > 0 ? ProcessCpuSeconds(pid_) : -1; }

  // CREATE DATABASE (idempotent in InfluxDB). Empty string on success.
  std::string CreateDatabase(const std::string& db) {
    HttpConnection c;
    if (auto e = c.Connect(http_port_); !e.empty()) return e;
    auto r = c.Send("POST", "/query?q=" + UrlEncode("CREATE DATABASE \"" + db + "\""), {},
                    "application/x-www-form-urlencoded");
    if (!r.ok(200)) return Describe("CREATE DATABASE", r);
    if (r.body.find("\"error\"") != std::string::npos) return "CREATE DATABASE: " + r.body;
    return {};
  }

  // POST /write?db=<db>&precision=<precision> on a new connection; empty string on 204.
  std::string Write(const std::string& db, std::string_view lines,
                    std::string_view precision = "ns") {
    HttpConnection c;
    if (auto e = c.Connect(http_port_); !e.empty()) return e;
    auto r = c.Send("POST", WriteTarget(db, precision), lines);
    return r.ok(204) ? std::string() : Describe("write", r);
  }

  // The request target for line-protocol writes (for clients that keep their own connection).
  static std::string WriteTarget(const std::string& db, std::string_view precision = "ns") {
    return "/write?db=" + UrlEncode(db) + "&precision=" + std::string(precision);
  }

  // The request target of an InfluxQL query (GET /query, epoch=ns so times are integers).
  static std::string QueryTarget(const std::string& db, std::string_view influxql) {
    return "/query?db=" + UrlEncode(db) + "&epoch=ns&q=" + UrlEncode(influxql);
  }

  // Runs an InfluxQL query on a new connection. On success `body` is InfluxDB's JSON
  // ({"results":[{"statement_id":0,"series":[...]}]}); a 200 whose body carries "error" (a bad
  // query) is turned into an error too.
  HttpResponse Query(const std::string& db, std::string_view influxql) {
    HttpConnection c;
    HttpResponse r;
    if (auto e = c.Connect(http_port_); !e.empty()) {
      r.error = e;
      return r;
    }
    r = c.Send("GET", QueryTarget(db, influxql));
    if (r.error.empty() && (r.status != 200 || r.body.find("\"error\"") != std::string::npos)) {
      r.error = Describe("query", r);
    }
    return r;
  }

 private:
  static std::string Describe(const std::string& what, const HttpResponse& r) {
    if (!r.error.empty()) return what + ": " + r.error;
    return what + ": HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 500);
  }

  void WriteConfig() const {
    const std::string d = dir_.string();
    std::ofstream conf(dir_ / "influxd.conf");
    conf << "# generated by bench/influx_server.h\n"
         << "reporting-disabled = true\n"
         << "bind-address = \"127.0.0.1:" << rpc_port_ << "\"\n"
         << "[meta]\n"
         << "  dir = \"" << d << "/meta\"\n"
         << "  logging-enabled = false\n"
         << "[data]\n"
         << "  dir = \"" << d << "/data\"\n"
         << "  wal-dir = \"" << d << "/wal\"\n"
         << "  query-log-enabled = false\n"
         << "[monitor]\n"
         << "  store-enabled = false\n"
         << "[continuous_queries]\n"
         << "  enabled = false\n"
         << "[subscriber]\n"
         << "  enabled = false\n"
         << "[http]\n"
         << "  enabled = true\n"
         << "  bind-address = \"127.0.0.1:" << http_port_ << "\"\n"
         << "  log-enabled = false\n"
         << "  pprof-enabled = false\n"
         << "[logging]\n"
         << "  level = \"warn\"\n"
         << "  suppress-logo = true\n";
  }

  std::string SpawnAndWait(const std::string& binary) {
    WriteConfig();
    {
      std::ofstream(LogPath(), std::ios::app)
          << "=== influx_server.h: starting on 127.0.0.1:" << http_port_ << " ===\n";
    }
    pid_ = SpawnChild({binary, "run", "-config", (dir_ / "influxd.conf").string()},
                      LogPath().string());
    if (pid_ < 0) return std::string("fork: ") + std::strerror(errno);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReapChild(&pid_, false)) {
        return "influxd exited during start-up (port " + std::to_string(http_port_) +
               "); the end of its log:\n" + TailLines(Log(), 30);
      }
      HttpConnection c;
      if (c.Connect(http_port_).empty() && c.Send("GET", "/ping").ok(204)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Stop();
    return "influxd did not answer /ping on 127.0.0.1:" + std::to_string(http_port_) +
           " within 60 s; the end of its log:\n" + TailLines(Log(), 30);
  }

  std::filesystem::path dir_;
  int http_port_ = 0, rpc_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace doppel::bench
