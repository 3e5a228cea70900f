// Placement of external initializers in data files: which file, which offset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qwen2vl/onnx/graph.h"
#include "qwen2vl/onnx/writer.h"

namespace qwen2vl::onnx::detail {

struct DataPlacement {
  const Initializer* initializer = nullptr;
  size_t file_index = 0;
  uint64_t offset = 0;
};

struct DataLayout {
  std::vector<std::string> locations;  // file names relative to the .onnx, in chunk order
  std::vector<uint64_t> file_sizes;    // bytes of each file: last offset + length, no trailing padding
  std::vector<DataPlacement> placements;  // initializers with at least one byte, in graph order
  uint64_t payload_bytes = 0;             // sum of their byte sizes
};

// Name of chunk `index` for a model file named `model_file_name`:
// model.onnx_data, model.onnx_data_1, model.onnx_data_2, ...
std::string data_file_name(const std::string& model_file_name, size_t index);

// Places each initializer at the next `alignment` boundary of the current
// file. A new file starts when `max_chunk_bytes` would be exceeded; an
// initializer larger than the limit is placed alone in a file. Throws
// qwen2vl::Error(kInternal) when an initializer's byte_size does not match
// its type and dims.
DataLayout plan_data_layout(const Graph& graph, const std::string& model_file_name, const WriteOptions& options);

// Number of elements of a tensor with these dims. Throws qwen2vl::Error(kInternal)
// naming `what` when a dim is negative or the count overflows.
uint64_t checked_element_count(const std::vector<int64_t>& dims, const std::string& what);

}  // namespace qwen2vl::onnx::detail
