#include "exit_codes.h"

#include <cstdio>

#include "qwen2vl/error.h"

namespace qwen2vl::cli {
namespace {

struct ExitCodeHelp {
  ExitCode code;
  const char* meaning;
};

constexpr ExitCodeHelp kExitCodes[] = {
    {ExitCode::kSuccess, "success"},
    {ExitCode::kInternal, "internal error, a bug in qwen2vl-export: re-run with --log-level debug and report it"},
    {ExitCode::kUsage, "invalid command line, or OUTPUT_DIR exists and is not empty without --force"},
    {ExitCode::kInvalidInput, "missing or malformed model, config or manifest"},
    {ExitCode::kUnsupported, "valid input that this version cannot export (operator, model type, opset)"},
    {ExitCode::kValidationMismatch, "ONNX Runtime and LibTorch outputs differ by more than --atol"},
    {ExitCode::kIo, "a read or write failed (disk full, permissions)"},
    {ExitCode::kMissingDependency, "a runtime dependency (Python, onnxruntime) is missing"},
    {ExitCode::kBatchRowsFailed, "batch: one or more rows failed, the others finished; see the batch report"},
    {ExitCode::kInterrupted, "interrupted by SIGINT or SIGTERM; partial output was removed"},
};

}  // namespace

std::string exit_code_help() {
  std::string text = "Exit codes:\n";
  for (const auto& entry : kExitCodes) {
    char line[160];
    std::snprintf(line, sizeof(line), "  %-5d%s\n", static_cast<int>(entry.code), entry.meaning);
    text += line;
  }
  return text;
}

}  // namespace qwen2vl::cli
