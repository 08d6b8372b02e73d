// The FMI importer's cost (src/sim/fmi/fmu.h): for each test FMU (tests/fmus), FMI 2.0 and 3.0,
// steps per second through the importer (sim::Unit::Step + Get of every output) against the
// same steps calling the FMU's C functions directly (dlopen of the same .so, the same fmiDoStep
// and one fmiGet* per output) in a tight loop, measured in the same run.
//
//   build/release/bench/fmu_bench [--quick]
//
// Both loops step from t=0 with the FMU's DefaultExperiment stepSize; each is run 5 times,
// alternating, and the fastest run counts. The overhead per step is (importer - direct) / steps;
// the ratio is importer time / direct time. The FMUs integrate internally (RK4, 1 ms sub-steps),
// so for all but the feedthrough the FMU's own work dominates and the ratio is close to 1; the
// feedthrough (no integration) shows the importer's per-call cost. --quick: fewer steps.
#include <dlfcn.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sim/fmi/experiment.h"
#include "sim/fmi/fmi2_api.h"
#include "sim/fmi/fmi3_api.h"
#include "sim/fmi/fmu.h"
#include "sim/fmi/model_description.h"

namespace doppel::bench {
namespace {

namespace fmi = sim::fmi;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

volatile double g_sink = 0;  // keeps the reads from being optimized away

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fmu_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename F>
F* Sym(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (p == nullptr) Die(std::string("missing ") + name);
  return reinterpret_cast<F*>(p);  // NOLINT: dlsym's void* to a function
}

void Fmi2Log(fmi2ComponentEnvironment, fmi2String, fmi2Status, fmi2String, fmi2String, ...) {}
void* Fmi2Alloc(std::size_t n, std::size_t s) { return std::calloc(n, s); }
void Fmi2Free(void* p) { std::free(p); }  // NOLINT(cppcoreguidelines-no-malloc)
void Fmi3Log(fmi3InstanceEnvironment, fmi3Status, fmi3String, fmi3String) {}

// Seconds for `steps` steps through the importer.
double ThroughImporter(const std::string& fmu_path, std::size_t steps, double h) {
  fmi::OpenOptions options;
  options.log_to_spdlog = false;
  auto fmu = fmi::OpenFmu(fmu_path, options);
  if (!fmu.ok()) Die(fmu.status().ToString());
  sim::Unit& unit = **fmu;
  auto outputs = fmi::OutputIndices(unit);
  if (auto s = unit.Initialize(0); !s.ok()) Die(s.ToString());
  auto start = Clock::now();
  for (std::size_t i = 0; i < steps; ++i) {
    auto r = unit.Step(static_cast<double>(i) * h, h);
    if (!r.ok()) Die(r.status().ToString());
    for (std::size_t o : outputs) {
      auto v = unit.Get(o);
      if (!v.ok()) Die(v.status().ToString());
      if (const auto* d = std::get_if<double>(&*v)) g_sink = *d;
    }
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Seconds for `steps` steps calling the FMU directly.
double Direct(const fs::path& stage, const fmi::ModelDescription& md, std::size_t steps, double h) {
  const bool v2 = md.version == fmi::FmiVersion::kFmi2;
  fs::path so = stage / "binaries" / (v2 ? "linux64" : "x86_64-linux") /
                (md.co_simulation->model_identifier + ".so");
  void* lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) Die(dlerror());
  std::vector<const fmi::ModelVariable*> outputs;
  for (const auto& v : md.variables) {
    if (v.causality == "output") outputs.push_back(&v);
  }
  double seconds = 0;
  if (v2) {
    auto* instantiate = Sym<fmi2InstantiateTYPE>(lib, "fmi2Instantiate");
    auto* setup = Sym<fmi2SetupExperimentTYPE>(lib, "fmi2SetupExperiment");
    auto* enter = Sym<fmi2EnterInitializationModeTYPE>(lib, "fmi2EnterInitializationMode");
    auto* exit = Sym<fmi2ExitInitializationModeTYPE>(lib, "fmi2ExitInitializationMode");
    auto* do_step = Sym<fmi2DoStepTYPE>(lib, "fmi2DoStep");
    auto* get_real = Sym<fmi2GetRealTYPE>(lib, "fmi2GetReal");
    auto* get_integer = Sym<fmi2GetIntegerTYPE>(lib, "fmi2GetInteger");
    auto* get_boolean = Sym<fmi2GetBooleanTYPE>(lib, "fmi2GetBoolean");
    auto* get_string = Sym<fmi2GetStringTYPE>(lib, "fmi2GetString");
    auto* terminate = Sym<fmi2TerminateTYPE>(lib, "fmi2Terminate");
    auto* free_instance = Sym<fmi2FreeInstanceTYPE>(lib, "fmi2FreeInstance");
    const fmi2CallbackFunctions callbacks{&Fmi2Log, &Fmi2Alloc, &Fmi2Free, nullptr, nullptr};
    fmi2Component c = instantiate("bench", fmi2CoSimulation, md.instantiation_token.c_str(), "",
                                  &callbacks, fmi2False, fmi2False);
    if (c == nullptr) Die("fmi2Instantiate failed");
    setup(c, fmi2False, 0, 0, fmi2False, 0);
    enter(c);
    exit(c);
    auto start = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) {
      if (do_step(c, static_cast<double>(i) * h, h, fmi2True) != fmi2OK) Die("fmi2DoStep");
      for (const auto* o : outputs) {
        const fmi2ValueReference vr = o->value_reference;
        if (o->type == fmi::FmiType::kFloat64) {
          fmi2Real v;
          get_real(c, &vr, 1, &v);
          g_sink = v;
        } else if (o->type == fmi::FmiType::kBoolean) {
          fmi2Boolean v;
          get_boolean(c, &vr, 1, &v);
        } else if (o->type == fmi::FmiType::kString) {
          fmi2String v;
          get_string(c, &vr, 1, &v);
          std::string copy(v);  // the importer copies it too
        } else {
          fmi2Integer v;
          get_integer(c, &vr, 1, &v);
        }
      }
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    terminate(c);
    free_instance(c);
  } else {
    auto* instantiate = Sym<fmi3InstantiateCoSimulationTYPE>(lib, "fmi3InstantiateCoSimulation");
    auto* enter = Sym<fmi3EnterInitializationModeTYPE>(lib, "fmi3EnterInitializationMode");
    auto* exit = Sym<fmi3ExitInitializationModeTYPE>(lib, "fmi3ExitInitializationMode");
    auto* do_step = Sym<fmi3DoStepTYPE>(lib, "fmi3DoStep");
    auto* get_f64 = Sym<fmi3GetFloat64TYPE>(lib, "fmi3GetFloat64");
    auto* get_f32 = Sym<fmi3GetFloat32TYPE>(lib, "fmi3GetFloat32");
    auto* get_i64 = Sym<fmi3GetInt64TYPE>(lib, "fmi3GetInt64");
    auto* get_i32 = Sym<fmi3GetInt32TYPE>(lib, "fmi3GetInt32");
    auto* get_u32 = Sym<fmi3GetUInt32TYPE>(lib, "fmi3GetUInt32");
    auto* get_i16 = Sym<fmi3GetInt16TYPE>(lib, "fmi3GetInt16");
    auto* get_u16 = Sym<fmi3GetUInt16TYPE>(lib, "fmi3GetUInt16");
    auto* get_i8 = Sym<fmi3GetInt8TYPE>(lib, "fmi3GetInt8");
    auto* get_u8 = Sym<fmi3GetUInt8TYPE>(lib, "fmi3GetUInt8");
    auto* get_u64 = Sym<fmi3GetUInt64TYPE>(lib, "fmi3GetUInt64");
    auto* get_bool = Sym<fmi3GetBooleanTYPE>(lib, "fmi3GetBoolean");
    auto* get_string = Sym<fmi3GetStringTYPE>(lib, "fmi3GetString");
    auto* terminate = Sym<fmi3TerminateTYPE>(lib, "fmi3Terminate");
    auto* free_instance = Sym<fmi3FreeInstanceTYPE>(lib, "fmi3FreeInstance");
    fmi3Instance c = instantiate("bench", md.instantiation_token.c_str(), nullptr, false, false,
                                 false, false, nullptr, 0, nullptr, &Fmi3Log, nullptr);
    if (c == nullptr) Die("fmi3InstantiateCoSimulation failed");
    enter(c, false, 0, 0, false, 0);
    exit(c);
    auto start = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) {
      fmi3Boolean event = false, term = false, early = false;
      fmi3Float64 last = 0;
      if (do_step(c, static_cast<double>(i) * h, h, true, &event, &term, &early, &last) != fmi3OK) {
        Die("fmi3DoStep");
      }
      for (const auto* o : outputs) {
        const fmi3ValueReference vr = o->value_reference;
        switch (o->type) {
#define GET(Type, fn, T)     \
  case fmi::FmiType::Type: { \
    T v;                     \
    fn(c, &vr, 1, &v, 1);    \
    break;                   \
  }
          case fmi::FmiType::kFloat64: {
            fmi3Float64 v;
            get_f64(c, &vr, 1, &v, 1);
            g_sink = v;
            break;
          }
            GET(kFloat32, get_f32, fmi3Float32)
            GET(kInt64, get_i64, fmi3Int64)
            GET(kEnumeration, get_i64, fmi3Int64)
            GET(kInt32, get_i32, fmi3Int32)
            GET(kUInt32, get_u32, fmi3UInt32)
            GET(kInt16, get_i16, fmi3Int16)
            GET(kUInt16, get_u16, fmi3UInt16)
            GET(kInt8, get_i8, fmi3Int8)
            GET(kUInt8, get_u8, fmi3UInt8)
            GET(kUInt64, get_u64, fmi3UInt64)
            GET(kBoolean, get_bool, fmi3Boolean)
#undef GET
          case fmi::FmiType::kString: {
            fmi3String v;
            get_string(c, &vr, 1, &v, 1);
            std::string copy(v);
            break;
          }
        }
      }
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    terminate(c);
    free_instance(c);
  }
  dlclose(lib);
  return seconds;
}

int Main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      Die(std::string("unknown argument ") + argv[i] + " (usage: fmu_bench [--quick])");
    }
  }
  const fs::path dir = DOPPEL_TEST_FMU_DIR;
  std::printf(
      "FMI importer overhead: importer (Unit::Step + Get of every output) vs direct "
      "calls of the same .so\n");
  std::printf("%-24s %8s %14s %14s %12s %7s\n", "FMU", "steps", "importer st/s", "direct st/s",
              "overhead ns", "ratio");
  for (int version : {2, 3}) {
    for (const char* model :
         {"exp_decay", "bouncing_ball", "van_der_pol", "stair", "feedthrough"}) {
      const std::string name = fmt::format("{}_fmi{}", model, version);
      auto md = fmi::ParseModelDescription(ReadAll(dir / name / "modelDescription.xml"));
      if (!md.ok()) Die(md.status().ToString());
      const double h = md->experiment.step_size.value_or(0.01);
      // Integrating FMUs cost ~h/1ms RK4 sub-steps per step; fewer steps keep them short.
      const bool integrates = std::string(model) != "stair" && std::string(model) != "feedthrough";
      std::size_t steps = integrates ? 20000 : 200000;
      if (quick) steps /= 20;
      double best_importer = 1e300, best_direct = 1e300;
      for (int rep = 0; rep < 5; ++rep) {
        best_importer =
            std::min(best_importer, ThroughImporter((dir / (name + ".fmu")).string(), steps, h));
        best_direct = std::min(best_direct, Direct(dir / name, *md, steps, h));
      }
      const double n = static_cast<double>(steps);
      std::printf("%-24s %8zu %14.0f %14.0f %12.1f %7.3f\n", name.c_str(), steps, n / best_importer,
                  n / best_direct, (best_importer - best_direct) / n * 1e9,
                  best_importer / best_direct);
    }
  }
  return 0;
}

}  // namespace
}  // namespace doppel::bench

int main(int argc, char** argv) { return doppel::bench::Main(argc, argv); }
