// Task specifications: the graphs of each task, the traced method behind
// each graph, and the names, dtypes and axes of its inputs and outputs.
#pragma once

#include <string>
#include <vector>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/onnx/graph.h"

namespace qwen2vl {

struct TensorSpec {
  std::string name;
  onnx::DataType type = onnx::DataType::kFloat;
  std::vector<onnx::Dim> dims;
};

struct GraphSpec {
  std::string method;  // traced method, see docs/torchscript-contract.md
  std::string file;    // path of the .onnx file inside the output folder
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  bool has_past = false;    // takes past_key_values.* inputs
  bool takes_images = false;  // takes pixel_values and a grid
};

struct TaskSpec {
  std::string name;
  std::vector<GraphSpec> graphs;
  // image-text-to-text writes the layout transformers.js loads (onnx/ subfolder,
  // chunked external data, transformers.js_config in config.json).
  bool runtime_layout = false;
};

// Dynamic axis names (dim_param), as optimum names them.
namespace axis {
inline const char* const kBatch = "batch_size";
inline const char* const kSequence = "sequence_length";
inline const char* const kPast = "past_sequence_length";
inline const char* const kTotal = "past_sequence_length + sequence_length";
inline const char* const kPatches = "num_patches";
inline const char* const kImages = "num_images";
inline const char* const kImageTokens = "num_image_tokens";
}  // namespace axis

// Throws qwen2vl::Error (kUsage) for an unknown task, listing the known ones.
TaskSpec make_task_spec(const std::string& task, const ModelConfig& config);

}  // namespace qwen2vl
