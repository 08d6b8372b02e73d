// doppel::sim::fmi — the FMU archive on disk: a private temporary folder and the zip extraction
// into it. Internal to sim/fmi.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"

namespace doppel::sim::fmi {

// A folder created with mkdtemp under $TMPDIR (or /tmp), removed with everything in it when the
// object is destroyed, whatever path the caller leaves by.
class TempDir {
 public:
  // FMI_IO_ERROR when the folder cannot be created.
  static core::Result<TempDir> Create(const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void Remove() noexcept;
  std::filesystem::path path_;
};

// Extracts every entry of the zip archive `zip_path` under `into`. Errors:
//   FMI_FILE_NOT_FOUND  no such file;
//   FMI_BAD_ARCHIVE     not a zip archive, truncated or corrupt (libzip's reason), or an entry
//                       whose name would land outside `into` (absolute, "..");
//   FMI_IO_ERROR        writing the extracted files failed.
core::Status ExtractZip(const std::string& zip_path, const std::filesystem::path& into);

}  // namespace doppel::sim::fmi
