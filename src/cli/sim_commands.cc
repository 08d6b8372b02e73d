// `doppel sim fmu`: runs a co-simulation FMU over an experiment and writes its outputs as CSV.
//
// The FMU runs in a child process (sim/fmi/isolated_run.h): an FMU that crashes becomes
// "error: FMI_CRASHED: the FMU crashed (SIGSEGV) in fmi2DoStep at t=…" and exit code 1, never a
// crash of doppel. The child writes the CSV itself (stdout or --out); a failed run removes a
// partial --out file.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/progress.h"
#include "sim/fmi/experiment.h"
#include "sim/fmi/fmu.h"
#include "sim/fmi/isolated_run.h"

namespace doppel::cli {
namespace {

namespace fmi = sim::fmi;

struct FmuArgs {
  std::string file;
  std::optional<double> stop;
  std::optional<double> step;
  std::vector<std::string> starts;
  std::string out;
};

core::Status RunFmu(const FmuArgs& args, fmi::CallSite* site) {
  fmi::ExperimentOptions options;
  options.stop_time = args.stop;
  options.step_size = args.step;
  for (const auto& s : args.starts) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return {"SIM_BAD_ARGUMENT", fmt::format("--start '{}': expected name=value", s)};
    }
    options.start_values.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  fmi::OpenOptions open;
  open.call_site = site;
  open.on_log = [](const fmi::LogMessage& m) {
    std::cerr << "fmu [" << m.status << "] " << m.category << ": " << m.message << '\n';
  };
  auto fmu = fmi::OpenFmu(args.file, open);
  if (!fmu.ok()) return fmu.status();

  std::ofstream file;
  if (!args.out.empty()) {
    file.open(args.out, std::ios::binary | std::ios::trunc);
    if (!file) return {"FMI_IO_ERROR", fmt::format("cannot write {}", args.out)};
  }
  std::ostream& out = args.out.empty() ? std::cout : file;
  const std::vector<std::size_t> columns = fmi::OutputIndices(**fmu);
  out << fmi::CsvHeader(**fmu, columns) << '\n';
  Progress progress("simulating");
  options.progress = [&](std::size_t done, std::size_t total) { progress.Update(done, total); };
  core::Status status = fmi::RunExperiment(
      **fmu, options, [&](double t, const std::vector<sim::Value>& values) -> core::Status {
        out << fmi::CsvRow(t, values) << '\n';
        if (!out) return {"FMI_IO_ERROR", "writing the CSV failed"};
        return {};
      });
  progress.Finish();
  out.flush();
  if (status.ok() && !out) return {"FMI_IO_ERROR", "writing the CSV failed"};
  return status;
}

int RunFmuCommand(const FmuArgs& args) {
  core::Status status = fmi::RunIsolated([&](fmi::CallSite* site) { return RunFmu(args, site); });
  if (status.ok()) return 0;
  if (!args.out.empty()) {
    std::error_code ec;
    std::filesystem::remove(args.out, ec);
  }
  std::cerr << "error: " << status.code() << ": " << status.message() << '\n';
  return 1;
}

}  // namespace

void AddSimCommands(CLI::App& app, int* exit_code) {
  auto* sim = app.add_subcommand("sim", "Run simulation units");
  sim->require_subcommand(1);
  auto args = std::make_shared<FmuArgs>();
  auto* fmu = sim->add_subcommand(
      "fmu",
      "Run an FMI 2.0 / 3.0 co-simulation FMU over its default experiment (or the given one) and "
      "write time and every output variable as CSV");
  fmu->add_option("file", args->file, "the .fmu file")->required();
  fmu->add_option("--stop", args->stop, "stop time (default: the FMU's DefaultExperiment)");
  fmu->add_option("--step", args->step,
                  "communication step size (default: the FMU's DefaultExperiment stepSize)");
  fmu->add_option("--start", args->starts,
                  "name=value: a parameter or start value, set before initialization "
                  "(repeatable)");
  fmu->add_option("--out", args->out, "CSV file to write (default: stdout)");
  fmu->callback([args, exit_code] { *exit_code = RunFmuCommand(*args); });
}

}  // namespace doppel::cli
