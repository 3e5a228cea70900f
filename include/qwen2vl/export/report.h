// The machine-readable record of one export (--report FILE.json, and
// export_report.json inside the output folder).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/export/graph_export.h"
#include "qwen2vl/export/options.h"
#include "qwen2vl/torchscript/load.h"

namespace qwen2vl {

struct ExportReport {
  ExportOptions options;
  std::string status;  // "ok", "validation mismatch"
  nlohmann::json inputs = nlohmann::json::object();
  std::vector<ExportedGraph> graphs;
  std::vector<std::pair<std::string, double>> timings;  // stage, seconds
  double total_seconds = 0;

  void set_inputs(const LoadedModule& loaded, const std::filesystem::path& config_path, const ModelConfig& config);
  void add_timing(const std::string& stage, std::chrono::steady_clock::time_point started);
  nlohmann::json to_json() const;
  // Write atomically (temporary file + rename). Throws qwen2vl::Error (kIo).
  void write(const std::filesystem::path& path) const;
};

// Peak resident set size of this process so far, in bytes.
uint64_t peak_rss_bytes();

}  // namespace qwen2vl
