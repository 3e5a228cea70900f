// Summary of a loaded TorchScript archive, for `qwen2vl-export inspect`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/torchscript/load.h"

namespace qwen2vl {

struct ArgumentSummary {
  std::string name;
  std::string type;  // TorchScript annotation, e.g. "Tensor", "List[int]"
};

struct MethodSummary {
  std::string name;
  std::vector<ArgumentSummary> arguments;  // without `self`
  std::vector<std::string> returns;        // one entry per output; a returned tuple is flattened
  int64_t node_count = 0;                  // after inlining, nodes of nested blocks included
  // Node kinds ("aten::linear") with their counts, most frequent first, ties by name.
  std::vector<std::pair<std::string, int64_t>> node_kinds;
};

// Totals over unique storages: tensors that share one storage (tied weights)
// count once in `count` and `bytes`.
struct TensorTotals {
  int64_t tensors = 0;         // named tensors, shared ones included
  int64_t shared_tensors = 0;  // named tensors whose storage an earlier one already uses
  int64_t count = 0;           // elements
  uint64_t bytes = 0;
  std::map<std::string, int64_t> dtypes;  // elements per dtype name ("float32")
};

struct ModuleSummary {
  std::filesystem::path path;
  uint64_t file_bytes = 0;
  std::vector<MethodSummary> methods;  // in the order of LoadedModule::methods
  TensorTotals parameters;
  TensorTotals buffers;
  nlohmann::json metadata;  // qwen2vl_export.json

  std::filesystem::path config_path;  // empty when no config.json was found
  std::optional<ModelConfig> config;
  std::string config_error;           // why config_path was not read, when it was not
};

// Summarize methods, tensors and metadata of `loaded`. The config fields stay
// empty: the caller decides which config.json belongs to the archive.
ModuleSummary summarize_module(const LoadedModule& loaded);

// Multi-line text for a terminal, ending with a newline.
std::string render_summary_text(const ModuleSummary& summary);

// The same content as JSON; keys are documented in docs/cli.md.
nlohmann::json summary_to_json(const ModuleSummary& summary);

}  // namespace qwen2vl
