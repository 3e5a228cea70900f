// Checks written models with the real components: onnx.checker (full check)
// and onnxruntime, run by the interpreter in $QWEN2VL_PYTHON (set by ctest).
#include <cstdlib>

#include <gtest/gtest.h>

#include "qwen2vl/onnx/writer.h"
#include "qwen2vl/util/subprocess.h"
#include "test_support.h"

namespace qwen2vl::onnx {
namespace {

using testing::chain_model;
using testing::linear_model;
using testing::TempDir;

// argv[1]: the model, argv[2]: "linear" or "chain". Prints "ok" on success;
// any failed check raises, so the interpreter exits non-zero with a traceback.
constexpr const char* kCheckScript = R"PY(
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

path, kind = sys.argv[1], sys.argv[2]
onnx.checker.check_model(path, full_check=True)

model = onnx.load(path)  # loads external data from beside the model
dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
assert dims[0] == "batch_size", dims
weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
x = (np.arange(3 * session.get_inputs()[0].shape[1], dtype=np.float32).reshape(3, -1) % 7) * 0.5 - 1.5
(y,) = session.run(None, {"x": x})

if kind == "linear":
    # The same formula as pattern_weight() in test_support.h.
    expected_w = ((np.arange(64 * 64) % 17) * 0.125 - 1.0).astype(np.float32).reshape(64, 64)
    np.testing.assert_array_equal(weights["linear.weight"], expected_w)
    bias = (np.arange(64) * 0.01).astype(np.float32)
    np.testing.assert_allclose(weights["linear.bias"], bias, rtol=0, atol=1e-7)
    expected = (x @ expected_w + bias).reshape(-1, 8, 8)
    assert session.get_outputs()[0].name == "past_key_values.0.key"
else:
    expected = x
    for k in range(len(weights)):
        expected = expected @ weights[f"chain.{k}.weight"]

assert y.shape == expected.shape, (y.shape, expected.shape)
np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
print("ok")
)PY";

std::string python_or_skip() {
  const char* python = std::getenv("QWEN2VL_PYTHON");
  return python == nullptr ? "" : python;
}

void expect_python_check(const std::filesystem::path& model_path, const std::string& kind) {
  std::string python = python_or_skip();
  if (python.empty()) {
    GTEST_SKIP() << "QWEN2VL_PYTHON is not set; run through ctest";
  }
  ProcessResult result = run_process({python, "-c", kCheckScript, model_path.string(), kind});
  EXPECT_TRUE(result.succeeded()) << "exit " << result.exit_code << "\nstdout:\n"
                                  << result.stdout_text << "\nstderr:\n"
                                  << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "ok\n");
}

TEST(OnnxPythonCheck, LinearModelPassesCheckerAndRuns) {
  TempDir dir;
  write_model(linear_model(), dir.path() / "model.onnx");
  expect_python_check(dir.path() / "model.onnx", "linear");
}

TEST(OnnxPythonCheck, ChunkedModelPassesCheckerAndRuns) {
  TempDir dir;
  WriteOptions options;
  options.max_chunk_bytes = 8192;
  WriteResult result = write_model(chain_model(5), dir.path() / "model.onnx", options);
  ASSERT_EQ(result.data_files.size(), 3u);
  expect_python_check(dir.path() / "model.onnx", "chain");
}

}  // namespace
}  // namespace qwen2vl::onnx
