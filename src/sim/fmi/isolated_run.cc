#include "sim/fmi/isolated_run.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "sim/fmi/archive.h"

namespace doppel::sim::fmi {
namespace {

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    case SIGKILL:
      return "SIGKILL";
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGPIPE:
      return "SIGPIPE";
    default:
      return nullptr;
  }
}

void WriteAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// Releases the shared page on every path.
class SharedCallSite {
 public:
  SharedCallSite() {
    void* p =
        mmap(nullptr, sizeof(CallSite), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) site_ = new (p) CallSite();  // placement into the shared page
  }
  SharedCallSite(const SharedCallSite&) = delete;
  SharedCallSite& operator=(const SharedCallSite&) = delete;
  ~SharedCallSite() {
    if (site_ != nullptr) munmap(site_, sizeof(CallSite));
  }
  CallSite* get() const { return site_; }

 private:
  CallSite* site_ = nullptr;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

[[noreturn]] void RunChild(const std::function<core::Status(CallSite*)>& body, CallSite* site,
                           int status_fd) {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
  core::Status status = body(site);
  std::cout.flush();
  std::fflush(nullptr);
  // code NUL message: the parent treats anything shorter as "ended without reporting".
  WriteAll(status_fd, status.code() + '\0' + status.message());
  close(status_fd);
  _exit(status.ok() ? 0 : 1);
}

std::string Where(const CallSite& site) {
  if (site.function[0] == '\0') return "while loading the FMU";
  return fmt::format("in {} at t={}", site.function, site.time);
}

}  // namespace

core::Status RunIsolated(const std::function<core::Status(CallSite*)>& body) {
  SharedCallSite shared;
  if (shared.get() == nullptr) {
    return {"FMI_IO_ERROR", fmt::format("mmap failed: {}", std::strerror(errno))};
  }
  // The child extracts FMUs under a folder the parent owns and removes: a crashed child never
  // runs its own destructors.
  auto scratch = TempDir::Create("doppel-isolated-");
  if (!scratch.ok()) return scratch.status();
  int fds[2];
  if (pipe(fds) != 0) return {"FMI_IO_ERROR", fmt::format("pipe: {}", std::strerror(errno))};
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  std::cout.flush();
  std::fflush(nullptr);  // nothing buffered is written twice
  pid_t pid = fork();
  if (pid < 0) return {"FMI_IO_ERROR", fmt::format("fork: {}", std::strerror(errno))};
  if (pid == 0) {
    read_end.Close();
    setenv("TMPDIR", scratch->path().c_str(), 1);
    RunChild(body, shared.get(), write_end.get());
  }
  write_end.Close();
  std::string report;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(read_end.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buffer, static_cast<std::size_t>(n));
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  const CallSite site = *shared.get();
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    const char* name = SignalName(sig);
    return {"FMI_CRASHED",
            fmt::format("the FMU crashed ({}) {}",
                        name != nullptr ? name : fmt::format("signal {}", sig), Where(site))};
  }
  std::size_t nul = report.find('\0');
  if (nul == std::string::npos) {
    return {"FMI_CRASHED",
            fmt::format("the FMU process exited with code {} without a result {}",
                        WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, Where(site))};
  }
  std::string code = report.substr(0, nul);
  if (code.empty()) return {};
  return {code, report.substr(nul + 1)};
}

}  // namespace doppel::sim::fmi
