// doppel::core — where the shared third-party data (DTDL ontologies, C-MAPSS, job-shop
// instances) lives: $DOPPEL_SHARED_DATA if set, else the build's default (../shared/data next to
// the source tree). Read in place; never copied.
#pragma once

#include <filesystem>

namespace doppel::core {

std::filesystem::path SharedDataDir();

}  // namespace doppel::core
