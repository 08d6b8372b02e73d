// doppel::model — diagnostics reported while reading and resolving DTDL.
#pragma once

#include <string>
#include <vector>

namespace doppel::model {

enum class Severity { kError, kInfo };

// One finding. `code` is stable (see docs/dtdl-errors.md). `pointer` is an RFC 6901 JSON pointer
// into `document`; `dtmi` is the identifier of the nearest enclosing element that has one.
struct Diagnostic {
  Severity severity = Severity::kError;
  std::string code;
  std::string message;
  std::string document;  // source name given by the caller (usually a file path)
  std::string pointer;
  std::string dtmi;
};

using Diagnostics = std::vector<Diagnostic>;

bool HasErrors(const Diagnostics& diagnostics);

// "document:pointer: CODE: message" — the format `doppel model check` prints.
std::string FormatDiagnostic(const Diagnostic& d);

}  // namespace doppel::model
