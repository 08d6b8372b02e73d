#include "sim/fmi/archive.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <zip.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <vector>

namespace doppel::sim::fmi {
namespace fs = std::filesystem;

core::Result<TempDir> TempDir::Create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path base = (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
  std::string pattern = (base / (prefix + "XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return core::Status("FMI_IO_ERROR",
                        fmt::format("cannot create a temporary folder under {}", base.string()));
  }
  return TempDir(fs::path(buffer.data()));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() { Remove(); }

void TempDir::Remove() noexcept {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
  path_.clear();
}

namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

// Entry names are relative paths with '/' separators; refuse anything that could escape.
bool SafeEntryName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos) {
    return false;
  }
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

core::Status ExtractZip(const std::string& zip_path, const fs::path& into) {
  std::error_code ec;
  if (!fs::is_regular_file(zip_path, ec)) {
    return {"FMI_FILE_NOT_FOUND", fmt::format("{}: no such file", zip_path)};
  }
  int error = 0;
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open(zip_path.c_str(), ZIP_RDONLY, &error));
  if (!archive) {
    zip_error_t err;
    zip_error_init_with_code(&err, error);
    std::string reason = zip_error_strerror(&err);
    zip_error_fini(&err);
    return {
        "FMI_BAD_ARCHIVE",
        fmt::format("{}: not a readable zip archive (FMUs are zip files): {}", zip_path, reason)};
  }
  zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  std::vector<char> buffer(1 << 16);
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* raw_name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
    if (raw_name == nullptr) {
      return {"FMI_BAD_ARCHIVE", fmt::format("{}: entry {} has no readable name: {}", zip_path, i,
                                             zip_strerror(archive.get()))};
    }
    std::string name = raw_name;
    if (!SafeEntryName(name)) {
      return {
          "FMI_BAD_ARCHIVE",
          fmt::format("{}: entry '{}' would be extracted outside the FMU folder", zip_path, name)};
    }
    fs::path target = into / name;
    if (name.back() == '/') {
      fs::create_directories(target, ec);
      if (ec) return {"FMI_IO_ERROR", fmt::format("{}: {}", target.string(), ec.message())};
      continue;
    }
    fs::create_directories(target.parent_path(), ec);
    if (ec) return {"FMI_IO_ERROR", fmt::format("{}: {}", target.string(), ec.message())};
    std::unique_ptr<zip_file_t, ZipFileCloser> file(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!file) {
      return {"FMI_BAD_ARCHIVE", fmt::format("{}: cannot read entry '{}': {}", zip_path, name,
                                             zip_strerror(archive.get()))};
    }
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    if (!out) return {"FMI_IO_ERROR", fmt::format("cannot write {}", target.string())};
    for (;;) {
      zip_int64_t n = zip_fread(file.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return {"FMI_BAD_ARCHIVE", fmt::format("{}: entry '{}' is corrupt: {}", zip_path, name,
                                               zip_file_strerror(file.get()))};
      }
      if (n == 0) break;
      out.write(buffer.data(), static_cast<std::streamsize>(n));
    }
    out.close();
    if (!out) return {"FMI_IO_ERROR", fmt::format("cannot write {}", target.string())};
  }
  return {};
}

}  // namespace doppel::sim::fmi
