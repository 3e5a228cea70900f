// Temporary folders and the test interpreter for the validate tests.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace qwen2vl::validate::testing {

// A folder from mkdtemp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qwen2vl-validate-test-XXXXXX").string();
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

inline std::vector<std::string> list_names(const std::filesystem::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The interpreter with numpy, onnx and onnxruntime that ctest passes in
// QWEN2VL_PYTHON; empty when the variable is not set.
inline std::string test_python() {
  const char* python = std::getenv("QWEN2VL_PYTHON");
  return python == nullptr ? "" : python;
}

}  // namespace qwen2vl::validate::testing

// Skips the current test when QWEN2VL_PYTHON is not set (outside ctest).
#define QWEN2VL_REQUIRE_PYTHON()                                          \
  do {                                                                    \
    if (::qwen2vl::validate::testing::test_python().empty()) {            \
      GTEST_SKIP() << "QWEN2VL_PYTHON is not set; run the test via ctest"; \
    }                                                                     \
  } while (false)
