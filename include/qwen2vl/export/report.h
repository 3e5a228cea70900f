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

  // `model_sha256` and `config_sha256` are the files' SHA-256 as hex digits.
  void set_inputs(const LoadedModule& loaded, const std::filesystem::path& config_path, const ModelConfig& config,
                  const std::string& model_sha256, const std::string& config_sha256);
  void add_timing(const std::string& stage, std::chrono::steady_clock::time_point started);
  nlohmann::json to_json() const;
  // Write atomically (temporary file + rename). Throws qwen2vl::Error (kIo).
  void write(const std::filesystem::path& path) const;
};

// Peak resident set size of this process so far, in bytes.
uint64_t peak_rss_bytes();

}  // namespace qwen2vl
