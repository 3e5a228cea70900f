#include "layout.h"

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"

namespace qwen2vl::onnx::detail {
namespace {

std::string format_dims(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(dims[i]);
  }
  return text + "]";
}

uint64_t align_up(uint64_t value, uint64_t alignment) {
  if (alignment <= 1) {
    return value;
  }
  uint64_t remainder = value % alignment;
  return remainder == 0 ? value : value + (alignment - remainder);
}

void check_initializer(const Initializer& initializer) {
  const std::string what = "initializer '" + initializer.name + "'";
  size_t item_size = element_size(initializer.type);
  if (item_size == 0) {
    throw Error(ExitCode::kInternal, what + " has data type " + data_type_name(initializer.type) +
                                         ", which has no element size; this is a bug in qwen2vl-export");
  }
  uint64_t expected = checked_element_count(initializer.dims, what) * item_size;
  if (expected != initializer.byte_size) {
    throw Error(ExitCode::kInternal, what + " has dims " + format_dims(initializer.dims) + " of " +
                                         data_type_name(initializer.type) + " (" + std::to_string(expected) +
                                         " bytes) but byte_size " + std::to_string(initializer.byte_size) +
                                         "; this is a bug in qwen2vl-export");
  }
  if (initializer.byte_size > 0 && initializer.data == nullptr) {
    throw Error(ExitCode::kInternal, what + " has " + std::to_string(initializer.byte_size) +
                                         " bytes but a null data pointer; this is a bug in qwen2vl-export");
  }
}

}  // namespace

uint64_t checked_element_count(const std::vector<int64_t>& dims, const std::string& what) {
  uint64_t count = 1;
  for (int64_t dim : dims) {
    if (dim < 0) {
      throw Error(ExitCode::kInternal, what + " has a negative dimension in " + format_dims(dims) +
                                           "; this is a bug in qwen2vl-export");
    }
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count)) {
      throw Error(ExitCode::kInternal, what + " has dims " + format_dims(dims) + " whose element count overflows 64 bits");
    }
  }
  return count;
}

std::string data_file_name(const std::string& model_file_name, size_t index) {
  std::string name = model_file_name + "_data";
  if (index > 0) {
    name += "_" + std::to_string(index);
  }
  return name;
}

DataLayout plan_data_layout(const Graph& graph, const std::string& model_file_name, const WriteOptions& options) {
  DataLayout layout;
  uint64_t file_end = 0;  // bytes used in the current file; 0 also means the file is not started

  for (const Initializer& initializer : graph.initializers) {
    check_initializer(initializer);
    uint64_t length = initializer.byte_size;
    if (length == 0) {
      continue;  // empty tensors stay inline: there are no bytes to place
    }

    if (layout.locations.empty()) {
      layout.locations.push_back(data_file_name(model_file_name, 0));
      layout.file_sizes.push_back(0);
    }

    uint64_t offset = align_up(file_end, options.alignment);
    bool over_limit = options.max_chunk_bytes > 0 && offset + length > options.max_chunk_bytes;
    if (over_limit && file_end > 0) {
      layout.locations.push_back(data_file_name(model_file_name, layout.locations.size()));
      layout.file_sizes.push_back(0);
      offset = 0;
    }
    if (options.max_chunk_bytes > 0 && length > options.max_chunk_bytes) {
      spdlog::warn("Initializer '{}' is {} bytes, over the {}-byte limit per data file; writing it alone to {}",
                   initializer.name, length, options.max_chunk_bytes, layout.locations.back());
    }

    layout.placements.push_back(DataPlacement{&initializer, layout.locations.size() - 1, offset});
    file_end = offset + length;
    layout.file_sizes.back() = file_end;
    layout.payload_bytes += length;
  }
  return layout;
}

}  // namespace qwen2vl::onnx::detail
