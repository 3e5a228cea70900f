// NumPy .npy files (format versions 1.0 to 3.0) for torch::Tensor.
//
// Supported dtypes: float32, float16, float64, int64, int32, int16, int8,
// uint8 and bool, little-endian or single-byte. read_npy also accepts
// Fortran-order arrays and returns them as contiguous tensors.
#pragma once

#include <filesystem>

#include <torch/types.h>

namespace qwen2vl::validate {

// Writes a CPU copy of `tensor`, C order, little-endian, format 1.0 (2.0 when
// the header exceeds 65535 bytes). Throws qwen2vl::Error: kUnsupported for a
// dtype outside the list above (bfloat16 among them: numpy has no such type),
// kIo when the file cannot be written.
void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor);

// Reads a .npy file into a contiguous CPU tensor. Throws qwen2vl::Error: kIo
// when the file cannot be read, kInvalidInput for a malformed file, a
// big-endian or unsupported dtype, or a data section shorter than the shape needs.
torch::Tensor read_npy(const std::filesystem::path& path);

}  // namespace qwen2vl::validate
