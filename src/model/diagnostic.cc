#include "model/diagnostic.h"

#include <algorithm>

namespace doppel::model {

bool HasErrors(const Diagnostics& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

std::string FormatDiagnostic(const Diagnostic& d) {
  std::string s = d.document.empty() ? std::string("<input>") : d.document;
  s += ':';
  s += d.pointer.empty() ? "/" : d.pointer;
  s += ": ";
  if (d.severity == Severity::kInfo) s += "note: ";
  s += d.code;
  s += ": ";
  s += d.message;
  return s;
}

}  // namespace doppel::model
