#include "core/status.h"

namespace doppel::core {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = code_ + ": " + message_;
  if (!pointer_.empty()) s += " (at " + pointer_ + ")";
  return s;
}

}  // namespace doppel::core
