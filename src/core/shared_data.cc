#include "core/shared_data.h"

#include <cstdlib>

namespace doppel::core {

std::filesystem::path SharedDataDir() {
  if (const char* env = std::getenv("DOPPEL_SHARED_DATA"); env != nullptr && *env != '\0') {
    return env;
  }
  return DOPPEL_DEFAULT_SHARED_DATA;
}

}  // namespace doppel::core
