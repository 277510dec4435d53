// The failures sweep-train tells apart by exception type, so that `sweep-train run` exits with
// the right status (common/contracts.h, docs/worker.md). Only InvalidInput means the job can
// never succeed as written (exit_status::kInvalid, not retried); the others, and every other
// exception, are crashes of the attempt (exit_status::kCrashed), which sweepd retries.
// Torch-free: thrown from every part of the trainer.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sweepd {

// The job's input is wrong: its configuration, its data, its model or tokenizer files, an
// adapter folder. Thrown where that input is read; the message names the file, line or field.
class InvalidInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The machine could not read or write a file it should be able to (a full disk, EIO).
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The checkpoint to resume from cannot be read back; the folder has been set aside so that the
// next attempt resumes from the checkpoint before it.
class CorruptCheckpoint : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The accelerator or its driver failed (a device this build should see is gone).
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "PATH: WHAT: <strerror(errno)>" for an IoError just after a failed system call or stream.
inline std::string IoErrorText(const std::string& path, const std::string& what) {
  const int err = errno;
  return path + ": " + what + (err != 0 ? std::string(": ") + std::strerror(err) : std::string());
}

}  // namespace sweepd
