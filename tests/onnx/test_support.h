// Hand-built graphs and temporary folders for the onnx writer tests.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qwen2vl/onnx/graph.h"

namespace qwen2vl::onnx::testing {

// A folder from mkdtemp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qwen2vl-onnx-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, error);
    std::filesystem::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline std::vector<std::string> list_names(const std::filesystem::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The weight of the linear test model: W[i][j] = ((i * cols + j) % 17) * 0.125 - 1.
// tests/onnx/python_check_test.cpp recomputes it in numpy; keep the two in step.
inline std::vector<float> pattern_weight(int64_t rows, int64_t cols) {
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    values[static_cast<size_t>(i)] = static_cast<float>(i % 17) * 0.125f - 1.0f;
  }
  return values;
}

// An external float initializer whose bytes live in a shared vector.
inline Initializer float_initializer(const std::string& name, std::vector<float> values, std::vector<int64_t> dims) {
  auto storage = std::make_shared<std::vector<float>>(std::move(values));
  Initializer initializer;
  initializer.name = name;
  initializer.type = DataType::kFloat;
  initializer.dims = std::move(dims);
  initializer.data = storage->data();
  initializer.byte_size = storage->size() * sizeof(float);
  initializer.owner = storage;
  return initializer;
}

// y = reshape(x @ W + b, [-1, 8, 8]) with x [batch_size, 64], W 64x64 in
// external data, b (64 floats) and the shape [-1, 8, 8] inline. The output
// name has dots, like past key/value names.
inline Model linear_model() {
  Model model;
  model.producer_version = "0.1.0-test";
  model.metadata = {{"task", "linear-test"}, {"a_second_key", "kept in this order"}};

  Graph& graph = model.graph;
  graph.name = "linear";
  graph.inputs.push_back(ValueInfo{"x", DataType::kFloat, std::vector<Dim>{Dim::dynamic("batch_size"), Dim::fixed(64)}});
  graph.outputs.push_back(ValueInfo{"past_key_values.0.key", DataType::kFloat,
                                    std::vector<Dim>{Dim::dynamic("batch_size"), Dim::fixed(8), Dim::fixed(8)}});
  graph.initializers.push_back(float_initializer("linear.weight", pattern_weight(64, 64), {64, 64}));

  std::vector<float> bias(64);
  for (size_t j = 0; j < bias.size(); ++j) {
    bias[j] = static_cast<float>(j) * 0.01f;
  }
  graph.inline_initializers["linear.bias"] = TensorValue::floats(bias, {64});
  graph.inline_initializers["reshape.shape"] = TensorValue::int64s({-1, 8, 8}, {3});

  graph.nodes.push_back(Node{"MatMul", {"x", "linear.weight"}, {"matmul_out"}, {}, "matmul", "", "test.py:1"});
  graph.nodes.push_back(Node{"Add", {"matmul_out", "linear.bias"}, {"add_out"}, {}, "add", "", ""});
  graph.nodes.push_back(
      Node{"Reshape", {"add_out", "reshape.shape"}, {"past_key_values.0.key"}, {}, "reshape", "", ""});
  return model;
}

// x [batch_size, 16] multiplied by `count` external 16x16 weights in a chain,
// 1024 bytes each: with alignment 4096 two of them fill 5120 bytes of a file.
inline Model chain_model(int count) {
  Model model;
  Graph& graph = model.graph;
  graph.name = "chain";
  graph.inputs.push_back(ValueInfo{"x", DataType::kFloat, std::vector<Dim>{Dim::dynamic("batch_size"), Dim::fixed(16)}});
  graph.outputs.push_back(ValueInfo{"y", DataType::kFloat, std::vector<Dim>{Dim::dynamic("batch_size"), Dim::fixed(16)}});

  std::string previous = "x";
  for (int k = 0; k < count; ++k) {
    // Scaled identity plus a small pattern, so that values stay near 1.
    std::vector<float> values(16 * 16);
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 16; ++j) {
        values[static_cast<size_t>(i * 16 + j)] = (i == j ? 1.0f : 0.0f) + 0.01f * static_cast<float>((i + j + k) % 5);
      }
    }
    std::string weight = "chain." + std::to_string(k) + ".weight";
    graph.initializers.push_back(float_initializer(weight, values, {16, 16}));
    std::string output = k + 1 == count ? "y" : "chain_" + std::to_string(k);
    graph.nodes.push_back(Node{"MatMul", {previous, weight}, {output}, {}, "matmul_" + std::to_string(k), "", ""});
    previous = output;
  }
  return model;
}

}  // namespace qwen2vl::onnx::testing
