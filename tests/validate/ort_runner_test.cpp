#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "qwen2vl/error.h"
#include "qwen2vl/onnx/writer.h"
#include "qwen2vl/validate/compare.h"
#include "qwen2vl/validate/onnxruntime.h"
#include "test_support.h"

namespace qwen2vl::validate {
namespace {

using testing::list_names;
using testing::TempDir;
using testing::test_python;

// An external initializer that reads straight from a LibTorch tensor, kept
// alive through the owner handle.
onnx::Initializer initializer_from(const std::string& name, const torch::Tensor& tensor) {
  auto owned = std::make_shared<torch::Tensor>(tensor.contiguous());
  onnx::Initializer initializer;
  initializer.name = name;
  initializer.type = onnx::DataType::kFloat;
  initializer.dims = owned->sizes().vec();
  initializer.data = owned->data_ptr();
  initializer.byte_size = static_cast<size_t>(owned->numel()) * owned->element_size();
  initializer.owner = owned;
  return initializer;
}

struct LinearFixture {
  torch::Tensor weight;
  torch::Tensor bias;
};

// Writes y = x @ W + b (x [batch_size, 8], W 8x5 external, b inline) and a
// second output, the int64 shape of y, to `path`. The names have dots.
LinearFixture write_linear_model(const std::filesystem::path& path) {
  torch::manual_seed(7);
  LinearFixture fixture{torch::randn({8, 5}), torch::randn({5})};

  onnx::Model model;
  onnx::Graph& graph = model.graph;
  graph.inputs.push_back({"input.x", onnx::DataType::kFloat,
                          std::vector<onnx::Dim>{onnx::Dim::dynamic("batch_size"), onnx::Dim::fixed(8)}});
  graph.outputs.push_back({"logits.0", onnx::DataType::kFloat,
                           std::vector<onnx::Dim>{onnx::Dim::dynamic("batch_size"), onnx::Dim::fixed(5)}});
  graph.outputs.push_back({"logits.0.shape", onnx::DataType::kInt64, std::vector<onnx::Dim>{onnx::Dim::fixed(2)}});
  graph.initializers.push_back(initializer_from("linear.weight", fixture.weight));
  std::vector<float> bias(fixture.bias.data_ptr<float>(), fixture.bias.data_ptr<float>() + 5);
  graph.inline_initializers["linear.bias"] = onnx::TensorValue::floats(bias, {5});
  graph.nodes.push_back({"MatMul", {"input.x", "linear.weight"}, {"matmul"}, {}, "matmul", "", ""});
  graph.nodes.push_back({"Add", {"matmul", "linear.bias"}, {"logits.0"}, {}, "add", "", ""});
  graph.nodes.push_back({"Shape", {"logits.0"}, {"logits.0.shape"}, {}, "shape", "", ""});
  onnx::write_model(model, path);
  return fixture;
}

template <typename Action>
Error expect_error(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected a qwen2vl::Error";
  return Error(ExitCode::kSuccess, "no error");
}

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

TEST(OrtRunner, LinearModelMatchesLibTorch) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir model_dir;
  TempDir work_root;
  const auto model_path = model_dir.path() / "linear.onnx";
  LinearFixture fixture = write_linear_model(model_path);

  torch::Tensor x = torch::randn({3, 8});
  OrtRunOptions options;
  options.check_model = true;
  options.temp_root = work_root.path();
  NamedTensors outputs = run_onnxruntime(model_path, {{"input.x", x}}, options);

  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].first, "logits.0");
  EXPECT_EQ(outputs[1].first, "logits.0.shape");
  EXPECT_EQ(outputs[1].second.scalar_type(), torch::kInt64);

  NamedTensors expected = {{"logits.0", torch::matmul(x, fixture.weight) + fixture.bias},
                           {"logits.0.shape", torch::tensor({3, 5}, torch::kInt64)}};
  std::vector<ComparisonRow> rows = compare_outputs(expected, outputs, 1e-5);
  EXPECT_TRUE(all_passed(rows)) << format_comparison_table(rows, 1e-5);
  EXPECT_TRUE(list_names(work_root.path()).empty()) << "the temporary folder was not removed";
}

TEST(OrtRunner, KeepTempDirKeepsFiles) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir model_dir;
  TempDir work_root;
  write_linear_model(model_dir.path() / "linear.onnx");
  OrtRunOptions options;
  options.temp_root = work_root.path();
  options.keep_temp_dir = true;
  run_onnxruntime(model_dir.path() / "linear.onnx", {{"input.x", torch::zeros({1, 8})}}, options);

  std::vector<std::string> kept = list_names(work_root.path());
  ASSERT_EQ(kept.size(), 1u);
  const auto folder = work_root.path() / kept[0];
  EXPECT_TRUE(std::filesystem::exists(folder / "inputs" / "input.x.npy"));
  EXPECT_TRUE(std::filesystem::exists(folder / "outputs" / "logits.0.npy"));
  EXPECT_TRUE(std::filesystem::exists(folder / "ort_run.py"));
}

TEST(OrtRunner, MissingInputThrowsInvalidInput) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir model_dir;
  TempDir work_root;
  write_linear_model(model_dir.path() / "linear.onnx");
  OrtRunOptions options;
  options.temp_root = work_root.path();

  Error error = expect_error([&] { run_onnxruntime(model_dir.path() / "linear.onnx", {}, options); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput) << error.what();
  EXPECT_TRUE(contains(error.what(), "input 'input.x' is missing")) << error.what();
  EXPECT_TRUE(list_names(work_root.path()).empty()) << "the temporary folder was not removed after a failure";
}

TEST(OrtRunner, MismatchedInputsThrowInvalidInput) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir model_dir;
  const auto model_path = model_dir.path() / "linear.onnx";
  write_linear_model(model_path);

  Error dtype = expect_error([&] { run_onnxruntime(model_path, {{"input.x", torch::zeros({2, 8}, torch::kFloat64)}}); });
  EXPECT_EQ(dtype.code(), ExitCode::kInvalidInput);
  EXPECT_TRUE(contains(dtype.what(), "must be float32 but")) << dtype.what();

  Error shape = expect_error([&] { run_onnxruntime(model_path, {{"input.x", torch::zeros({2, 7})}}); });
  EXPECT_EQ(shape.code(), ExitCode::kInvalidInput);
  EXPECT_TRUE(contains(shape.what(), "size 8 on axis 1")) << shape.what();

  Error extra = expect_error(
      [&] { run_onnxruntime(model_path, {{"input.x", torch::zeros({2, 8})}, {"attention_mask", torch::ones({2})}}); });
  EXPECT_EQ(extra.code(), ExitCode::kInvalidInput);
  EXPECT_TRUE(contains(extra.what(), "attention_mask.npy")) << extra.what();

  Error name = expect_error([&] { run_onnxruntime(model_path, {{"../x", torch::zeros({2, 8})}}); });
  EXPECT_EQ(name.code(), ExitCode::kInvalidInput);
}

TEST(OrtRunner, MissingModelThrowsInvalidInput) {
  TempDir dir;
  Error error = expect_error([&] { run_onnxruntime(dir.path() / "none.onnx", {}); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_TRUE(contains(error.what(), "none.onnx")) << error.what();
}

TEST(OrtRunner, MissingInterpreterThrowsMissingDependency) {
  TempDir model_dir;
  TempDir work_root;
  write_linear_model(model_dir.path() / "linear.onnx");
  OrtRunOptions options;
  options.python = "/nonexistent/bin/python3";
  options.temp_root = work_root.path();

  Error error = expect_error(
      [&] { run_onnxruntime(model_dir.path() / "linear.onnx", {{"input.x", torch::zeros({1, 8})}}, options); });
  EXPECT_EQ(error.code(), ExitCode::kMissingDependency);
  EXPECT_TRUE(contains(error.what(), "/nonexistent/bin/python3")) << error.what();
  EXPECT_TRUE(contains(error.what(), "QWEN2VL_PYTHON")) << error.what();
  EXPECT_TRUE(list_names(work_root.path()).empty());
}

// An "interpreter" that is the test interpreter with onnxruntime hidden:
// a None entry in sys.modules makes `import onnxruntime` raise ImportError.
TEST(OrtRunner, MissingOnnxruntimeThrowsMissingDependency) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir dir;
  write_linear_model(dir.path() / "linear.onnx");
  const auto wrapper = dir.path() / "python-without-onnxruntime";
  std::ofstream(wrapper) << "#!/bin/sh\nexec '" << test_python()
                         << "' -c 'import runpy, sys; sys.modules[\"onnxruntime\"] = None; sys.argv = sys.argv[1:]; "
                            "runpy.run_path(sys.argv[0], run_name=\"__main__\")' \"$@\"\n";
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  OrtRunOptions options;
  options.python = wrapper;

  Error error = expect_error(
      [&] { run_onnxruntime(dir.path() / "linear.onnx", {{"input.x", torch::zeros({1, 8})}}, options); });
  EXPECT_EQ(error.code(), ExitCode::kMissingDependency) << error.what();
  EXPECT_TRUE(contains(error.what(), "-m pip install onnxruntime")) << error.what();
}

TEST(OrtRunner, EmbeddedScriptMatchesTool) {
  const char* tools = std::getenv("QWEN2VL_TOOLS_DIR");
  if (tools == nullptr) {
    GTEST_SKIP() << "QWEN2VL_TOOLS_DIR is not set; run the test via ctest";
  }
  std::ifstream file(std::filesystem::path(tools) / "ort_run.py", std::ios::binary);
  std::string on_disk((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(on_disk.empty());
  EXPECT_EQ(std::string(ort_runner_script()), on_disk);
}

TEST(OrtRunner, ResolvePythonOrder) {
  EXPECT_EQ(resolve_python("/opt/python/bin/python3").path, "/opt/python/bin/python3");
  EXPECT_EQ(resolve_python("/opt/python/bin/python3").source, "the python option");

  const char* saved = std::getenv("QWEN2VL_PYTHON");
  std::string saved_value = saved == nullptr ? "" : saved;
  setenv("QWEN2VL_PYTHON", "/from/environment/python", 1);
  PythonInterpreter from_environment = resolve_python("");
  unsetenv("QWEN2VL_PYTHON");
  PythonInterpreter fallback = resolve_python("");
  if (saved != nullptr) {
    setenv("QWEN2VL_PYTHON", saved_value.c_str(), 1);
  }

  EXPECT_EQ(from_environment.path, "/from/environment/python");
  EXPECT_EQ(from_environment.source, "the QWEN2VL_PYTHON environment variable");
  // Without the variable: the interpreter CMake was configured with, which
  // exists in the build tree's environment, else python3.
  EXPECT_TRUE(fallback.source == "QWEN2VL_PYTHON of the build configuration" || fallback.path == "python3")
      << fallback.path << " from " << fallback.source;
}

}  // namespace
}  // namespace qwen2vl::validate
