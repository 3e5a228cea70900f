// Read a written .onnx back and summarize where its tensor bytes live. The
// tests use it to check that weights went to external data and not into the
// protobuf. The export stage can use it to report what it wrote.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qwen2vl::onnx {

// One initializer stored in an external data file.
struct ExternalDataEntry {
  std::string tensor_name;
  std::string location;           // relative to the .onnx file's directory
  uint64_t offset = 0;            // 0 when the entry has no "offset" key
  std::optional<uint64_t> length;  // nullopt when the entry has no "length" key
};

struct ModelSummary {
  int64_t ir_version = 0;
  int64_t opset = 0;  // version of the default domain ("" or "ai.onnx"), 0 if not imported
  std::string producer_name;
  std::string producer_version;
  std::vector<std::string> input_names;   // graph inputs, in order
  std::vector<std::string> output_names;  // graph outputs, in order
  size_t node_count = 0;                  // nodes of the main graph
  std::vector<ExternalDataEntry> external_data;  // in initializer order

  // Tensor payload stored inside the .onnx file: initializers (raw_data or
  // typed fields) and TENSOR/TENSORS attributes, subgraphs included.
  uint64_t inline_tensor_bytes = 0;
  std::string largest_inline_tensor;  // its name, or the node and attribute it sits in
  uint64_t largest_inline_tensor_bytes = 0;
};

// Parses `onnx_path` with protobuf and summarizes it. External data files are
// not opened. Throws qwen2vl::Error with ExitCode::kIo when the file cannot be
// read and ExitCode::kInvalidInput when it is not a valid ModelProto.
ModelSummary summarize_model(const std::filesystem::path& onnx_path);

}  // namespace qwen2vl::onnx
