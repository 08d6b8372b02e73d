// The FMI 2 and FMI 3 co-simulation units behind OpenFmu (fmu.h).
//
// Both versions share one base (CommonUnit): variable table, the Set/Get rules, the log, the
// life-cycle state. Each version adds only its calls. Members are declared so that destruction
// runs in the only safe order: the instance is freed (in the destructor body), then the library
// is closed, then the extracted folder removed.
#include "sim/fmi/fmu.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "sim/fmi/archive.h"
#include "sim/fmi/fmi2_api.h"
#include "sim/fmi/fmi3_api.h"
#include "sim/fmi/shared_library.h"

namespace doppel::sim::fmi {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxLog = 1000;

// Collects the FMU's log messages; the FMI callbacks get a pointer to it.
class LogSink {
 public:
  LogSink(std::string instance, bool forward, std::function<void(const LogMessage&)> on_log)
      : instance_(std::move(instance)), forward_(forward), on_log_(std::move(on_log)) {}

  void Add(std::string status, const char* category, const char* message) {
    LogMessage m{std::move(status), category != nullptr ? category : "",
                 message != nullptr ? message : ""};
    if (on_log_) {
      on_log_(m);
    } else if (forward_) {
      bool bad = m.status != "OK" && m.status != "Pending";
      spdlog::log(bad ? spdlog::level::warn : spdlog::level::debug, "fmu {} [{}] {}: {}", instance_,
                  m.status, m.category, m.message);
    }
    if (messages_.size() == kMaxLog) messages_.pop_front();
    messages_.push_back(std::move(m));
    ++count_;
  }
  std::size_t count() const { return count_; }
  std::vector<LogMessage> All() const { return {messages_.begin(), messages_.end()}; }
  // The messages logged since count() was `since`, joined for an error message.
  std::string Since(std::size_t since) const {
    std::size_t n = std::min<std::size_t>(count_ - since, messages_.size());
    std::string out;
    for (std::size_t i = messages_.size() - n; i < messages_.size(); ++i) {
      if (!out.empty()) out += "; ";
      out += messages_[i].message;
    }
    return out;
  }

 private:
  std::string instance_;
  bool forward_;
  std::function<void(const LogMessage&)> on_log_;
  std::deque<LogMessage> messages_;
  std::size_t count_ = 0;
};

const char* Fmi2StatusName(fmi2Status s) {
  switch (s) {
    case fmi2OK:
      return "OK";
    case fmi2Warning:
      return "Warning";
    case fmi2Discard:
      return "Discard";
    case fmi2Error:
      return "Error";
    case fmi2Fatal:
      return "Fatal";
    case fmi2Pending:
      return "Pending";
  }
  return "?";
}

const char* Fmi3StatusName(fmi3Status s) {
  switch (s) {
    case fmi3OK:
      return "OK";
    case fmi3Warning:
      return "Warning";
    case fmi3Discard:
      return "Discard";
    case fmi3Error:
      return "Error";
    case fmi3Fatal:
      return "Fatal";
  }
  return "?";
}

// FMI 2's logger: `message` is a printf format.
void Fmi2Logger(fmi2ComponentEnvironment env, fmi2String /*instance*/, fmi2Status status,
                fmi2String category, fmi2String message, ...) {
  if (env == nullptr) return;
  std::string text;
  if (message != nullptr) {
    // Measure, then format: va_start twice rather than va_copy. clang-analyzer (LLVM 14) still
    // reports the va_list as uninitialized after va_start: a false positive of its valist
    // checker on C++ variadic functions.
    // NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
    va_list args;
    va_start(args, message);
    int n = std::vsnprintf(nullptr, 0, message, args);
    va_end(args);
    if (n > 0) {
      text.resize(static_cast<std::size_t>(n) + 1);
      va_start(args, message);
      std::vsnprintf(text.data(), text.size(), message, args);
      va_end(args);
      // NOLINTEND(clang-analyzer-valist.Uninitialized)
      text.resize(static_cast<std::size_t>(n));
    }
  }
  static_cast<LogSink*>(env)->Add(Fmi2StatusName(status), category, text.c_str());
}

void* Fmi2Allocate(std::size_t n, std::size_t size) { return std::calloc(n, size); }
void Fmi2Free(void* p) { std::free(p); }  // NOLINT(cppcoreguidelines-no-malloc)

void Fmi3Logger(fmi3InstanceEnvironment env, fmi3Status status, fmi3String category,
                fmi3String message) {
  if (env == nullptr) return;
  static_cast<LogSink*>(env)->Add(Fmi3StatusName(status), category, message);
}

ValueType ToValueType(FmiType t) {
  switch (t) {
    case FmiType::kFloat32:
    case FmiType::kFloat64:
      return ValueType::kReal;
    case FmiType::kBoolean:
      return ValueType::kBoolean;
    case FmiType::kString:
      return ValueType::kString;
    default:
      return ValueType::kInteger;
  }
}

Causality ToCausality(const ModelVariable& v) {
  if (v.causality == "parameter" || v.causality == "structuralParameter") {
    return Causality::kParameter;
  }
  if (v.causality == "input") return Causality::kInput;
  if (v.causality == "output") return Causality::kOutput;
  if (v.causality == "local" && v.is_state) return Causality::kState;
  return Causality::kLocal;
}

const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kReal:
      return "real";
    case ValueType::kInteger:
      return "integer";
    case ValueType::kBoolean:
      return "boolean";
    case ValueType::kString:
      return "string";
  }
  return "?";
}

// The range of an FMI integer type.
std::pair<std::int64_t, std::int64_t> IntegerRange(FmiType t) {
  switch (t) {
    case FmiType::kInt8:
      return {INT8_MIN, INT8_MAX};
    case FmiType::kUInt8:
      return {0, UINT8_MAX};
    case FmiType::kInt16:
      return {INT16_MIN, INT16_MAX};
    case FmiType::kUInt16:
      return {0, UINT16_MAX};
    case FmiType::kInt32:
      return {INT32_MIN, INT32_MAX};
    case FmiType::kUInt32:
      return {0, UINT32_MAX};
    case FmiType::kUInt64:
      return {0, INT64_MAX};
    default:
      return {INT64_MIN, INT64_MAX};
  }
}

enum class LifeCycle {
  kInstantiated,
  kInitialized,
  kTerminateRequested,
  kTerminated,
  kError,
  kFatal,
  kFreed
};

// What the two versions share. `Derived` calls: the version-specific Read/Write/Init/DoStep.
class CommonUnit : public FmuUnit {
 public:
  CommonUnit(ModelDescription md, TempDir dir, SharedLibrary library, const OpenOptions& options)
      : FmuUnit(std::move(md)),
        dir_(std::move(dir)),
        library_(std::move(library)),
        log_(options.instance_name.empty() ? description_.co_simulation->model_identifier
                                           : options.instance_name,
             options.log_to_spdlog, options.on_log),
        call_site_(options.call_site) {
    instance_name_ = options.instance_name.empty() ? description_.co_simulation->model_identifier
                                                   : options.instance_name;
    tolerance_ = description_.experiment.tolerance;
    for (const auto& mv : description_.variables) {
      variables_.push_back(Variable{mv.name, ToCausality(mv), ToValueType(mv.type), mv.start,
                                    mv.unit, mv.description});
    }
    pending_.resize(variables_.size());
  }

  const std::vector<Variable>& variables() const override { return variables_; }

  void SetExperiment(std::optional<double> tolerance, std::optional<double> stop_time) override {
    tolerance_ = tolerance;
    stop_time_ = stop_time;
  }

  std::vector<LogMessage> log() const override { return log_.All(); }

  core::Status Set(std::size_t index, const Value& value) override {
    if (index >= variables_.size()) return UnknownIndex(index);
    const ModelVariable& mv = description_.variables[index];
    const Variable& var = variables_[index];
    if (static_cast<ValueType>(value.index()) != var.type) {
      return {"SIM_WRONG_TYPE",
              fmt::format("variable '{}' is {} ({}), the value given is {}", var.name,
                          ValueTypeName(var.type), FmiTypeName(mv.type, description_.version),
                          ValueTypeName(static_cast<ValueType>(value.index())))};
    }
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
      auto [lo, hi] = IntegerRange(mv.type);
      if (*i < lo || *i > hi) {
        return {"FMI_VALUE_OUT_OF_RANGE",
                fmt::format("{} is out of range for variable '{}' ({}: {}..{})", *i, var.name,
                            FmiTypeName(mv.type, description_.version), lo, hi)};
      }
    }
    if (mv.variability == "constant") {
      return {"SIM_BAD_STATE", fmt::format("variable '{}' is a constant", var.name)};
    }
    const bool input_or_parameter = mv.causality == "input" || mv.causality == "parameter" ||
                                    mv.causality == "structuralParameter";
    if (state_ == LifeCycle::kInstantiated) {
      if (!input_or_parameter && mv.initial != "exact" && mv.initial != "approx") {
        return {"SIM_BAD_STATE",
                fmt::format("variable '{}' ({}) has no settable start value (initial=\"{}\")",
                            var.name, mv.causality, mv.initial)};
      }
    } else if (state_ == LifeCycle::kInitialized) {
      if (!(mv.causality == "input" || (input_or_parameter && mv.variability == "tunable"))) {
        return {"SIM_BAD_STATE",
                fmt::format("variable '{}' ({}, {}) cannot be set after Initialize; only inputs "
                            "and tunable parameters can",
                            var.name, mv.causality, mv.variability)};
      }
    } else {
      return BadState("Set");
    }
    std::size_t before = log_.count();
    if (auto s = Write(mv, value); !s.ok()) return WithLog(std::move(s), before);
    if (state_ == LifeCycle::kInstantiated) pending_[index] = value;
    return {};
  }

  core::Result<Value> Get(std::size_t index) const override {
    if (index >= variables_.size()) return UnknownIndex(index);
    const ModelVariable& mv = description_.variables[index];
    if (state_ == LifeCycle::kInstantiated) {
      if (pending_[index]) return *pending_[index];
      if (mv.start) return *mv.start;
      return core::Status("SIM_BAD_STATE",
                          fmt::format("variable '{}' has no start value; its value is known "
                                      "after Initialize",
                                      mv.name));
    }
    if (state_ != LifeCycle::kInitialized && state_ != LifeCycle::kTerminateRequested) {
      return BadState("Get");
    }
    std::size_t before = log_.count();
    auto v = Read(mv);
    if (!v.ok()) return WithLog(v.status(), before);
    return v;
  }

  core::Status Initialize(double t0) override {
    if (state_ != LifeCycle::kInstantiated) return BadState("Initialize");
    time_ = t0;
    std::size_t before = log_.count();
    core::Status s = EnterAndExitInitialization(t0);
    if (!s.ok()) return WithLog(std::move(s), before);
    state_ = LifeCycle::kInitialized;
    return {};
  }

  core::Result<StepOutcome> Step(double t, double dt) override {
    if (state_ != LifeCycle::kInitialized) return BadState("Step");
    if (!(dt > 0)) {
      return core::Status("SIM_BAD_STATE", fmt::format("step size {} is not positive", dt));
    }
    time_ = t;
    std::size_t before = log_.count();
    auto outcome = DoStep(t, dt);
    if (!outcome.ok()) return WithLog(outcome.status(), before);
    time_ = outcome->time_reached;
    if (outcome->terminate) state_ = LifeCycle::kTerminateRequested;
    return outcome;
  }

 protected:
  // Version-specific calls. Each sets state_ to kError/kFatal when the FMU says so.
  virtual core::Status Write(const ModelVariable& var, const Value& value) = 0;
  virtual core::Result<Value> Read(const ModelVariable& var) const = 0;
  virtual core::Status EnterAndExitInitialization(double t0) = 0;
  virtual core::Result<StepOutcome> DoStep(double t, double dt) = 0;

  // Notes the FMI function about to be called, for crash reports (isolated_run.h).
  void Enter(const char* function) const {
    if (call_site_ == nullptr) return;
    std::snprintf(call_site_->function, sizeof(call_site_->function), "%s", function);
    call_site_->time = time_;
  }

  core::Status UnknownIndex(std::size_t index) const {
    return {"SIM_UNKNOWN_VARIABLE", fmt::format("variable index {} is out of range ({} variables)",
                                                index, variables_.size())};
  }

  core::Status BadState(const char* what) const {
    const char* why = "";
    switch (state_) {
      case LifeCycle::kInstantiated:
        why = "the unit is not initialized";
        break;
      case LifeCycle::kInitialized:
        why = "the unit is already initialized";
        break;
      case LifeCycle::kTerminateRequested:
        why = "the FMU asked to terminate";
        break;
      case LifeCycle::kTerminated:
      case LifeCycle::kFreed:
        why = "the unit is terminated";
        break;
      case LifeCycle::kError:
      case LifeCycle::kFatal:
        why = "the FMU failed earlier";
        break;
    }
    return {"SIM_BAD_STATE", fmt::format("{}: {}", what, why)};
  }

  // Appends what the FMU logged during the failed call.
  core::Status WithLog(core::Status s, std::size_t before) const {
    std::string logged = log_.Since(before);
    if (logged.empty()) return s;
    return {s.code(), s.message() + " (FMU log: " + logged + ")"};
  }

  std::string ResourceDir() const { return (dir_.path() / "resources").string(); }

  TempDir dir_;
  SharedLibrary library_;
  LogSink log_;
  std::string instance_name_;
  CallSite* call_site_;
  std::vector<Variable> variables_;
  std::vector<std::optional<Value>> pending_;  // values set before Initialize
  std::optional<double> tolerance_;
  std::optional<double> stop_time_;
  double time_ = 0;
  LifeCycle state_ = LifeCycle::kInstantiated;
};

// Resolves symbols, collecting the names of every missing one.
class SymbolTable {
 public:
  explicit SymbolTable(const SharedLibrary& library) : library_(library) {}
  template <typename F>
  void Resolve(F*& fn, const char* name, bool required = true) {
    fn = reinterpret_cast<F*>(library_.Symbol(name));  // NOLINT: dlsym's void* to a function
    if (fn == nullptr && required) missing_.push_back(name);
  }
  core::Status Check(const std::string& so_path) const {
    if (missing_.empty()) return {};
    std::string names;
    for (const auto& n : missing_) names += (names.empty() ? "" : ", ") + n;
    return {"FMI_MISSING_SYMBOL",
            fmt::format("{} does not export {} (required by the FMI co-simulation API)", so_path,
                        names)};
  }

 private:
  const SharedLibrary& library_;
  std::vector<std::string> missing_;
};

// ---------------------------------------------------------------------------------------- FMI 2

struct Fmi2Functions {
  fmi2InstantiateTYPE* instantiate = nullptr;
  fmi2FreeInstanceTYPE* free_instance = nullptr;
  fmi2SetupExperimentTYPE* setup_experiment = nullptr;
  fmi2EnterInitializationModeTYPE* enter_initialization_mode = nullptr;
  fmi2ExitInitializationModeTYPE* exit_initialization_mode = nullptr;
  fmi2TerminateTYPE* terminate = nullptr;
  fmi2GetRealTYPE* get_real = nullptr;
  fmi2GetIntegerTYPE* get_integer = nullptr;
  fmi2GetBooleanTYPE* get_boolean = nullptr;
  fmi2GetStringTYPE* get_string = nullptr;
  fmi2SetRealTYPE* set_real = nullptr;
  fmi2SetIntegerTYPE* set_integer = nullptr;
  fmi2SetBooleanTYPE* set_boolean = nullptr;
  fmi2SetStringTYPE* set_string = nullptr;
  fmi2DoStepTYPE* do_step = nullptr;
  fmi2GetRealStatusTYPE* get_real_status = nullptr;        // optional
  fmi2GetBooleanStatusTYPE* get_boolean_status = nullptr;  // optional
};

class Fmi2Unit final : public CommonUnit {
 public:
  using CommonUnit::CommonUnit;
  ~Fmi2Unit() override { Free(); }

  std::string_view kind() const override { return "fmi2"; }

  core::Status Load(const std::string& so_path, const OpenOptions& options) {
    SymbolTable symbols(library_);
    symbols.Resolve(fn_.instantiate, "fmi2Instantiate");
    symbols.Resolve(fn_.free_instance, "fmi2FreeInstance");
    symbols.Resolve(fn_.setup_experiment, "fmi2SetupExperiment");
    symbols.Resolve(fn_.enter_initialization_mode, "fmi2EnterInitializationMode");
    symbols.Resolve(fn_.exit_initialization_mode, "fmi2ExitInitializationMode");
    symbols.Resolve(fn_.terminate, "fmi2Terminate");
    symbols.Resolve(fn_.get_real, "fmi2GetReal");
    symbols.Resolve(fn_.get_integer, "fmi2GetInteger");
    symbols.Resolve(fn_.get_boolean, "fmi2GetBoolean");
    symbols.Resolve(fn_.get_string, "fmi2GetString");
    symbols.Resolve(fn_.set_real, "fmi2SetReal");
    symbols.Resolve(fn_.set_integer, "fmi2SetInteger");
    symbols.Resolve(fn_.set_boolean, "fmi2SetBoolean");
    symbols.Resolve(fn_.set_string, "fmi2SetString");
    symbols.Resolve(fn_.do_step, "fmi2DoStep");
    symbols.Resolve(fn_.get_real_status, "fmi2GetRealStatus", false);
    symbols.Resolve(fn_.get_boolean_status, "fmi2GetBooleanStatus", false);
    if (auto s = symbols.Check(so_path); !s.ok()) return s;

    // The FMU may keep the pointer to this struct for its whole life: it lives as long as we do.
    callbacks_ = std::make_unique<fmi2CallbackFunctions>(
        fmi2CallbackFunctions{&Fmi2Logger, &Fmi2Allocate, &Fmi2Free, nullptr, &log_});
    std::string resources = "file://" + ResourceDir() + "/";
    std::size_t before = log_.count();
    Enter("fmi2Instantiate");
    component_ = fn_.instantiate(
        instance_name_.c_str(), fmi2CoSimulation, description_.instantiation_token.c_str(),
        resources.c_str(), callbacks_.get(), fmi2False, options.logging_on ? fmi2True : fmi2False);
    if (component_ == nullptr) {
      state_ = LifeCycle::kFreed;
      return WithLog({"FMI_INSTANTIATE_FAILED",
                      fmt::format("fmi2Instantiate returned NULL for '{}' (guid {}): the FMU "
                                  "refused to instantiate; a GUID that does not match its binary "
                                  "is the usual cause",
                                  instance_name_, description_.instantiation_token)},
                     before);
    }
    return {};
  }

  core::Status Terminate() override {
    core::Status result;
    if (state_ == LifeCycle::kInitialized || state_ == LifeCycle::kTerminateRequested) {
      Enter("fmi2Terminate");
      fmi2Status s = fn_.terminate(component_);
      if (s > fmi2Warning) {
        result = {"FMI_CALL_FAILED",
                  fmt::format("fmi2Terminate returned fmi2{}", Fmi2StatusName(s))};
        if (s == fmi2Fatal) state_ = LifeCycle::kFatal;
      } else {
        state_ = LifeCycle::kTerminated;
      }
    }
    Free();
    return result;
  }

 private:
  void Free() {
    if (component_ != nullptr && state_ != LifeCycle::kFatal) {
      if (state_ == LifeCycle::kInitialized || state_ == LifeCycle::kTerminateRequested) {
        Enter("fmi2Terminate");
        fn_.terminate(component_);
      }
      Enter("fmi2FreeInstance");
      fn_.free_instance(component_);
    }
    component_ = nullptr;
    if (state_ != LifeCycle::kFatal) state_ = LifeCycle::kFreed;
  }

  // Records what an Error/Fatal status means for the rest of the instance's life.
  core::Status Failed(const char* function, fmi2Status s, const char* code) {
    if (s == fmi2Fatal) {
      state_ = LifeCycle::kFatal;
    } else if (s == fmi2Error) {
      state_ = LifeCycle::kError;
    }
    return {code, fmt::format("{} returned fmi2{} at t={}", function, Fmi2StatusName(s), time_)};
  }

  core::Status Write(const ModelVariable& var, const Value& value) override {
    const fmi2ValueReference vr = var.value_reference;
    fmi2Status s = fmi2OK;
    const char* fn = "";
    switch (var.type) {
      case FmiType::kFloat64: {
        fmi2Real v = std::get<double>(value);
        Enter(fn = "fmi2SetReal");
        s = fn_.set_real(component_, &vr, 1, &v);
        break;
      }
      case FmiType::kBoolean: {
        fmi2Boolean v = std::get<bool>(value) ? fmi2True : fmi2False;
        Enter(fn = "fmi2SetBoolean");
        s = fn_.set_boolean(component_, &vr, 1, &v);
        break;
      }
      case FmiType::kString: {
        fmi2String v = std::get<std::string>(value).c_str();
        Enter(fn = "fmi2SetString");
        s = fn_.set_string(component_, &vr, 1, &v);
        break;
      }
      default: {
        auto v = static_cast<fmi2Integer>(std::get<std::int64_t>(value));
        Enter(fn = "fmi2SetInteger");
        s = fn_.set_integer(component_, &vr, 1, &v);
        break;
      }
    }
    if (s > fmi2Warning) {
      // fmi2Discard from a setter is not defined by the standard; treat it as a refusal that
      // leaves the instance usable.
      core::Status st = Failed(fn, s, "FMI_CALL_FAILED");
      return {st.code(), st.message() + fmt::format(" setting '{}'", var.name)};
    }
    return {};
  }

  core::Result<Value> Read(const ModelVariable& var) const override {
    const fmi2ValueReference vr = var.value_reference;
    fmi2Status s = fmi2OK;
    const char* fn = "";
    Value out;
    switch (var.type) {
      case FmiType::kFloat64: {
        fmi2Real v = 0;
        Enter(fn = "fmi2GetReal");
        s = fn_.get_real(component_, &vr, 1, &v);
        out = v;
        break;
      }
      case FmiType::kBoolean: {
        fmi2Boolean v = fmi2False;
        Enter(fn = "fmi2GetBoolean");
        s = fn_.get_boolean(component_, &vr, 1, &v);
        out = v != fmi2False;
        break;
      }
      case FmiType::kString: {
        fmi2String v = nullptr;
        Enter(fn = "fmi2GetString");
        s = fn_.get_string(component_, &vr, 1, &v);
        out = std::string(v != nullptr && s <= fmi2Warning ? v : "");
        break;
      }
      default: {
        fmi2Integer v = 0;
        Enter(fn = "fmi2GetInteger");
        s = fn_.get_integer(component_, &vr, 1, &v);
        out = static_cast<std::int64_t>(v);
        break;
      }
    }
    if (s > fmi2Warning) {
      return core::Status("FMI_CALL_FAILED", fmt::format("{} returned fmi2{} reading '{}' at t={}",
                                                         fn, Fmi2StatusName(s), var.name, time_));
    }
    return out;
  }

  core::Status EnterAndExitInitialization(double t0) override {
    Enter("fmi2SetupExperiment");
    fmi2Status s =
        fn_.setup_experiment(component_, tolerance_ ? fmi2True : fmi2False, tolerance_.value_or(0),
                             t0, stop_time_ ? fmi2True : fmi2False, stop_time_.value_or(0));
    if (s > fmi2Warning) return Failed("fmi2SetupExperiment", s, "FMI_INITIALIZE_FAILED");
    Enter("fmi2EnterInitializationMode");
    s = fn_.enter_initialization_mode(component_);
    if (s > fmi2Warning) return Failed("fmi2EnterInitializationMode", s, "FMI_INITIALIZE_FAILED");
    // Exit needs the initialized state for Terminate to be legal if it fails half-way; the
    // standard allows fmi2Terminate only after a successful exit, so failures stay kError.
    Enter("fmi2ExitInitializationMode");
    s = fn_.exit_initialization_mode(component_);
    if (s > fmi2Warning) return Failed("fmi2ExitInitializationMode", s, "FMI_INITIALIZE_FAILED");
    return {};
  }

  core::Result<StepOutcome> DoStep(double t, double dt) override {
    Enter("fmi2DoStep");
    fmi2Status s = fn_.do_step(component_, t, dt, fmi2True);
    StepOutcome outcome;
    outcome.time_reached = t + dt;
    if (s <= fmi2Warning) return outcome;
    if (s == fmi2Discard) {
      // The FMU stopped before t + dt: either it wants the simulation to end (fmi2Terminated)
      // or it needs a smaller step, which needs a rollback doppel's units do not offer.
      fmi2Boolean terminated = fmi2False;
      if (fn_.get_boolean_status != nullptr) {
        Enter("fmi2GetBooleanStatus");
        if (fn_.get_boolean_status(component_, fmi2Terminated, &terminated) > fmi2Warning) {
          terminated = fmi2False;
        }
      }
      if (terminated != fmi2False) {
        fmi2Real last = t;
        if (fn_.get_real_status != nullptr) {
          Enter("fmi2GetRealStatus");
          if (fn_.get_real_status(component_, fmi2LastSuccessfulTime, &last) > fmi2Warning) {
            last = t;
          }
        }
        outcome.time_reached = last;
        outcome.terminate = true;
        return outcome;
      }
      return core::Status("SIM_STEP_FAILED",
                          fmt::format("fmi2DoStep returned fmi2Discard at t={} (step {}) without "
                                      "asking to terminate",
                                      t, dt));
    }
    return Failed("fmi2DoStep", s, "SIM_STEP_FAILED");
  }

  Fmi2Functions fn_;
  std::unique_ptr<fmi2CallbackFunctions> callbacks_;
  fmi2Component component_ = nullptr;
};

// ---------------------------------------------------------------------------------------- FMI 3

struct Fmi3Functions {
  fmi3InstantiateCoSimulationTYPE* instantiate = nullptr;
  fmi3FreeInstanceTYPE* free_instance = nullptr;
  fmi3EnterInitializationModeTYPE* enter_initialization_mode = nullptr;
  fmi3ExitInitializationModeTYPE* exit_initialization_mode = nullptr;
  fmi3TerminateTYPE* terminate = nullptr;
  fmi3DoStepTYPE* do_step = nullptr;
#define DOPPEL_FMI3_FIELDS(Name)             \
  fmi3Get##Name##TYPE* get_##Name = nullptr; \
  fmi3Set##Name##TYPE* set_##Name = nullptr;
  DOPPEL_FMI3_FIELDS(Float32)
  DOPPEL_FMI3_FIELDS(Float64)
  DOPPEL_FMI3_FIELDS(Int8)
  DOPPEL_FMI3_FIELDS(UInt8)
  DOPPEL_FMI3_FIELDS(Int16)
  DOPPEL_FMI3_FIELDS(UInt16)
  DOPPEL_FMI3_FIELDS(Int32)
  DOPPEL_FMI3_FIELDS(UInt32)
  DOPPEL_FMI3_FIELDS(Int64)
  DOPPEL_FMI3_FIELDS(UInt64)
  DOPPEL_FMI3_FIELDS(Boolean)
  DOPPEL_FMI3_FIELDS(String)
#undef DOPPEL_FMI3_FIELDS
};

class Fmi3Unit final : public CommonUnit {
 public:
  using CommonUnit::CommonUnit;
  ~Fmi3Unit() override { Free(); }

  std::string_view kind() const override { return "fmi3"; }

  core::Status Load(const std::string& so_path, const OpenOptions& options) {
    SymbolTable symbols(library_);
    symbols.Resolve(fn_.instantiate, "fmi3InstantiateCoSimulation");
    symbols.Resolve(fn_.free_instance, "fmi3FreeInstance");
    symbols.Resolve(fn_.enter_initialization_mode, "fmi3EnterInitializationMode");
    symbols.Resolve(fn_.exit_initialization_mode, "fmi3ExitInitializationMode");
    symbols.Resolve(fn_.terminate, "fmi3Terminate");
    symbols.Resolve(fn_.do_step, "fmi3DoStep");
    // Every getter/setter is part of the API, but only those of the types the model uses are
    // needed: an FMU missing fmi3GetUInt16 while having no UInt16 variable still runs.
    std::vector<bool> used(static_cast<std::size_t>(FmiType::kEnumeration) + 1);
    for (const auto& v : description_.variables) used[static_cast<std::size_t>(v.type)] = true;
    auto need = [&](FmiType t) { return used[static_cast<std::size_t>(t)]; };
#define DOPPEL_RESOLVE(Name, Required)                        \
  symbols.Resolve(fn_.get_##Name, "fmi3Get" #Name, Required); \
  symbols.Resolve(fn_.set_##Name, "fmi3Set" #Name, Required);
    DOPPEL_RESOLVE(Float32, need(FmiType::kFloat32))
    DOPPEL_RESOLVE(Float64, need(FmiType::kFloat64))
    DOPPEL_RESOLVE(Int8, need(FmiType::kInt8))
    DOPPEL_RESOLVE(UInt8, need(FmiType::kUInt8))
    DOPPEL_RESOLVE(Int16, need(FmiType::kInt16))
    DOPPEL_RESOLVE(UInt16, need(FmiType::kUInt16))
    DOPPEL_RESOLVE(Int32, need(FmiType::kInt32))
    DOPPEL_RESOLVE(UInt32, need(FmiType::kUInt32))
    DOPPEL_RESOLVE(Int64, need(FmiType::kInt64) || need(FmiType::kEnumeration))
    DOPPEL_RESOLVE(UInt64, need(FmiType::kUInt64))
    DOPPEL_RESOLVE(Boolean, need(FmiType::kBoolean))
    DOPPEL_RESOLVE(String, need(FmiType::kString))
#undef DOPPEL_RESOLVE
    if (auto s = symbols.Check(so_path); !s.ok()) return s;

    std::error_code ec;
    // resourcePath: an absolute path with a trailing separator, NULL without resources.
    std::string resources = ResourceDir() + "/";
    const bool has_resources = fs::is_directory(ResourceDir(), ec);
    std::size_t before = log_.count();
    Enter("fmi3InstantiateCoSimulation");
    instance_ = fn_.instantiate(instance_name_.c_str(), description_.instantiation_token.c_str(),
                                has_resources ? resources.c_str() : nullptr,
                                /*visible=*/false, options.logging_on,
                                /*eventModeUsed=*/false, /*earlyReturnAllowed=*/false,
                                /*requiredIntermediateVariables=*/nullptr, 0, &log_, &Fmi3Logger,
                                /*intermediateUpdate=*/nullptr);
    if (instance_ == nullptr) {
      state_ = LifeCycle::kFreed;
      return WithLog({"FMI_INSTANTIATE_FAILED",
                      fmt::format("fmi3InstantiateCoSimulation returned NULL for '{}' "
                                  "(instantiationToken {}): the FMU refused to instantiate; a "
                                  "token that does not match its binary is the usual cause",
                                  instance_name_, description_.instantiation_token)},
                     before);
    }
    return {};
  }

  core::Status Terminate() override {
    core::Status result;
    if (state_ == LifeCycle::kInitialized || state_ == LifeCycle::kTerminateRequested) {
      Enter("fmi3Terminate");
      fmi3Status s = fn_.terminate(instance_);
      if (s > fmi3Warning) {
        result = {"FMI_CALL_FAILED",
                  fmt::format("fmi3Terminate returned fmi3{}", Fmi3StatusName(s))};
        if (s == fmi3Fatal) state_ = LifeCycle::kFatal;
      } else {
        state_ = LifeCycle::kTerminated;
      }
    }
    Free();
    return result;
  }

 private:
  void Free() {
    if (instance_ != nullptr && state_ != LifeCycle::kFatal) {
      if (state_ == LifeCycle::kInitialized || state_ == LifeCycle::kTerminateRequested) {
        Enter("fmi3Terminate");
        fn_.terminate(instance_);
      }
      Enter("fmi3FreeInstance");
      fn_.free_instance(instance_);
    }
    instance_ = nullptr;
    if (state_ != LifeCycle::kFatal) state_ = LifeCycle::kFreed;
  }

  core::Status Failed(const char* function, fmi3Status s, const char* code) {
    if (s == fmi3Fatal) {
      state_ = LifeCycle::kFatal;
    } else if (s == fmi3Error) {
      state_ = LifeCycle::kError;
    }
    return {code, fmt::format("{} returned fmi3{} at t={}", function, Fmi3StatusName(s), time_)};
  }

  template <typename T, typename F>
  fmi3Status SetOne(F* fn, const char* name, fmi3ValueReference vr, T v) {
    Enter(name);
    return fn(instance_, &vr, 1, &v, 1);
  }
  template <typename T, typename F>
  fmi3Status GetOne(F* fn, const char* name, fmi3ValueReference vr, T* v) const {
    Enter(name);
    return fn(instance_, &vr, 1, v, 1);
  }

  core::Status Write(const ModelVariable& var, const Value& value) override {
    const fmi3ValueReference vr = var.value_reference;
    fmi3Status s = fmi3OK;
    const char* fn = "";
    auto i = [&] { return std::get<std::int64_t>(value); };
    switch (var.type) {
#define DOPPEL_SET(Type, Name, expr)                                 \
  case FmiType::k##Type:                                             \
    s = SetOne<fmi3##Name>(fn_.set_##Name, fn = "fmi3Set" #Name, vr, \
                           static_cast<fmi3##Name>(expr));           \
    break;
      DOPPEL_SET(Float32, Float32, std::get<double>(value))
      DOPPEL_SET(Float64, Float64, std::get<double>(value))
      DOPPEL_SET(Int8, Int8, i())
      DOPPEL_SET(UInt8, UInt8, i())
      DOPPEL_SET(Int16, Int16, i())
      DOPPEL_SET(UInt16, UInt16, i())
      DOPPEL_SET(Int32, Int32, i())
      DOPPEL_SET(UInt32, UInt32, i())
      DOPPEL_SET(Int64, Int64, i())
      DOPPEL_SET(UInt64, UInt64, i())
      DOPPEL_SET(Enumeration, Int64, i())
      DOPPEL_SET(Boolean, Boolean, std::get<bool>(value))
#undef DOPPEL_SET
      case FmiType::kString:
        s = SetOne<fmi3String>(fn_.set_String, fn = "fmi3SetString", vr,
                               std::get<std::string>(value).c_str());
        break;
    }
    if (s > fmi3Warning) {
      core::Status st = Failed(fn, s, "FMI_CALL_FAILED");
      return {st.code(), st.message() + fmt::format(" setting '{}'", var.name)};
    }
    return {};
  }

  core::Result<Value> Read(const ModelVariable& var) const override {
    const fmi3ValueReference vr = var.value_reference;
    fmi3Status s = fmi3OK;
    const char* fn = "";
    Value out;
    switch (var.type) {
#define DOPPEL_GET(Type, Name, As)                                        \
  case FmiType::k##Type: {                                                \
    fmi3##Name v{};                                                       \
    s = GetOne<fmi3##Name>(fn_.get_##Name, fn = "fmi3Get" #Name, vr, &v); \
    out = static_cast<As>(v);                                             \
    break;                                                                \
  }
      DOPPEL_GET(Float32, Float32, double)
      DOPPEL_GET(Float64, Float64, double)
      DOPPEL_GET(Int8, Int8, std::int64_t)
      DOPPEL_GET(UInt8, UInt8, std::int64_t)
      DOPPEL_GET(Int16, Int16, std::int64_t)
      DOPPEL_GET(UInt16, UInt16, std::int64_t)
      DOPPEL_GET(Int32, Int32, std::int64_t)
      DOPPEL_GET(UInt32, UInt32, std::int64_t)
      DOPPEL_GET(Int64, Int64, std::int64_t)
      DOPPEL_GET(Enumeration, Int64, std::int64_t)
      DOPPEL_GET(Boolean, Boolean, bool)
#undef DOPPEL_GET
      case FmiType::kUInt64: {
        fmi3UInt64 v = 0;
        s = GetOne<fmi3UInt64>(fn_.get_UInt64, fn = "fmi3GetUInt64", vr, &v);
        if (s <= fmi3Warning &&
            v > static_cast<fmi3UInt64>(std::numeric_limits<std::int64_t>::max())) {
          return core::Status(
              "FMI_VALUE_OUT_OF_RANGE",
              fmt::format("'{}' = {} does not fit doppel's 64-bit signed integer", var.name, v));
        }
        out = static_cast<std::int64_t>(v);
        break;
      }
      case FmiType::kString: {
        fmi3String v = nullptr;
        s = GetOne<fmi3String>(fn_.get_String, fn = "fmi3GetString", vr, &v);
        out = std::string(v != nullptr && s <= fmi3Warning ? v : "");
        break;
      }
    }
    if (s > fmi3Warning) {
      return core::Status("FMI_CALL_FAILED", fmt::format("{} returned fmi3{} reading '{}' at t={}",
                                                         fn, Fmi3StatusName(s), var.name, time_));
    }
    return out;
  }

  core::Status EnterAndExitInitialization(double t0) override {
    Enter("fmi3EnterInitializationMode");
    fmi3Status s =
        fn_.enter_initialization_mode(instance_, tolerance_.has_value(), tolerance_.value_or(0), t0,
                                      stop_time_.has_value(), stop_time_.value_or(0));
    if (s > fmi3Warning) return Failed("fmi3EnterInitializationMode", s, "FMI_INITIALIZE_FAILED");
    Enter("fmi3ExitInitializationMode");
    s = fn_.exit_initialization_mode(instance_);  // eventModeUsed = false: now in Step Mode
    if (s > fmi3Warning) return Failed("fmi3ExitInitializationMode", s, "FMI_INITIALIZE_FAILED");
    return {};
  }

  core::Result<StepOutcome> DoStep(double t, double dt) override {
    fmi3Boolean event_handling_needed = false, terminate = false, early_return = false;
    fmi3Float64 last_successful_time = t + dt;
    Enter("fmi3DoStep");
    fmi3Status s =
        fn_.do_step(instance_, t, dt, /*noSetFMUStatePriorToCurrentPoint=*/true,
                    &event_handling_needed, &terminate, &early_return, &last_successful_time);
    StepOutcome outcome;
    outcome.time_reached = t + dt;
    if (s <= fmi3Discard && terminate) {
      outcome.time_reached = last_successful_time;
      outcome.terminate = true;
      return outcome;
    }
    if (s <= fmi3Warning) return outcome;
    if (s == fmi3Discard) {
      return core::Status("SIM_STEP_FAILED",
                          fmt::format("fmi3DoStep returned fmi3Discard at t={} (step {}) without "
                                      "asking to terminate",
                                      t, dt));
    }
    return Failed("fmi3DoStep", s, "SIM_STEP_FAILED");
  }

  Fmi3Functions fn_;
  fmi3Instance instance_ = nullptr;
};

// ------------------------------------------------------------------------------------- opening

core::Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Status("FMI_IO_ERROR", "cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

// binaries/<platform>/<id>.so, or FMI_NO_BINARY naming the platforms the FMU has.
core::Result<fs::path> FindBinary(const fs::path& root, const ModelDescription& md,
                                  const std::string& fmu_path) {
  const std::string& id = md.co_simulation->model_identifier;
  std::vector<std::string> platforms = md.version == FmiVersion::kFmi2
                                           ? std::vector<std::string>{"linux64", "x86_64-linux"}
                                           : std::vector<std::string>{"x86_64-linux"};
  std::error_code ec;
  for (const auto& p : platforms) {
    fs::path so = root / "binaries" / p / (id + ".so");
    if (fs::is_regular_file(so, ec)) return so;
  }
  std::vector<std::string> present;
  if (fs::is_directory(root / "binaries", ec)) {
    for (const auto& entry : fs::directory_iterator(root / "binaries", ec)) {
      if (entry.is_directory(ec)) present.push_back(entry.path().filename().string());
    }
  }
  std::sort(present.begin(), present.end());
  std::string has;
  for (const auto& p : present) has += (has.empty() ? "" : ", ") + p;
  return core::Status(
      "FMI_NO_BINARY",
      fmt::format("{}: no Linux x86-64 binary binaries/{}/{}.so; {}", fmu_path, platforms.front(),
                  id,
                  present.empty()
                      ? std::string("the FMU has no binaries (source-only FMUs are not supported)")
                      : "the FMU has binaries for: " + has));
}

}  // namespace

core::Result<std::unique_ptr<FmuUnit>> OpenFmu(const std::string& path,
                                               const OpenOptions& options) {
  auto dir = TempDir::Create("doppel-fmu-");
  if (!dir.ok()) return dir.status();
  if (auto s = ExtractZip(path, dir->path()); !s.ok()) return s;
  fs::path md_path = dir->path() / "modelDescription.xml";
  std::error_code ec;
  if (!fs::is_regular_file(md_path, ec)) {
    return core::Status(
        "FMI_NO_MODEL_DESCRIPTION",
        fmt::format("{}: the archive has no modelDescription.xml at its root", path));
  }
  auto xml = ReadFile(md_path);
  if (!xml.ok()) return xml.status();
  auto md = ParseModelDescription(*xml, path + ":modelDescription.xml");
  if (!md.ok()) return md.status();
  if (!md->co_simulation) {
    if (md->has_model_exchange) {
      return core::Status("FMI_UNSUPPORTED_KIND",
                          fmt::format("{}: '{}' is a Model Exchange FMU only; doppel imports "
                                      "co-simulation FMUs (no <CoSimulation> element)",
                                      path, md->model_name));
    }
    return core::Status("FMI_BAD_MODEL_DESCRIPTION",
                        fmt::format("{}: modelDescription.xml has neither <CoSimulation> nor "
                                    "<ModelExchange>",
                                    path));
  }
  auto so = FindBinary(dir->path(), *md, path);
  if (!so.ok()) return so.status();
  auto library = SharedLibrary::Open(so->string());
  if (!library.ok()) return library.status();
  const std::string so_name = fs::relative(*so, dir->path(), ec).string();
  if (md->version == FmiVersion::kFmi2) {
    auto unit =
        std::make_unique<Fmi2Unit>(std::move(*md), std::move(*dir), std::move(*library), options);
    if (auto s = unit->Load(so_name, options); !s.ok()) return s;
    return std::unique_ptr<FmuUnit>(std::move(unit));
  }
  auto unit =
      std::make_unique<Fmi3Unit>(std::move(*md), std::move(*dir), std::move(*library), options);
  if (auto s = unit->Load(so_name, options); !s.ok()) return s;
  return std::unique_ptr<FmuUnit>(std::move(unit));
}

}  // namespace doppel::sim::fmi
