// `doppel plant`: the virtual plant (plant/plant.h) until SIGINT/SIGTERM or --duration.
#include <fmt/format.h>
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>

#include "cli/commands.h"
#include "plant/plant.h"

namespace doppel::cli {
namespace {

using Steady = std::chrono::steady_clock;

struct PlantArgs {
  std::string broker = "127.0.0.1:1883";
  std::string line = "line-1";
  int machines = 4;
  double rate = 1.0;
  std::uint64_t seed = 42;
  double duration = 0;
  double fault_rate = 0.001;
  double missing_rate = 0.01;
  std::string id_prefix = "machine-";
  bool quiet = false;
};

// "host:port", "host" (port 1883) or "[v6]:port". False if the port is not 1..65535.
bool ParseBroker(const std::string& broker, std::string* host, int* port) {
  std::string_view s = broker;
  *port = 1883;
  std::size_t colon = s.rfind(':');
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    colon = close + 1 < s.size() && s[close + 1] == ':' ? close + 1 : std::string_view::npos;
    *host = std::string(s.substr(1, close - 1));
  } else {
    *host = std::string(s.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    std::string_view digits = s.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *port);
    if (ec != std::errc() || end != digits.data() + digits.size()) return false;
  }
  return !host->empty() && *port >= 1 && *port <= 65535;
}

// Waits for SIGINT/SIGTERM (blocked by the caller) until `deadline`. The signal, or 0.
int WaitForSignal(const sigset_t& signals, Steady::time_point deadline) {
  for (;;) {
    const auto left = std::max(Steady::duration::zero(), deadline - Steady::now());
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{static_cast<std::time_t>(ns / 1'000'000'000),
                     static_cast<long>(ns % 1'000'000'000)};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig > 0) return sig;
    if (errno != EINTR) return 0;  // EAGAIN: the deadline passed
  }
}

int RunPlant(const PlantArgs& a) {
  plant::PlantOptions options;
  if (!ParseBroker(a.broker, &options.host, &options.port)) {
    fmt::print(stderr, "--broker must be host:port (port 1..65535), got '{}'\n", a.broker);
    return 2;
  }
  options.line = a.line;
  options.rate = a.rate;
  options.simulator.machines = a.machines;
  options.simulator.seed = a.seed;
  options.simulator.fault_rate = a.fault_rate;
  options.simulator.missing_rate = a.missing_rate;
  options.simulator.id_prefix = a.id_prefix;

  // Block the termination signals in every thread (the client's and the timer's inherit the
  // mask); the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  plant::Plant plant(options);
  if (core::Status s = plant.Start(); !s.ok()) {
    fmt::print(stderr, "{}\n", s.ToString());
    return s.code() == "PLANT_BAD_OPTIONS" || s.code() == "MQTT_BAD_OPTIONS" ? 2 : 1;
  }
  if (!a.quiet) {
    fmt::print(stderr,
               "doppel plant: {} machines ({}1..{}{}) on {}, {}/s each, broker {}:{}; telemetry "
               "on plant/{}/+/telemetry\n",
               a.machines, a.id_prefix, a.id_prefix, a.machines, a.line, a.rate, options.host,
               options.port, a.line);
  }
  const auto start = Steady::now();
  const auto deadline =
      a.duration > 0
          ? start + std::chrono::duration_cast<Steady::duration>(
                        std::chrono::duration<double>(a.duration))
          : Steady::time_point::max();
  constexpr auto kStatusEvery = std::chrono::seconds(5);
  auto next_status = start + kStatusEvery;
  auto print_status = [&](bool final) {
    const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
    const plant::PlantStats stats = plant.stats();
    std::string state = final ? "stopped" : stats.connected ? "connected" : "NOT CONNECTED";
    if (!final && !stats.connected && !stats.connection_error.ok()) {
      state += " (" + stats.connection_error.ToString() + ")";
    }
    fmt::print(stderr, "plant {} [{:.1f} s] {} | {}\n", a.line, seconds, state,
               plant::FormatStats(stats));
  };
  for (;;) {
    const int sig = WaitForSignal(signals, std::min(deadline, next_status));
    if (sig != 0) {
      if (!a.quiet) fmt::print(stderr, "doppel plant: stopping (signal {})\n", sig);
      break;
    }
    const auto now = Steady::now();
    if (now >= deadline) break;
    if (now >= next_status) {
      if (!a.quiet) print_status(false);
      while (next_status <= now) next_status += kStatusEvery;
    }
  }
  // Wait for the broker to acknowledge what was published; not long when it is not connected
  // (then nothing is likely to be acknowledged soon).
  const plant::PlantStats before = plant.stats();
  const auto flush_timeout = before.connected ? std::chrono::seconds(10) : std::chrono::seconds(1);
  if (!a.quiet && before.mqtt.queued > 0) {
    fmt::print(stderr, "doppel plant: waiting for {} unacknowledged publishes (up to {} s)\n",
               before.mqtt.queued, flush_timeout.count());
  }
  core::Status flushed = plant.Stop(flush_timeout);
  if (!a.quiet) print_status(true);
  if (!flushed.ok()) {
    fmt::print(stderr, "doppel plant: {} (unacknowledged messages were dropped)\n",
               flushed.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

void AddPlantCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "plant", "Simulate a production line over MQTT: telemetry, commands, desired values");
  auto a = std::make_shared<PlantArgs>();
  cmd->add_option("--broker", a->broker, "MQTT broker host:port")->capture_default_str();
  cmd->add_option("--line", a->line, "Line id: topics plant/<line>/<machine>/...")
      ->capture_default_str();
  cmd->add_option("--machines", a->machines, "Number of machines")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--rate", a->rate,
                  "Telemetry messages per second per machine (fractions allowed, e.g. 0.2)")
      ->check(CLI::Range(1e-6, 100000.0))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (same seed, same simulation)")
      ->capture_default_str();
  cmd->add_option("--duration", a->duration, "Stop after this many seconds (0: until Ctrl-C)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--fault-rate", a->fault_rate,
                  "Probability of a fault per running machine per tick")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--missing-rate", a->missing_rate,
                  "Probability that a tick publishes nothing (and, separately, that one field is "
                  "left out)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--id-prefix", a->id_prefix, "Machine ids: <prefix>1..<prefix>N")
      ->capture_default_str();
  cmd->add_flag("--quiet", a->quiet, "No status lines on stderr");
  cmd->callback([=] { *exit_code = RunPlant(*a); });
}

}  // namespace doppel::cli
