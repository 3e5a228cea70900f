#include "qwen2vl/validate/onnxruntime.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/subprocess.h"
#include "qwen2vl/validate/npy.h"

#ifndef QWEN2VL_DEFAULT_PYTHON
#define QWEN2VL_DEFAULT_PYTHON ""
#endif

namespace qwen2vl::validate {
namespace detail {
// Generated at build time from tools/ort_run.py (see embed_file.cmake).
extern const char kOrtRunScript[];
extern const size_t kOrtRunScriptSize;
}  // namespace detail

namespace {

// Exit codes of tools/ort_run.py; see its docstring.
constexpr int kRunnerModelFailed = 1;
constexpr int kRunnerUsage = 2;
constexpr int kRunnerInvalidInput = 3;
constexpr int kRunnerIo = 6;
constexpr int kRunnerMissingDependency = 7;

// A folder from mkdtemp, removed with its contents on destruction unless kept,
// and by the interrupt handler on SIGINT or SIGTERM, which runs no destructors.
class TempDir {
 public:
  TempDir(const std::filesystem::path& root, bool keep) : keep_(keep) {
    std::filesystem::path base = root;
    if (base.empty()) {
      std::error_code error;
      base = std::filesystem::temp_directory_path(error);
      if (error) {
        base = "/tmp";
      }
    }
    std::string pattern = (base / "qwen2vl-ort-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw io_error("creating a temporary folder in " + base.string() + " failed: " + std::strerror(errno) +
                     "; set TMPDIR to a writable folder");
    }
    path_ = pattern;
    if (!keep_) {
      cleanup_.reset(path_);
    }
  }

  ~TempDir() {
    if (keep_) {
      spdlog::info("Kept the ONNX Runtime working folder {}", path_.string());
      return;
    }
    std::error_code error;
    std::filesystem::remove_all(path_, error);
    if (error) {
      spdlog::warn("Could not remove the temporary folder {}: {}", path_.string(), error.message());
    }
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool keep_;
  ScopedCleanupPath cleanup_;
};

void check_input_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string("/\\\n\0", 4)) != std::string::npos) {
    throw invalid_input("input name '" + name +
                        "' cannot be used as a .npy file name (empty, or contains '/', '\\', a newline or NUL)");
  }
}

void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream file(path, std::ios::binary);
  file.write(text.data(), static_cast<std::streamsize>(text.size()));
  file.close();
  if (!file) {
    throw io_error("writing " + path.string() + " failed: " + std::strerror(errno));
  }
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) {
    throw Error(ExitCode::kInternal, "the ONNX Runtime runner exited 0 but wrote no output list " + path.string());
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    lines.push_back(line);
  }
  return lines;
}

// The runner's own message: the last non-empty stderr line. A Python
// traceback also ends with its most useful line.
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n ");
  if (end == std::string::npos) {
    return "";
  }
  size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, end - start + 1);
}

[[noreturn]] void throw_runner_failure(const ProcessResult& result, const PythonInterpreter& python,
                                       const std::filesystem::path& model_path) {
  std::string message = last_line(result.stderr_text);
  if (!result.stderr_text.empty()) {
    spdlog::debug("ONNX Runtime runner stderr:\n{}", result.stderr_text);
  }
  if (result.timed_out) {
    throw Error(ExitCode::kInternal, "running ONNX Runtime on " + model_path.string() +
                                         " timed out; raise OrtRunOptions::timeout for large models");
  }
  if (result.signal != 0) {
    throw Error(ExitCode::kInternal, "the ONNX Runtime runner (" + python.path + ") was killed by signal " +
                                         std::to_string(result.signal) + " (" + strsignal(result.signal) +
                                         ") while running " + model_path.string());
  }
  switch (result.exit_code) {
    case kRunnerInvalidInput:
      throw invalid_input(message);
    case kRunnerMissingDependency:
      throw Error(ExitCode::kMissingDependency, message);
    case kRunnerIo:
      throw io_error(message);
    case kRunnerModelFailed:
    case kRunnerUsage:
    default:
      if (message.empty()) {
        message = "no message on stderr";
      }
      throw Error(ExitCode::kInternal, "the ONNX Runtime runner (" + python.path + ") exited with status " +
                                           std::to_string(result.exit_code) + ": " + message);
  }
}

}  // namespace

PythonInterpreter resolve_python(const std::filesystem::path& explicit_python) {
  if (!explicit_python.empty()) {
    return {explicit_python.string(), "the python option"};
  }
  if (const char* from_environment = std::getenv("QWEN2VL_PYTHON"); from_environment && *from_environment) {
    return {from_environment, "the QWEN2VL_PYTHON environment variable"};
  }
  const std::string configured = QWEN2VL_DEFAULT_PYTHON;
  std::error_code error;
  if (!configured.empty() && std::filesystem::exists(configured, error)) {
    return {configured, "QWEN2VL_PYTHON of the build configuration"};
  }
  return {"python3", "the default"};
}

std::string_view ort_runner_script() { return std::string_view(detail::kOrtRunScript, detail::kOrtRunScriptSize); }

NamedTensors run_onnxruntime(const std::filesystem::path& model_path, const NamedTensors& inputs,
                             const OrtRunOptions& options) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(model_path, error)) {
    throw invalid_input("ONNX model " + model_path.string() + " not found");
  }
  const std::filesystem::path absolute_model = std::filesystem::absolute(model_path);
  const PythonInterpreter python = resolve_python(options.python);

  TempDir work(options.temp_root, options.keep_temp_dir);
  const std::filesystem::path in_dir = work.path() / "inputs";
  const std::filesystem::path out_dir = work.path() / "outputs";
  const std::filesystem::path script = work.path() / "ort_run.py";
  const std::filesystem::path output_list = work.path() / "output_names.txt";
  for (const std::filesystem::path& folder : {in_dir, out_dir}) {
    if (!std::filesystem::create_directory(folder, error) || error) {
      throw io_error("creating " + folder.string() + " failed: " + error.message());
    }
  }

  std::set<std::string> seen;
  for (const auto& [name, tensor] : inputs) {
    check_input_name(name);
    if (!seen.insert(name).second) {
      throw invalid_input("input '" + name + "' is given twice");
    }
    write_npy(in_dir / (name + ".npy"), tensor);
  }
  write_file(script, ort_runner_script());

  std::vector<std::string> argv = {python.path, script.string(), absolute_model.string(), in_dir.string(),
                                   out_dir.string(), "--threads", std::to_string(options.threads),
                                   "--output-list", output_list.string()};
  if (options.check_model) {
    argv.push_back("--check");
  }
  spdlog::debug("Running ONNX Runtime on {} with {} ({})", absolute_model.string(), python.path, python.source);

  ProcessOptions process_options;
  process_options.timeout = options.timeout;
  process_options.environment = {{"PYTHONDONTWRITEBYTECODE", "1"}};
  ProcessResult result;
  try {
    result = run_process(argv, process_options);
  } catch (const Error& spawn_error) {
    if (spawn_error.code() != ExitCode::kMissingDependency) {
      throw;
    }
    throw Error(ExitCode::kMissingDependency,
                "Python interpreter '" + python.path + "' (from " + python.source + ") cannot be run: " +
                    spawn_error.what() +
                    ". Install Python 3 with numpy and onnxruntime, or set QWEN2VL_PYTHON to such an interpreter");
  }
  if (!result.succeeded()) {
    throw_runner_failure(result, python, absolute_model);
  }
  if (!result.stderr_text.empty()) {
    spdlog::debug("ONNX Runtime runner stderr:\n{}", result.stderr_text);
  }

  NamedTensors outputs;
  for (const std::string& name : read_lines(output_list)) {
    outputs.emplace_back(name, read_npy(out_dir / (name + ".npy")));
  }
  return outputs;
}

}  // namespace qwen2vl::validate
