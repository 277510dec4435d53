// Failure classification (see failure_exit.h). By exception type: InvalidInput is the job's
// fault; an I/O error, a corrupt checkpoint, a CUDA or driver fault and anything unexpected
// are the attempt's. Out of memory keeps its own status (LibTorch reports it as c10::Error).
#include "worker/trainer/failure_exit.h"

#include <filesystem>
#include <ios>
#include <new>

#include <c10/util/Exception.h>

#include "common/contracts.h"
#include "worker/failures.h"

namespace sweepd::trainer {
namespace {

// The first line of an exception message (LibTorch appends C++ stack traces).
std::string FirstLine(const std::string& what) { return what.substr(0, what.find('\n')); }

bool Mentions(const std::string& text, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (text.find(w) != std::string::npos) return true;
  }
  return false;
}

FailureExit Crash(const std::string& kind, const std::string& what) {
  return {exit_status::kCrashed, "crash (" + kind + "): " + FirstLine(what)};
}

FailureExit FromLibTorch(const c10::Error& e) {
  const std::string what = e.what_without_backtrace();
  if (Mentions(what, {"out of memory", "Out of memory", "DefaultCPUAllocator: can't allocate"})) {
    return {exit_status::kOutOfMemory, "out of memory: " + FirstLine(what)};
  }
  if (Mentions(what, {"CUDA", "cuda", "CUBLAS", "cuDNN", "CUDNN", "NCCL", "device-side"})) {
    return Crash("CUDA error", what);
  }
  return Crash("LibTorch error", what);
}

}  // namespace

FailureExit ClassifyFailure(const std::exception_ptr& error, bool stopping) {
  if (stopping) return {exit_status::kTerminated, "terminated by signal"};
  try {
    std::rethrow_exception(error);
  } catch (const InvalidInput& e) {
    return {exit_status::kInvalid, "invalid input: " + FirstLine(e.what())};
  } catch (const std::bad_alloc&) {
    return {exit_status::kOutOfMemory, "out of host memory"};
  } catch (const c10::Error& e) {
    return FromLibTorch(e);
  } catch (const IoError& e) {
    return Crash("I/O error", e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    return Crash("I/O error", e.what());
  } catch (const std::ios_base::failure& e) {
    return Crash("I/O error", e.what());
  } catch (const CorruptCheckpoint& e) {
    return Crash("corrupt checkpoint", e.what());
  } catch (const DeviceError& e) {
    return Crash("CUDA error", e.what());
  } catch (const std::exception& e) {
    return Crash("unexpected error", e.what());
  } catch (...) {
    return Crash("unexpected error", "an exception that is not a std::exception");
  }
}

}  // namespace sweepd::trainer
