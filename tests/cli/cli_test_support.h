// Temporary folders, file helpers and a runner for the qwen2vl-export
// executable, shared by the tests in tests/cli.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qwen2vl/util/subprocess.h"

namespace qwen2vl::cli_test {

// A folder from mkdtemp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qwen2vl-cli-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Names in `folder`, sorted, for comparisons that show leftovers in a failure.
inline std::vector<std::string> list_names(const std::filesystem::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The environment variable `name`, else `fallback` (a compile definition set
// by tests/cli/CMakeLists.txt).
inline std::string environment_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

inline std::string qwen2vl_exe() { return environment_or("QWEN2VL_EXE", QWEN2VL_DEFAULT_EXE); }
inline std::string python_exe() { return environment_or("QWEN2VL_PYTHON", QWEN2VL_DEFAULT_PYTHON); }
inline std::string fixture_dir() { return environment_or("QWEN2VL_FIXTURE_DIR", QWEN2VL_DEFAULT_FIXTURE_DIR); }

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Run qwen2vl-export with `args`.
inline CliResult run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {qwen2vl_exe()};
  argv.insert(argv.end(), args.begin(), args.end());

  ProcessOptions options;
  options.timeout = std::chrono::minutes(5);
  const ProcessResult result = run_process(argv, options);
  EXPECT_FALSE(result.timed_out) << "qwen2vl-export timed out";
  EXPECT_EQ(result.signal, 0) << "qwen2vl-export was killed by signal " << result.signal << "\nstderr:\n"
                              << result.stderr_text;
  return {result.exit_code, result.stdout_text, result.stderr_text};
}

inline size_t count_lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace qwen2vl::cli_test
