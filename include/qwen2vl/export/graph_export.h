// Export and validate one graph of a task.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "qwen2vl/export/options.h"
#include "qwen2vl/export/size_sets.h"
#include "qwen2vl/export/task.h"
#include "qwen2vl/lower/lower_method.h"
#include "qwen2vl/onnx/writer.h"
#include "qwen2vl/torchscript/load.h"
#include "qwen2vl/validate/compare.h"

namespace qwen2vl {

struct GraphValidation {
  std::string size_set;
  std::vector<validate::ComparisonRow> rows;
};

struct ExportedGraph {
  std::string file;
  std::string method;
  GraphSpec spec;
  std::vector<std::string> profiled_sizes;
  onnx::WriteResult written;
  size_t node_count = 0;
  std::vector<std::string> warnings;
  std::vector<GraphValidation> validation;
  std::vector<lower::UnsupportedOp> unsupported;  // non-empty: nothing was written
};

// Prepare, profile, lower and write `graph` into `output_dir`. Unsupported
// ops are returned (not thrown), so a task can list them for every graph.
// Throws qwen2vl::Error for a trace that does not follow the contract or
// froze a size that must stay dynamic.
ExportedGraph export_graph(const LoadedModule& loaded, const ModelConfig& config, const GraphSpec& graph,
                           const ExportOptions& options, const std::filesystem::path& output_dir, bool chunked);

// Inputs of one validation size set and the traced method's outputs on them.
struct ValidationCase {
  std::string size_set;
  validate::NamedTensors inputs;
  validate::NamedTensors expected;  // LibTorch
};

// Run the traced method with LibTorch on the validation size sets.
std::vector<ValidationCase> compute_references(const LoadedModule& loaded, const ModelConfig& config,
                                               const GraphSpec& graph, const ExportOptions& options);

// Run the written graph with ONNX Runtime on the cases' inputs and compare
// with their LibTorch outputs, filling exported.validation.
void compare_with_onnxruntime(const std::vector<ValidationCase>& cases, const GraphSpec& graph,
                              const ExportOptions& options, const std::filesystem::path& output_dir,
                              ExportedGraph& exported);

}  // namespace qwen2vl
