#include "core/status.h"

namespace doppel::core {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = code() + ": " + message();
  if (!pointer().empty()) s += " (at " + pointer() + ")";
  return s;
}

}  // namespace doppel::core
