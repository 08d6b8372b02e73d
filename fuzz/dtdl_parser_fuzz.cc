// libFuzzer target for the DTDL reader, resolver and value validator.
//
// Input layout (NUL-separated, every part optional after the first):
//   <document 1> [ 0x00 <document 2> [ 0x00 <value tail> ] ]
// Document 1 (and document 2 when non-empty) form one batch for ModelRepository::Check. When the
// batch is valid it is also added to a fresh repository, and every Property/Telemetry (also those
// inside Components) and every Command of every resolved Interface is validated against a set of
// probe values plus a value parsed from the tail. Splitting on NUL keeps the documents themselves
// intact (NUL is never valid inside JSON text), so the fuzzer can grow a model and a value
// independently.
//
// Besides sanitizer findings, the target aborts when the library breaks a documented contract:
// a diagnostic without a code or message, Check and Add disagreeing on the same batch, a failed
// Add that changed the repository, or an added model that does not resolve.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "model/model.h"

namespace doppel::model {
namespace {

namespace json = boost::json;

// Aborts with a message: libFuzzer records the input as a crash.
[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "dtdl_parser_fuzz: contract violated: %s\n", what);
  std::abort();
}

// One value of every JSON kind, and the shapes the complex schemas expect, so that a valid
// model from the corpus reaches every branch of ValidateValue without needing a value tail.
constexpr const char* kProbeValues[] = {
    "null",
    "true",
    "0",
    "-1",
    "2147483648",
    "9223372036854775807",
    "18446744073709551615",
    "1.5",
    "3.5e38",
    "1e308",
    "\"\"",
    "\"x\"",
    "\"2023-01-31\"",
    "\"12:30:00Z\"",
    "\"2023-01-31T12:30:00.5+01:00\"",
    "\"P1Y2M3DT4H5M6.5S\"",
    "[]",
    "[1,\"a\",null]",
    "{}",
    "{\"a\":1,\"b\":{\"c\":[2]}}",
    "{\"type\":\"Point\",\"coordinates\":[1,2]}",
    "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
};

const std::vector<json::value>& ProbeValues() {
  static const std::vector<json::value> values = [] {
    std::vector<json::value> v;
    for (const char* text : kProbeValues) v.push_back(json::parse(text));
    return v;
  }();
  return values;
}

void CheckDiagnostics(const Diagnostics& diags) {
  for (const auto& d : diags) {
    if (d.code.empty() || d.message.empty()) Violation("diagnostic without code or message");
    // Formatting and JSON views run on every diagnostic the API returns.
    (void)FormatDiagnostic(d);
    (void)DiagnosticToJson(d);
  }
}

void CheckValueErrors(const ValueErrors& errors) {
  for (const auto& e : errors) {
    if (e.ok() || e.message().empty()) Violation("value error without code or message");
  }
}

// Validates `value` against every element of `iface` that takes data.
void ValidateEverything(const ResolvedInterface& iface, const json::value& value) {
  CheckValueErrors(ValidateElementValue(iface, "no such element", value));
  for (const auto& rc : iface.contents()) {
    const Content& c = *rc.content;
    switch (c.kind) {
      case ContentKind::kProperty:
      case ContentKind::kTelemetry:
        CheckValueErrors(ValidateElementValue(iface, c.name, value));
        break;
      case ContentKind::kCommand:
        CheckValueErrors(ValidateCommandRequest(iface, c.name, value));
        break;
      case ContentKind::kComponent:
        if (const ResolvedInterface* comp = iface.ComponentInterface(c.name)) {
          for (const auto& inner : comp->contents()) {
            CheckValueErrors(
                ValidateElementValue(iface, c.name + "/" + inner.content->name, value));
          }
        }
        CheckValueErrors(ValidateElementValue(iface, c.name + "/", value));
        break;
      case ContentKind::kRelationship:
        CheckValueErrors(ValidateElementValue(iface, c.name, value));
        break;
    }
  }
}

void FuzzOne(std::string_view input) {
  // Split into document 1, document 2 and the value tail.
  std::vector<SourceDocument> docs;
  std::string_view tail;
  bool has_tail = false;
  std::size_t nul = input.find('\0');
  docs.push_back({"doc0", std::string(input.substr(0, nul))});
  if (nul != std::string_view::npos) {
    std::string_view rest = input.substr(nul + 1);
    std::size_t nul2 = rest.find('\0');
    if (nul2 != std::string_view::npos) {
      tail = rest.substr(nul2 + 1);
      has_tail = true;
      rest = rest.substr(0, nul2);
    }
    // An empty second part means "no second document", so one document plus a tail is possible.
    if (!rest.empty()) docs.push_back({"doc1", std::string(rest)});
  }

  ModelRepository checker;
  ModelRepository::AddResult checked = checker.Check(docs);
  CheckDiagnostics(checked.diagnostics);
  if (checker.size() != 0) Violation("Check changed the repository");

  ModelRepository repo;
  ModelRepository::AddResult added = repo.Add(docs);
  CheckDiagnostics(added.diagnostics);
  if (checked.ok() != added.ok()) Violation("Check and Add disagree on the same batch");
  if (!added.ok()) {
    if (repo.size() != 0 || !added.added.empty()) Violation("a failed Add changed the repository");
    return;
  }
  if (repo.size() != added.added.size()) Violation("Add did not add every top-level model");

  // The value from the tail: its JSON if it parses, else the raw bytes as a JSON string (which
  // drives the date/time/duration format checks with arbitrary text).
  std::vector<json::value> tail_values;
  if (has_tail) {
    auto parsed = core::ParseJson(tail);
    tail_values.push_back(parsed.ok() ? std::move(*parsed) : json::value(json::string(tail)));
    (void)IsValidDate(tail);
    (void)IsValidTime(tail);
    (void)IsValidDateTime(tail);
    (void)IsValidDuration(tail);
  }

  for (const std::string& id : added.added) {
    auto resolved = repo.Resolve(id);
    if (!resolved.ok()) Violation("an added model does not resolve");
    const ResolvedInterface& iface = **resolved;
    (void)ResolvedToJson(iface);
    for (const auto& v : ProbeValues()) ValidateEverything(iface, v);
    for (const auto& v : tail_values) ValidateEverything(iface, v);
  }
}

}  // namespace
}  // namespace doppel::model

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  doppel::model::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
