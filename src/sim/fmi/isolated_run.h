// doppel::sim::fmi — running FMU code in a child process, so that an FMU that crashes
// (segfault, abort, a call to exit) becomes an error instead of taking doppel down.
//
// RunIsolated forks; the child runs `body` with a CallSite in memory shared with the parent
// (the units write the FMI function they call and the time into it: OpenOptions::call_site),
// sends its Status back through a pipe and ends with _exit. The parent waits. What the child
// writes to its file descriptors (stdout, an output file) is its own business: the CLI lets the
// child write the CSV directly, so nothing is copied.
//
// Results: the body's Status; or FMI_CRASHED "the FMU crashed (SIGSEGV) in fmi2DoStep at t=0.5"
// when the child died from a signal, or "... exited with code N ..." when it ended without
// reporting (an FMU calling exit()); FMI_IO_ERROR when the process cannot be forked.
// The child runs with TMPDIR set to a folder the parent creates and removes afterwards, so the
// FMU extracted by a crashed child does not stay on disk.
// The child restores the default action of SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT so that
// a sanitizer's handler does not turn a crash into an ordinary exit.
#pragma once

#include <functional>

#include "core/status.h"
#include "sim/fmi/fmu.h"

namespace doppel::sim::fmi {

core::Status RunIsolated(const std::function<core::Status(CallSite*)>& body);

}  // namespace doppel::sim::fmi
