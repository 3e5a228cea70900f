// Errors that reach the user, each with the process exit code it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace qwen2vl {

// Process exit codes. They are part of the command-line interface: scripts and
// CI pipelines act on them, so a value never changes meaning between versions.
enum class ExitCode : int {
  kSuccess = 0,
  kInternal = 1,            // a bug in qwen2vl-export: please report it
  kUsage = 2,               // bad command-line arguments
  kInvalidInput = 3,        // missing or malformed model, config or manifest
  kUnsupported = 4,         // valid input this version cannot export (op, model type, opset)
  kValidationMismatch = 5,  // the exported graph disagrees with LibTorch beyond --atol
  kIo = 6,                  // a read or write failed (disk full, permissions, ...)
  kMissingDependency = 7,   // a runtime dependency (Python, onnxruntime) is missing
  kBatchRowsFailed = 8,     // `batch`: at least one row failed; the others ran to the end
  kInterrupted = 130,       // SIGINT or SIGTERM; output was cleaned up
};

// An error with a one-line message for the user and the exit code it maps to.
// The message names the value at fault and what to do about it.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

inline Error invalid_input(const std::string& message) { return Error(ExitCode::kInvalidInput, message); }
inline Error unsupported(const std::string& message) { return Error(ExitCode::kUnsupported, message); }
inline Error io_error(const std::string& message) { return Error(ExitCode::kIo, message); }

}  // namespace qwen2vl
