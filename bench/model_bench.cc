// Benchmarks of doppel::model on real data.
//
//   build/release/bench/model_bench [--benchmark_* flags]
//
// RealEstateCore (768 Interfaces, shared data) through ModelRepository::Add into a fresh
// repository, against a baseline measured in the same run: plain JSON parsing of the same texts
// (core::ParseJson), so the output shows what the DTDL rules and resolution cost on top of
// reading JSON. Also value validation throughput, the per-write cost of the twin graph.
//
// After the benchmarks a summary line compares parse+resolve with the target (< 200 ms for the
// whole ontology). Exit status: 0, or 1 when the data is missing or invalid or the target is
// missed, so that a make target can gate on it.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/shared_data.h"
#include "model/model.h"

namespace doppel::model {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr double kTargetMs = 200;

// The ontology, read once before any benchmark runs so that file I/O is never timed.
struct Ontology {
  std::vector<SourceDocument> documents;
  std::size_t bytes = 0;
  std::size_t interfaces = 0;  // top-level Interfaces one Add reports
};

Ontology& RealEstateCore() {
  static Ontology ontology;
  return ontology;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loads and validates the ontology once; empty string on success, else the problem.
std::string LoadRealEstateCore() {
  const fs::path dir = core::SharedDataDir() / "dtdl/RealEstateCore";
  if (!fs::exists(dir)) return fmt::format("no RealEstateCore ontology at {}", dir.string());
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  Ontology& o = RealEstateCore();
  for (const auto& f : files) {
    o.documents.push_back({fs::relative(f, dir).string(), ReadAll(f)});
    o.bytes += o.documents.back().text.size();
  }
  ModelRepository repo;
  auto r = repo.Add(o.documents);
  if (!r.ok()) {
    std::string out = "RealEstateCore does not load:";
    for (const auto& d : r.diagnostics) out += "\n  " + FormatDiagnostic(d);
    return out;
  }
  o.interfaces = r.added.size();
  return "";
}

void BM_ParseResolveRealEstateCore(benchmark::State& state) {
  const Ontology& o = RealEstateCore();
  std::optional<ModelRepository> repo;
  for (auto _ : state) {
    repo.emplace();
    auto r = repo->Add(o.documents);
    if (!r.ok()) {
      state.SkipWithError("RealEstateCore did not load");
      break;
    }
    benchmark::DoNotOptimize(r);
    // Tearing the repository down is not part of loading it.
    state.PauseTiming();
    repo.reset();
    state.ResumeTiming();
  }
  state.counters["interfaces"] = benchmark::Counter(static_cast<double>(o.interfaces),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * o.bytes));
}
BENCHMARK(BM_ParseResolveRealEstateCore)->Unit(benchmark::kMillisecond)->UseRealTime();

// The baseline: the same texts through the JSON reader alone (limits, BOM, UTF-8 checks included,
// as in the real path).
void BM_JsonParseRealEstateCore(benchmark::State& state) {
  const Ontology& o = RealEstateCore();
  for (auto _ : state) {
    for (const auto& doc : o.documents) {
      auto v = core::ParseJson(doc.text);
      benchmark::DoNotOptimize(v);
    }
  }
  state.counters["interfaces"] = benchmark::Counter(static_cast<double>(o.interfaces),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * o.bytes));
}
BENCHMARK(BM_JsonParseRealEstateCore)->Unit(benchmark::kMillisecond)->UseRealTime();

// A sensor with a double Property and an Object Property of five fields (number, string,
// dateTime, Enum, integer): the shapes twin writes carry.
constexpr const char* kSensorModel = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:example:bench:Sensor;1",
  "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "temperature", "schema": "double", "writable": true},
    {"@type": "Property", "name": "reading", "schema": {
      "@type": "Object",
      "fields": [
        {"name": "value", "schema": "double"},
        {"name": "unit", "schema": "string"},
        {"name": "time", "schema": "dateTime"},
        {"name": "quality", "schema": {"@type": "Enum", "valueSchema": "string", "enumValues": [
          {"name": "good", "enumValue": "good"}, {"name": "bad", "enumValue": "bad"}]}},
        {"name": "count", "schema": "integer"}
      ]}}
  ]
})";

void ValidateBenchmark(benchmark::State& state, const char* path, const char* value_json) {
  ModelRepository repo;
  SourceDocument docs[] = {{"sensor.json", kSensorModel}};
  if (auto r = repo.Add(docs); !r.ok()) {
    state.SkipWithError("the benchmark model is invalid");
    return;
  }
  ResolvedPtr sensor = *repo.Resolve("dtmi:example:bench:Sensor;1");
  const json::value value = json::parse(value_json);
  if (!ValidateElementValue(*sensor, path, value).empty()) {
    state.SkipWithError("the benchmark value is invalid");
    return;
  }
  for (auto _ : state) {
    auto errors = ValidateElementValue(*sensor, path, value);
    benchmark::DoNotOptimize(errors);
  }
  state.counters["values"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ValidateDouble(benchmark::State& state) { ValidateBenchmark(state, "temperature", "21.5"); }
BENCHMARK(BM_ValidateDouble);

void BM_ValidateObject(benchmark::State& state) {
  ValidateBenchmark(
      state, "reading",
      R"({"value": 21.5, "unit": "degC", "time": "2024-06-11T12:00:00.250Z", "quality": "good",
          "count": 3})");
}
BENCHMARK(BM_ValidateObject);

// Prints runs as usual and keeps, per benchmark, the mean over its runs (repetitions) of the real
// time per iteration and of its rate counter ("interfaces" or "values" per second, as printed).
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  struct Summary {
    double seconds = 0;  // real time per iteration
    double rate = 0;     // the rate counter, per second
  };

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.error_occurred || r.run_type != Run::RT_Iteration || r.iterations == 0) continue;
      Total& t = totals_[r.run_name.function_name];
      t.seconds += r.real_accumulated_time / static_cast<double>(r.iterations);
      for (const char* counter : {"interfaces", "values"}) {
        if (auto it = r.counters.find(counter); it != r.counters.end()) t.rate += it->second.value;
      }
      ++t.runs;
    }
  }

  std::optional<Summary> Get(const std::string& name) const {
    auto it = totals_.find(name);
    if (it == totals_.end()) return std::nullopt;
    return Summary{it->second.seconds / it->second.runs, it->second.rate / it->second.runs};
  }

 private:
  struct Total {
    double seconds = 0;
    double rate = 0;
    int runs = 0;
  };
  std::map<std::string, Total> totals_;
};

// 33200 -> "33,200".
std::string Grouped(double x) {
  std::string digits = fmt::format("{:.0f}", x);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (std::string problem = LoadRealEstateCore(); !problem.empty()) {
    std::fprintf(stderr, "model_bench: %s\n", problem.c_str());
    return 1;
  }

  SummaryReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  int status = 0;
  const Ontology& o = RealEstateCore();
  auto resolve = reporter.Get("BM_ParseResolveRealEstateCore");
  auto parse = reporter.Get("BM_JsonParseRealEstateCore");
  if (resolve) {
    const double ms = resolve->seconds * 1e3;
    const bool pass = ms < kTargetMs;
    std::string line =
        fmt::format("RealEstateCore: {} interfaces, parse+resolve {:.1f} ms ({} interfaces/s)",
                    o.interfaces, ms, Grouped(resolve->rate));
    if (parse) {
      line += fmt::format("; JSON parse alone {:.1f} ms; ratio {:.2f}x", parse->seconds * 1e3,
                          resolve->seconds / parse->seconds);
    }
    line += fmt::format("; target < {:.0f} ms: {}", kTargetMs, pass ? "PASS" : "FAIL");
    std::printf("%s\n", line.c_str());
    if (!pass) status = 1;
  }
  auto dbl = reporter.Get("BM_ValidateDouble");
  auto obj = reporter.Get("BM_ValidateObject");
  if (dbl || obj) {
    std::string line = "Value validation:";
    if (dbl) line += fmt::format(" double {} values/s", Grouped(dbl->rate));
    if (dbl && obj) line += ";";
    if (obj) line += fmt::format(" Object (5 fields) {} values/s", Grouped(obj->rate));
    std::printf("%s\n", line.c_str());
  }
  return status;
}

}  // namespace
}  // namespace doppel::model

int main(int argc, char** argv) { return doppel::model::Main(argc, argv); }
