#include "qwen2vl/validate/npy.h"

#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/subprocess.h"
#include "test_support.h"

namespace qwen2vl::validate {
namespace {

using testing::TempDir;
using testing::test_python;

// Values that both sides compute from the element index i:
//   floating: (i % 11) * 0.5 - 2      integers: i * 3 - 7 (int64: plus 2^40)
//   uint8: i % 251                    bool: i % 3 == 0
// npy_check.py below recomputes them in numpy; keep the two in step.
torch::Tensor pattern(torch::ScalarType type, std::vector<int64_t> shape) {
  int64_t count = 1;
  for (int64_t size : shape) {
    count *= size;
  }
  torch::Tensor index = torch::arange(count, torch::kInt64);
  torch::Tensor values;
  if (type == torch::kFloat32 || type == torch::kFloat16 || type == torch::kFloat64) {
    values = (index % 11).to(torch::kFloat64) * 0.5 - 2.0;
  } else if (type == torch::kBool) {
    values = (index % 3) == 0;
  } else if (type == torch::kUInt8) {
    values = index % 251;
  } else if (type == torch::kInt64) {
    values = index * 3 - 7 + (int64_t{1} << 40);
  } else {
    values = index * 3 - 7;
  }
  return values.to(type).reshape(shape);
}

struct Case {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  std::string numpy_dtype;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"f32", torch::kFloat32, {2, 3, 4}, "float32"},
      {"f16", torch::kFloat16, {5, 7}, "float16"},
      {"f64", torch::kFloat64, {9}, "float64"},
      {"i64", torch::kInt64, {3, 2}, "int64"},
      {"i32", torch::kInt32, {4, 1, 2}, "int32"},
      {"i16", torch::kInt16, {6}, "int16"},
      {"i8", torch::kInt8, {2, 2}, "int8"},
      {"u8", torch::kUInt8, {300}, "uint8"},
      {"bool", torch::kBool, {3, 5}, "bool"},
      {"scalar", torch::kFloat32, {}, "float32"},
      {"empty", torch::kInt64, {0, 3}, "int64"},
      {"past_key_values.0.key", torch::kFloat32, {1, 2, 3, 4}, "float32"},
  };
  return all;
}

// Shared by both directions. "check DIR" verifies files written by C++;
// "write DIR" writes files for C++ to read, including a Fortran-order array
// and a format 2.0 file.
constexpr const char* kNumpyScript = R"PY(
import os
import sys
import numpy as np

mode, folder = sys.argv[1], sys.argv[2]
cases = [c.split(":") for c in sys.argv[3:]]

def pattern(dtype, shape):
    i = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    if dtype in ("float32", "float16", "float64"):
        values = (i % 11) * 0.5 - 2.0
    elif dtype == "bool":
        values = i % 3 == 0
    elif dtype == "uint8":
        values = i % 251
    elif dtype == "int64":
        values = i * 3 - 7 + (1 << 40)
    else:
        values = i * 3 - 7
    return values.astype(dtype).reshape(shape)

for name, dtype, shape_text in cases:
    shape = tuple(int(s) for s in shape_text.split("x") if s != "")
    path = os.path.join(folder, name + ".npy")
    if mode == "check":
        array = np.load(path, allow_pickle=False)
        assert array.dtype == np.dtype(dtype), (name, array.dtype, dtype)
        assert array.shape == shape, (name, array.shape, shape)
        assert array.flags["C_CONTIGUOUS"], name
        np.testing.assert_array_equal(array, pattern(dtype, shape), err_msg=name)
    else:
        np.save(path, pattern(dtype, shape), allow_pickle=False)

if mode == "write":
    np.save(os.path.join(folder, "fortran.npy"), np.asfortranarray(pattern("float32", (3, 4, 5))))
    with open(os.path.join(folder, "version2.npy"), "wb") as handle:
        np.lib.format.write_array(handle, pattern("int32", (2, 3)), version=(2, 0))
print("ok")
)PY";

std::vector<std::string> script_arguments(const std::string& mode, const std::filesystem::path& folder) {
  std::vector<std::string> argv = {test_python(), "-c", kNumpyScript, mode, folder.string()};
  for (const Case& item : cases()) {
    std::string shape;
    for (int64_t size : item.shape) {
      shape += (shape.empty() ? "" : "x") + std::to_string(size);
    }
    argv.push_back(item.name + ":" + item.numpy_dtype + ":" + shape);
  }
  return argv;
}

void expect_equal_tensors(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& name) {
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type()) << name;
  EXPECT_EQ(actual.sizes().vec(), expected.sizes().vec()) << name;
  EXPECT_TRUE(actual.is_contiguous()) << name;
  EXPECT_TRUE(torch::equal(actual, expected)) << name;
}

TEST(Npy, CppRoundTrip) {
  TempDir dir;
  for (const Case& item : cases()) {
    torch::Tensor tensor = pattern(item.type, item.shape);
    write_npy(dir.path() / (item.name + ".npy"), tensor);
    expect_equal_tensors(read_npy(dir.path() / (item.name + ".npy")), tensor, item.name);
  }
}

TEST(Npy, HeaderPaddedTo64Bytes) {
  TempDir dir;
  write_npy(dir.path() / "a.npy", pattern(torch::kFloat32, {2, 3}));
  // numpy pads the header so that the data starts at a multiple of 64 bytes:
  // here 128, as np.save writes it for this dtype and shape.
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "a.npy"), 128u + 6 * 4);
}

TEST(Npy, CppWritesNumpyReads) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir dir;
  for (const Case& item : cases()) {
    write_npy(dir.path() / (item.name + ".npy"), pattern(item.type, item.shape));
  }
  ProcessResult result = run_process(script_arguments("check", dir.path()));
  EXPECT_TRUE(result.succeeded()) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "ok\n");
}

TEST(Npy, NumpyWritesCppReads) {
  QWEN2VL_REQUIRE_PYTHON();
  TempDir dir;
  ProcessResult result = run_process(script_arguments("write", dir.path()));
  ASSERT_TRUE(result.succeeded()) << result.stderr_text;
  for (const Case& item : cases()) {
    expect_equal_tensors(read_npy(dir.path() / (item.name + ".npy")), pattern(item.type, item.shape), item.name);
  }
  expect_equal_tensors(read_npy(dir.path() / "fortran.npy"), pattern(torch::kFloat32, {3, 4, 5}), "fortran");
  expect_equal_tensors(read_npy(dir.path() / "version2.npy"), pattern(torch::kInt32, {2, 3}), "version2");
}

TEST(Npy, NonContiguousTensorWrittenInCOrder) {
  TempDir dir;
  torch::Tensor base = pattern(torch::kFloat32, {3, 4});
  torch::Tensor transposed = base.t();
  ASSERT_FALSE(transposed.is_contiguous());
  write_npy(dir.path() / "t.npy", transposed);
  expect_equal_tensors(read_npy(dir.path() / "t.npy"), transposed.contiguous(), "transposed");
}

TEST(Npy, Bfloat16WriteUnsupported) {
  TempDir dir;
  try {
    write_npy(dir.path() / "b.npy", torch::zeros({2}, torch::kBFloat16));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kUnsupported);
    EXPECT_NE(std::string(error.what()).find("BFloat16"), std::string::npos) << error.what();
  }
}

void expect_read_error(const std::filesystem::path& path, ExitCode code, const std::string& fragment) {
  try {
    read_npy(path);
    FAIL() << "expected an error for " << path;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

void write_raw(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) {
    header += ' ';
  }
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  return bytes + header + data;
}

TEST(Npy, MalformedFilesRejected) {
  TempDir dir;
  expect_read_error(dir.path() / "missing.npy", ExitCode::kIo, "missing.npy");

  write_raw(dir.path() / "magic.npy", "PK\x03\x04 not a numpy file");
  expect_read_error(dir.path() / "magic.npy", ExitCode::kInvalidInput, "magic");

  write_raw(dir.path() / "short.npy",
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", std::string(8, '\0')));
  expect_read_error(dir.path() / "short.npy", ExitCode::kInvalidInput, "ends inside the data");

  write_raw(dir.path() / "big_endian.npy",
            npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')));
  expect_read_error(dir.path() / "big_endian.npy", ExitCode::kInvalidInput, "big-endian");

  write_raw(dir.path() / "complex.npy",
            npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_read_error(dir.path() / "complex.npy", ExitCode::kInvalidInput, "'<c8'");

  write_raw(dir.path() / "no_shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", ""));
  expect_read_error(dir.path() / "no_shape.npy", ExitCode::kInvalidInput, "'shape'");
}

}  // namespace
}  // namespace qwen2vl::validate
