#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "qwen2vl/config/model_config.h"
#include "qwen2vl/error.h"
#include "qwen2vl/torchscript/inspect.h"
#include "qwen2vl/torchscript/load.h"

namespace qwen2vl::cli {
namespace fs = std::filesystem;

InspectCommand::InspectCommand(CLI::App& app) {
  command_ = app.add_subcommand("inspect", "print the methods, parameters, graphs and metadata of a TorchScript archive");
  command_->add_option("MODEL", model_, "TorchScript archive (.pt), as written by tools/trace_model.py")
      ->type_name("FILE")
      ->required();
  command_->add_option("--config", config_, "config.json of the checkpoint (default: config.json beside MODEL)")
      ->type_name("FILE");
  command_->add_flag("--json", json_, "print JSON instead of text (keys are listed in docs/cli.md)");
  command_->footer(
      "Prints the traced methods with argument names and types, the parameter count and size (tensors that share "
      "storage, such as tied weights, count once), the node kinds of each method's graph after inlining, the "
      "qwen2vl_export.json metadata, and a summary of config.json when one is found.\n\n"
      "Exit codes: see qwen2vl-export --help.");
}

void InspectCommand::run() const {
  // An explicit --config must be valid; it is read first so that a typo fails fast.
  std::optional<ModelConfig> config;
  fs::path config_path;
  std::string config_error;
  if (!config_.empty()) {
    config = ModelConfig::from_file(config_);
    config_path = config_;
  }

  const LoadedModule loaded = load_torchscript(model_);
  ModuleSummary summary = summarize_module(loaded);

  if (config_.empty()) {
    const fs::path beside = model_.parent_path() / "config.json";
    if (fs::exists(beside)) {
      config_path = beside;
      try {
        config = ModelConfig::from_file(beside);
      } catch (const Error& error) {
        config_error = error.what();
        spdlog::warn("{}", config_error);
      }
    } else {
      spdlog::debug("no config.json beside {}", model_.string());
    }
  }
  summary.config = config;
  summary.config_path = config_path;
  summary.config_error = config_error;

  if (json_) {
    std::cout << summary_to_json(summary).dump(2) << '\n';
  } else {
    std::cout << render_summary_text(summary);
  }
  std::cout.flush();
  if (!std::cout) {
    throw io_error("failed to write the inspect output to stdout");
  }
}

}  // namespace qwen2vl::cli
