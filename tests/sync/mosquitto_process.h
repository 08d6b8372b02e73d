// A real mosquitto broker as a child process (header-only, no test framework): the part of
// tests/sync/mosquitto_broker.h that benchmarks can use too (bench/sync_bench.cc).
//
// MosquittoProcess starts /usr/sbin/mosquitto (or $DOPPEL_MOSQUITTO) listening on a free port of
// 127.0.0.1, with a generated mosquitto.conf, its persistence database and its log in a fresh
// temporary directory. Stop (SIGTERM: the broker saves its database), Kill (SIGKILL: it saves
// nothing) and Start again reuse the same port and directory, so clients reconnect to "the same
// broker" and persistent sessions survive what the broker saved. Start/Stop/Kill/Restart return
// an empty string on success, else what went wrong (with the broker's log where it helps).
//
//   MosquittoProcess broker;
//   if (std::string error = broker.Start(); !error.empty()) { ... }
//   options.port = broker.port();
//
// The child gets PR_SET_PDEATHSIG, so a crashed parent does not leave a broker behind. The port
// is chosen below the kernel's ephemeral port range, so nothing else takes it while the broker
// is down between Stop and Start. The destructor stops the broker and removes the directory.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace doppel::sync::testing {

class MosquittoProcess {
 public:
  // `extra_config`: lines appended to the generated mosquitto.conf (later lines win).
  explicit MosquittoProcess(std::string extra_config = {})
      : extra_config_(std::move(extra_config)) {}

  ~MosquittoProcess() {
    if (pid_ > 0) (void)Stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  MosquittoProcess(const MosquittoProcess&) = delete;
  MosquittoProcess& operator=(const MosquittoProcess&) = delete;

  // The broker binary: $DOPPEL_MOSQUITTO, else /usr/sbin/mosquitto.
  static std::string BinaryPath() {
    const char* env = std::getenv("DOPPEL_MOSQUITTO");
    return env != nullptr && *env != '\0' ? env : "/usr/sbin/mosquitto";
  }

  // Starts the broker and waits until it accepts TCP connections. The first Start picks a free
  // port (and retries with another if someone takes it first); later ones reuse it.
  std::string Start() {
    if (pid_ > 0) return "the broker is already running";
    const std::string binary = BinaryPath();
    if (::access(binary.c_str(), X_OK) != 0) {
      return "the MQTT broker is not installed: " + binary +
             " is missing or not executable. Install the Debian package `mosquitto` "
             "(scripts/bootstrap does) or point DOPPEL_MOSQUITTO at a mosquitto 2.x binary.";
    }
    if (dir_.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "doppel-mosquitto-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        return std::string("mkdtemp: ") + std::strerror(errno);
      }
      dir_ = pattern;
    }
    const bool fixed_port = port_ != 0;
    for (int attempt = 0; attempt < (fixed_port ? 1 : 5); ++attempt) {
      if (!fixed_port) port_ = FreePort();
      if (port_ == 0) return "found no free TCP port";
      std::string result = SpawnAndWait(binary);
      if (result.empty() || fixed_port ||
          Log().find("Address already in use") == std::string::npos) {
        return result;
      }
    }
    return "no free port after 5 attempts";
  }

  // SIGTERM and wait: the broker writes its persistence database before it exits.
  std::string Stop() {
    if (pid_ <= 0) return {};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
      // mosquitto 2.0 installs its handler and then sets its `run` flag: a SIGTERM that lands
      // in between (right after start-up) is lost. Repeat it until the broker exits.
      if (i % 25 == 0) ::kill(pid_, SIGTERM);
      if (Reap(false)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    Reap(true);
    return "mosquitto did not exit within 20 s of SIGTERM";
  }

  // SIGKILL and wait: nothing since the last autosave is saved.
  std::string Kill() {
    if (pid_ <= 0) return {};
    ::kill(pid_, SIGKILL);
    Reap(true);
    return {};
  }

  std::string Restart() {
    if (std::string stopped = Stop(); !stopped.empty()) return stopped;
    return Start();
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path LogPath() const { return dir_ / "mosquitto.log"; }
  std::filesystem::path DatabasePath() const { return dir_ / "mosquitto.db"; }

  // The broker's log so far (its log file, then what it printed to stdout/stderr).
  std::string Log() const { return ReadFile(LogPath()) + ReadFile(dir_ / "mosquitto.out"); }

  // The last `lines` lines of `text`.
  static std::string Tail(const std::string& text, int lines) {
    std::size_t pos = text.size();
    for (int i = 0; i <= lines && pos > 0; ++i) {
      pos = text.rfind('\n', pos - 1);
      if (pos == std::string::npos) return text;
    }
    return text.substr(pos + 1);
  }

 private:
  static std::string ReadFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // A free port of 127.0.0.1 below the kernel's ephemeral range (ip_local_port_range), so that
  // while the broker is stopped no other process gets it from bind(port 0) and no client's
  // outgoing connection gets it as its source port (a connect to a port without a listener can
  // then connect the socket to itself). Free now; the caller must still cope with losing a race.
  static int FreePort() {
    int ephemeral_low = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
    constexpr int kLowest = 10000;
    std::random_device seed;
    std::mt19937 rng(seed());
    for (int attempt = 0; attempt < 100 && ephemeral_low > kLowest + 100; ++attempt) {
      const int port = std::uniform_int_distribution<int>(kLowest, ephemeral_low - 1)(rng);
      if (CanBind(port)) return port;
    }
    return 0;
  }

  static bool CanBind(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  static bool Accepts(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  void WriteConfig() const {
    std::ofstream conf(dir_ / "mosquitto.conf");
    conf << "# generated by tests/sync/mosquitto_process.h\n"
         << "listener " << port_ << " 127.0.0.1\n"
         << "allow_anonymous true\n"
         << "persistence true\n"
         << "persistence_location " << dir_.string() << "/\n"
         << "persistence_file mosquitto.db\n"
         << "autosave_interval 1\n"
         // The default (1000) would drop messages queued for an offline client in larger tests.
         << "max_queued_messages 100000\n"
         << "log_dest file " << LogPath().string() << "\n"
         << "log_type all\n"
         << "connection_messages true\n";
    // Started as root, mosquitto switches to the user `mosquitto`, which cannot write our
    // temporary directory.
    if (::geteuid() == 0) conf << "user root\n";
    conf << extra_config_ << "\n";
  }

  std::string SpawnAndWait(const std::string& binary) {
    WriteConfig();
    // Everything the child needs is prepared before fork: between fork and exec it may only make
    // async-signal-safe calls (other threads of the parent may hold locks).
    const std::string conf = (dir_ / "mosquitto.conf").string();
    const std::string out = (dir_ / "mosquitto.out").string();
    std::vector<char*> argv = {const_cast<char*>(binary.c_str()), const_cast<char*>("-c"),
                               const_cast<char*>(conf.c_str()), nullptr};
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      // No inherited descriptors: a copy of a client's socket in the broker would keep that
      // connection open after the client closes it.
      if (::close_range(3, ~0U, 0) != 0) {
        for (int i = 3; i < 65536; ++i) ::close(i);
      }
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Reap(false)) {
        return "mosquitto exited during start-up (port " + std::to_string(port_) + "); its log:\n" +
               Log();
      }
      if (Accepts(port_)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (void)Kill();
    return "mosquitto did not accept connections on 127.0.0.1:" + std::to_string(port_) +
           " within 20 s; its log:\n" + Log();
  }

  // True (and pid_ cleared) if the child has exited.
  bool Reap(bool block) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  std::string extra_config_;
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace doppel::sync::testing
