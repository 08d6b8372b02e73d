// A real mosquitto broker for tests (header-only).
//
// MosquittoBroker starts /usr/sbin/mosquitto (or $DOPPEL_MOSQUITTO) as a child process listening
// on a free port of 127.0.0.1, with a generated mosquitto.conf, its persistence database and its
// log in a fresh temporary directory. Stop (SIGTERM: the broker saves its database), Kill
// (SIGKILL: it saves nothing) and Start again reuse the same port and directory, so clients
// reconnect to "the same broker" and persistent sessions survive what the broker saved.
//
//   MosquittoBroker broker;
//   ASSERT_TRUE(broker.Start());        // fails the test, with the broker's log, if it cannot
//   options.port = broker.port();
//   ASSERT_TRUE(broker.Restart());      // Stop + Start
//
// A missing broker binary FAILS the test with instructions; it is never skipped (CI installs it
// through scripts/bootstrap). If the test fails, the destructor prints the end of the broker log.
// The child gets PR_SET_PDEATHSIG, so a crashed test does not leave a broker behind. The port is
// chosen below the kernel's ephemeral port range, so nothing else takes it while the broker is
// down between Stop and Start.
//
// The process handling is MosquittoProcess (mosquitto_process.h, no gtest), which the benchmarks
// use too; this class turns its results into gtest assertions.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "mosquitto_process.h"

namespace doppel::sync::testing {

class MosquittoBroker {
 public:
  // `extra_config`: lines appended to the generated mosquitto.conf (later lines win).
  explicit MosquittoBroker(std::string extra_config = {}) : process_(std::move(extra_config)) {}

  // Prints the end of the log if the test failed; then process_'s destructor stops the broker
  // and removes its directory.
  ~MosquittoBroker() {
    if (::testing::Test::HasFailure() && !process_.dir().empty()) {
      std::cerr << "---- end of the mosquitto log (" << LogPath().string() << ") ----\n"
                << MosquittoProcess::Tail(Log(), 80) << "---- end ----\n";
    }
  }

  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  // The broker binary: $DOPPEL_MOSQUITTO, else /usr/sbin/mosquitto.
  static std::string BinaryPath() { return MosquittoProcess::BinaryPath(); }

  // Starts the broker and waits until it accepts TCP connections. The first Start picks a free
  // port (and retries with another if someone takes it first); later ones reuse it.
  ::testing::AssertionResult Start() { return Assert(process_.Start()); }

  // SIGTERM and wait: the broker writes its persistence database before it exits.
  ::testing::AssertionResult Stop() { return Assert(process_.Stop()); }

  // SIGKILL and wait: nothing since the last autosave is saved.
  ::testing::AssertionResult Kill() { return Assert(process_.Kill()); }

  ::testing::AssertionResult Restart() { return Assert(process_.Restart()); }

  int port() const { return process_.port(); }
  bool running() const { return process_.running(); }
  const std::filesystem::path& dir() const { return process_.dir(); }
  std::filesystem::path LogPath() const { return process_.LogPath(); }
  std::filesystem::path DatabasePath() const { return process_.DatabasePath(); }

  // The broker's log so far (its log file, then what it printed to stdout/stderr).
  std::string Log() const { return process_.Log(); }

 private:
  static ::testing::AssertionResult Assert(const std::string& error) {
    if (error.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << error;
  }

  MosquittoProcess process_;
};

}  // namespace doppel::sync::testing
