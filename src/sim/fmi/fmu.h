// doppel::sim::fmi — imported FMI 2.0 and FMI 3.0 co-simulation units (FMUs).
//
// An FMU is a zip archive: modelDescription.xml (the model: variables, capabilities, default
// experiment) plus one shared library per platform that implements the FMI C API. OpenFmu
// extracts the archive into a private temporary folder, reads the description, loads
// binaries/<platform>/<modelIdentifier>.so (FMI 2: linux64, falling back to x86_64-linux; FMI 3:
// x86_64-linux), resolves the functions and instantiates the FMU. The returned FmuUnit is a
// sim::Unit (kind "fmi2" or "fmi3"):
//
//   auto fmu = OpenFmu("ball.fmu");                 // instantiated
//   fmu->Set(*fmu->Find("e"), 0.7);                 // parameters / start values: fmiSet* now
//   fmu->Initialize(0);                             // setup experiment, enter + exit init mode
//   fmu->Step(t, h); fmu->Get(*fmu->Find("h"));     // fmiDoStep, fmiGet*
//   // destruction: fmiTerminate (if initialized), fmiFreeInstance, dlclose, folder removed
//
// Variables are the model description's scalar variables in document order (FMI 3 arrays,
// Binary and Clock variables and the independent variable are not exposed). Types: Real/Float*
// → kReal; Integer, Int*/UInt*, Enumeration → kInteger (range-checked against the FMI type on
// Set); Boolean → kBoolean; String → kString. Causality: parameter and structuralParameter →
// kParameter; input, output as such; a local variable that is a continuous state → kState; any
// other local or calculatedParameter → kLocal.
//
// Set follows the FMI rules: before Initialize, parameters, inputs and variables with
// initial="exact"/"approx"; after it, inputs and tunable parameters (else SIM_BAD_STATE). Get
// before Initialize answers the value set or the start value (the standard does not allow fmiGet*
// before initialization mode). Only values the caller sets are passed to the FMU: the standard
// requires an FMU to start with its own start values. Step passes noSetFMUStatePriorToCurrentPoint
// = true; an FMU asking to stop (FMI 2: fmi2Discard + fmi2Terminated status, FMI 3:
// terminateSimulation) gives StepOutcome::terminate and time_reached = its last successful time.
// FMI co-simulation reports no event times to the master (FMI 3 event mode is not used), so
// StepOutcome::events is always empty for FMUs.
//
// Error codes (every message says what and where):
//   FMI_FILE_NOT_FOUND, FMI_BAD_ARCHIVE (not a zip, truncated, corrupt), FMI_IO_ERROR,
//   FMI_NO_MODEL_DESCRIPTION, FMI_BAD_MODEL_DESCRIPTION (malformed XML with line/column, missing
//   or invalid attributes), FMI_UNSUPPORTED_VERSION (not 2.0/3.0), FMI_UNSUPPORTED_KIND (model
//   exchange only), FMI_NO_BINARY (names the platforms the FMU has), FMI_LOAD_FAILED (dlopen),
//   FMI_MISSING_SYMBOL (every missing function), FMI_INSTANTIATE_FAILED (NULL instance: usually a
//   GUID / instantiationToken the binary does not accept), FMI_INITIALIZE_FAILED, FMI_CALL_FAILED
//   (a get/set returned an error), FMI_VALUE_OUT_OF_RANGE, SIM_STEP_FAILED (doStep returned
//   Discard without terminating, Error or Fatal; with the FMU's log messages of that call),
//   SIM_UNKNOWN_VARIABLE, SIM_WRONG_TYPE, SIM_BAD_STATE.
// After an Error the instance is only freed; after a Fatal nothing more is called (the standard
// forbids it), so a fatal FMU's memory is left to the process.
//
// An FMU runs in the caller's process: a crashing FMU takes it down. isolated_run.h runs one in a
// child process instead.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/fmi/model_description.h"
#include "sim/unit.h"

namespace doppel::sim::fmi {

// The FMI function the unit is calling and the simulation time, written before every call into
// the FMU (plain data, so that it can live in memory shared with a parent process).
struct CallSite {
  char function[48] = {};
  double time = 0;
};

// One message of the FMU's logger callback.
struct LogMessage {
  std::string status;  // "OK", "Warning", "Discard", "Error", "Fatal", "Pending"
  std::string category;
  std::string message;
};

struct OpenOptions {
  std::string instance_name;  // default: the model identifier
  bool logging_on = false;    // the FMU's debug logging (loggingOn at instantiation)
  bool log_to_spdlog = true;  // also forward messages to spdlog (Warning and worse at warn level)
  // When set, receives every message instead of spdlog (e.g. the CLI prints them on stderr, as
  // spdlog's default logger writes to stdout, where the CSV goes).
  std::function<void(const LogMessage&)> on_log;
  CallSite* call_site = nullptr;  // when set, updated before every FMU call
};

class FmuUnit : public Unit {
 public:
  const ModelDescription& description() const { return description_; }

  // The tolerance and stop time given to the FMU at Initialize. Default: the DefaultExperiment's
  // tolerance, no stop time. REQUIRES: before Initialize.
  virtual void SetExperiment(std::optional<double> tolerance, std::optional<double> stop_time) = 0;

  // Every message the FMU logged so far (the newest 1,000).
  virtual std::vector<LogMessage> log() const = 0;

  // Ends the instance now: fmiTerminate when initialized, then fmiFreeInstance. The destructor
  // does it otherwise. Returns the status of fmiTerminate (FMI_CALL_FAILED on error).
  virtual core::Status Terminate() = 0;

 protected:
  explicit FmuUnit(ModelDescription description) : description_(std::move(description)) {}
  ModelDescription description_;
};

// Opens and instantiates the co-simulation FMU at `path` (codes above).
core::Result<std::unique_ptr<FmuUnit>> OpenFmu(const std::string& path,
                                               const OpenOptions& options = {});

}  // namespace doppel::sim::fmi
