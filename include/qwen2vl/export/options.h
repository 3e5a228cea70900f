// Everything one export run needs, filled by the CLI (or a batch manifest row).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "qwen2vl/inputs/dummy_inputs.h"

namespace qwen2vl {

struct ExportOptions {
  std::filesystem::path model;       // TorchScript archive
  std::filesystem::path config;      // config.json; empty: beside the model
  std::filesystem::path output_dir;  // created by the export; must not exist or be empty unless force
  std::string task = "text-generation-with-past";
  int64_t opset = 18;
  double atol = 1e-4;
  bool force = false;                // replace an existing non-empty output folder
  bool validate = true;              // run ONNX Runtime against LibTorch after writing
  bool allow_static_vision = false;  // export a plain (frozen image count) trace with a warning
  std::filesystem::path report;      // --report FILE.json; empty: none
  std::string python;                // interpreter for the ONNX Runtime validator; empty: default

  // Dummy-input overrides for the traced-shape profile; unset fields keep defaults.
  std::optional<int64_t> batch_size;
  std::optional<int64_t> sequence_length;
  std::optional<int64_t> past_sequence_length;
  std::optional<int64_t> num_images;
  std::optional<GridThw> image_grid;
};

// Tasks the exporter supports, in the order `--help` lists them.
const std::vector<std::string>& supported_tasks();

// Run one export. Throws qwen2vl::Error; the CLI maps it to an exit code.
// Writes into a staging folder beside output_dir and moves it into place
// only after every graph was written and validated.
void run_export(const ExportOptions& options);

}  // namespace qwen2vl
