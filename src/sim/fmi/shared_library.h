// doppel::sim::fmi — a dlopen handle that closes itself. Internal to sim/fmi.
#pragma once

#include <dlfcn.h>

#include <string>
#include <utility>

#include "core/status.h"

namespace doppel::sim::fmi {

class SharedLibrary {
 public:
  // RTLD_NOW: a missing dependency fails here, not in the middle of a simulation; RTLD_LOCAL:
  // two FMUs exporting the same fmi2* names never see each other's symbols.
  // FMI_LOAD_FAILED with dlerror()'s text.
  static core::Result<SharedLibrary> Open(const std::string& path) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      return core::Status("FMI_LOAD_FAILED",
                          "cannot load " + path + ": " + (why != nullptr ? why : "unknown"));
    }
    return SharedLibrary(handle);
  }
  SharedLibrary(SharedLibrary&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  SharedLibrary& operator=(SharedLibrary&& other) noexcept {
    if (this != &other) {
      Close();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary() { Close(); }

  // The address of `name`, or nullptr.
  void* Symbol(const char* name) const { return dlsym(handle_, name); }

 private:
  explicit SharedLibrary(void* handle) : handle_(handle) {}
  void Close() noexcept {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = nullptr;
  }
  void* handle_ = nullptr;
};

}  // namespace doppel::sim::fmi
