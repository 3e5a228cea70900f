// Run an exported model with ONNX Runtime through Python.
//
// The model runs in a separate Python process, so this binary links neither
// onnxruntime nor a second copy of protobuf beside LibTorch's. The inputs go
// to .npy files in a temporary folder, the runner script (tools/ort_run.py,
// embedded in this binary at build time) runs onnxruntime on them, and the
// outputs come back as .npy files.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "qwen2vl/validate/named_tensors.h"

namespace qwen2vl::validate {

struct OrtRunOptions {
  // The Python interpreter with numpy and onnxruntime. Empty: the environment
  // variable QWEN2VL_PYTHON, then the QWEN2VL_PYTHON that CMake was configured
  // with (when that file exists), then `python3` from PATH.
  std::filesystem::path python;
  // Run onnx.checker.check_model(full_check=True) before onnxruntime.
  bool check_model = false;
  // ONNX Runtime intra-op threads. 1 gives reproducible results.
  int threads = 1;
  // Folder for the temporary working folder. Empty: the system temp folder.
  std::filesystem::path temp_root;
  // Keep the working folder (inputs, outputs, runner script) for debugging.
  bool keep_temp_dir = false;
  // Kill the runner after this long. nullopt: no limit.
  std::optional<std::chrono::milliseconds> timeout;
};

// A Python interpreter and where its path came from, for messages: "the
// python option", "the QWEN2VL_PYTHON environment variable", "QWEN2VL_PYTHON
// of the build configuration" or "the default".
struct PythonInterpreter {
  std::string path;
  std::string source;
};

// Picks the interpreter as described at OrtRunOptions::python.
PythonInterpreter resolve_python(const std::filesystem::path& explicit_python);

// The embedded text of tools/ort_run.py.
std::string_view ort_runner_script();

// Runs `model_path` on `inputs` and returns the outputs in the model's output
// order. The temporary folder is removed afterwards unless keep_temp_dir is set.
//
// Throws qwen2vl::Error with
// - kInvalidInput when the model file is missing, or an input is missing or
//   does not match the model (name, dtype, shape).
// - kMissingDependency when the interpreter, numpy, onnxruntime or (with
//   check_model) onnx is missing. The message contains the install command.
// - kInternal when onnx.checker rejects the model, onnxruntime fails to load
//   or run it, or the runner times out or crashes.
// - kIo when the temporary folder or a .npy file cannot be written.
// - kUnsupported when an input has a dtype that .npy cannot store (bfloat16).
NamedTensors run_onnxruntime(const std::filesystem::path& model_path, const NamedTensors& inputs,
                             const OrtRunOptions& options = {});

}  // namespace qwen2vl::validate
