// run_export: load, export every graph of the task, validate, and move the
// finished folder into place.
#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/export/graph_export.h"
#include "qwen2vl/export/options.h"
#include "qwen2vl/export/report.h"
#include "qwen2vl/export/runtime_files.h"
#include "qwen2vl/util/format.h"
#include "qwen2vl/util/staged_dir.h"

namespace qwen2vl {
namespace {

std::filesystem::path config_path_for(const ExportOptions& options) {
  if (!options.config.empty()) return options.config;
  return options.model.parent_path() / "config.json";
}

void check_options(const ExportOptions& options) {
  if (options.opset != 18) {
    throw Error(ExitCode::kUsage, "--opset " + std::to_string(options.opset) +
                                      " is not supported: qwen2vl-export writes opset 18 only; drop --opset");
  }
  if (!(options.atol > 0)) {
    throw Error(ExitCode::kUsage, "--atol must be a positive number, got " + std::to_string(options.atol));
  }
}

std::string unsupported_report(const std::vector<ExportedGraph>& graphs) {
  std::string text;
  size_t count = 0;
  for (const auto& graph : graphs) count += graph.unsupported.size();
  text = std::to_string(count) + " node(s) have no ONNX lowering:";
  for (const auto& graph : graphs) {
    for (const auto& op : graph.unsupported) {
      text += " [" + graph.method + "] " + op.kind;
      if (!op.source_line.empty()) text += " at " + op.source_line;
      text += " (" + op.reason + ")";
      if (!op.schema.empty()) text += " schema: " + op.schema;
      text += ";";
    }
  }
  return text + " please report these ops with the model's config";
}

}  // namespace

void run_export(const ExportOptions& options) {
  auto started = std::chrono::steady_clock::now();
  check_options(options);
  ExportReport report;
  report.options = options;

  auto config_path = config_path_for(options);
  if (!std::filesystem::exists(config_path)) {
    throw invalid_input("config not found: " + config_path.string() +
                        "; pass --config with the checkpoint's config.json");
  }
  ModelConfig config = ModelConfig::from_file(config_path);
  TaskSpec task = make_task_spec(options.task, config);
  StagedOutputDir staged(options.output_dir, options.force);

  auto stage_start = std::chrono::steady_clock::now();
  spdlog::info("loading {}", options.model.string());
  LoadedModule loaded = load_torchscript(options.model);
  report.add_timing("load", stage_start);
  report.set_inputs(loaded, config_path, config);

  std::vector<ExportedGraph> graphs;
  stage_start = std::chrono::steady_clock::now();
  for (const auto& graph : task.graphs) {
    graphs.push_back(export_graph(loaded, config, graph, options, staged.path(), task.runtime_layout));
  }
  report.add_timing("profile, lower and write", stage_start);
  bool any_unsupported = false;
  for (const auto& graph : graphs) any_unsupported = any_unsupported || !graph.unsupported.empty();
  if (any_unsupported) throw unsupported(unsupported_report(graphs));

  write_runtime_files(task, config, config_path, graphs, staged.path());

  bool mismatch = false;
  if (options.validate) {
    stage_start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < graphs.size(); ++i) {
      validate_graph(loaded, config, task.graphs[i], options, staged.path(), graphs[i]);
      for (const auto& set : graphs[i].validation) {
        spdlog::info("{} at {}:\n{}", graphs[i].file, set.size_set,
                     validate::format_comparison_table(set.rows, options.atol));
        mismatch = mismatch || !validate::all_passed(set.rows);
      }
    }
    report.add_timing("validate", stage_start);
  } else {
    spdlog::warn("validation skipped (--no-validate): the graphs were not run");
  }

  report.graphs = graphs;
  report.total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (mismatch) {
    report.status = "validation mismatch";
    if (!options.report.empty()) report.write(options.report);
    throw Error(ExitCode::kValidationMismatch,
                "ONNX Runtime disagrees with LibTorch beyond --atol " + std::to_string(options.atol) +
                    " (table above); nothing was written to " + options.output_dir.string());
  }

  report.status = "ok";
  report.write(staged.path() / "export_report.json");
  staged.commit();
  if (!options.report.empty()) report.write(options.report);
  spdlog::info("exported {} graph(s) for {} to {} in {}", graphs.size(), options.task, staged.target().string(),
               format_duration(std::chrono::seconds(static_cast<int64_t>(report.total_seconds))));
}

}  // namespace qwen2vl
