// Files written beside the graphs: the checkpoint's config and, for the
// runtime layout, what transformers.js reads to find the graphs' data chunks.
#pragma once

#include <filesystem>
#include <vector>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/export/graph_export.h"
#include "qwen2vl/export/task.h"

namespace qwen2vl {

// Copy config.json (and generation_config.json, preprocessor_config.json and
// tokenizer files when the checkpoint folder has them) into `output_dir`.
// For the runtime layout, config.json gains transformers.js_config (the
// number of external data chunks of each graph, dtype fp32) and the text
// sizes at the top level, where transformers.js reads them for qwen2_vl.
void write_runtime_files(const TaskSpec& task, const ModelConfig& config, const std::filesystem::path& config_path,
                         const std::vector<ExportedGraph>& graphs, const std::filesystem::path& output_dir);

}  // namespace qwen2vl
