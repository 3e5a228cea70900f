// Subcommands of qwen2vl-export. Each registers its flags on a CLI11 app and
// runs after a successful parse; errors propagate as qwen2vl::Error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "qwen2vl/export/options.h"

namespace qwen2vl::cli {

class InspectCommand {
 public:
  explicit InspectCommand(CLI::App& app);
  bool selected() const { return command_->parsed(); }
  void run() const;

 private:
  CLI::App* command_ = nullptr;
  std::filesystem::path model_;
  std::filesystem::path config_;
  bool json_ = false;
};

class ExportCommand {
 public:
  explicit ExportCommand(CLI::App& app);
  bool selected() const { return command_->parsed(); }
  void run() const;

 private:
  // The options as run_export expects them. Throws qwen2vl::Error for values
  // that parse but are not supported (--opset).
  ExportOptions to_options() const;

  CLI::App* command_ = nullptr;
  ExportOptions options_;
  std::string image_grid_;
  // Filled only when the flag was given; ExportOptions keeps them optional.
  int64_t batch_size_ = 0;
  int64_t sequence_length_ = 0;
  int64_t past_sequence_length_ = 0;
  int64_t num_images_ = 0;
  bool no_validate_ = false;
  CLI::Option* batch_size_option_ = nullptr;
  CLI::Option* sequence_length_option_ = nullptr;
  CLI::Option* past_sequence_length_option_ = nullptr;
  CLI::Option* num_images_option_ = nullptr;
  CLI::Option* image_grid_option_ = nullptr;
};

class BatchCommand {
 public:
  explicit BatchCommand(CLI::App& app);
  bool selected() const { return command_->parsed(); }
  // Returns the exit code: 0, or ExitCode::kBatchRowsFailed when a row failed.
  int run() const;

 private:
  CLI::App* command_ = nullptr;
  std::filesystem::path manifest_;
  std::string shard_;
  std::string default_task_ = "text-generation-with-past";
  std::filesystem::path report_;
  std::filesystem::path log_dir_;
  int64_t jobs_ = 1;
  bool no_resume_ = false;
  bool force_ = false;
  bool no_validate_ = false;
  double atol_ = 1e-4;
  bool allow_static_vision_ = false;
  std::string python_;
};

// Parse "T,H,W" into a grid of positive sizes. Returns an error message for
// CLI11, or "" when `text` is valid.
std::string check_image_grid(const std::string& text);
GridThw parse_image_grid(const std::string& text);

}  // namespace qwen2vl::cli
