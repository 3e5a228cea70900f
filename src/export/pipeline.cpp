// run_export: load, export every graph of the task, validate, and move the
// finished folder into place.
#include <chrono>
#include <fstream>
#include <future>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/export/graph_export.h"
#include "qwen2vl/export/options.h"
#include "qwen2vl/export/report.h"
#include "qwen2vl/export/runtime_files.h"
#include "qwen2vl/torchscript/load.h"
#include "qwen2vl/util/atomic_file.h"
#include "qwen2vl/util/format.h"
#include "qwen2vl/util/path_checks.h"
#include "qwen2vl/util/sha256.h"
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

// Reject dummy sizes that exceed the model's context or would not fit in
// memory, because the profile runs the model at these sizes.
void check_dummy_sizes(const ExportOptions& options, const ModelConfig& config) {
  constexpr int64_t kMaxBatch = 256;
  constexpr int64_t kMaxImages = 64;
  constexpr int64_t kMaxPatchesPerImage = 64 * 64 * 16;
  auto reject = [](const std::string& flag, int64_t value, const std::string& limit) {
    throw Error(ExitCode::kUsage, flag + " " + std::to_string(value) + " is out of range: " + limit);
  };

  int64_t context = config.text.max_position_embeddings > 0 ? config.text.max_position_embeddings : (1 << 20);
  if (options.batch_size && (*options.batch_size < 1 || *options.batch_size > kMaxBatch)) {
    reject("--batch-size", *options.batch_size, "use 1 to " + std::to_string(kMaxBatch));
  }
  if (options.sequence_length && (*options.sequence_length < 1 || *options.sequence_length > context)) {
    reject("--sequence-length", *options.sequence_length,
           "use 1 to max_position_embeddings (" + std::to_string(context) + ")");
  }
  if (options.past_sequence_length && (*options.past_sequence_length < 0 || *options.past_sequence_length > context)) {
    reject("--past-sequence-length", *options.past_sequence_length,
           "use 0 to max_position_embeddings (" + std::to_string(context) + ")");
  }
  if (options.num_images && (*options.num_images < 0 || *options.num_images > kMaxImages)) {
    reject("--num-images", *options.num_images, "use 0 to " + std::to_string(kMaxImages));
  }

  // The profile materializes logits [batch, sequence, vocab] in float32.
  constexpr double kMaxLogitsBytes = 4.0 * (1ull << 30);
  double logits_bytes = 4.0 * static_cast<double>(options.batch_size.value_or(2)) *
                        static_cast<double>(options.sequence_length.value_or(20)) *
                        static_cast<double>(config.text.vocab_size);
  if (logits_bytes > kMaxLogitsBytes) {
    throw Error(ExitCode::kUsage, "--batch-size times --sequence-length is too large: the profile would hold " +
                                      std::to_string(static_cast<int64_t>(logits_bytes / (1ull << 20))) +
                                      " MiB of logits; keep the dummy sizes small, they only need to differ");
  }
  if (options.image_grid) {
    const auto& grid = *options.image_grid;
    if (grid.t < 1 || grid.h < 1 || grid.w < 1 || grid.t * grid.h * grid.w > kMaxPatchesPerImage) {
      throw Error(ExitCode::kUsage, "--image-grid " + std::to_string(grid.t) + "," + std::to_string(grid.h) + "," +
                                        std::to_string(grid.w) + " is out of range: each of t, h, w must be at least 1 "
                                        "and t*h*w at most " + std::to_string(kMaxPatchesPerImage) + " patches");
    }
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

// The first failed comparison, for the one-line error: the table that lists
// all of them is logged at info level, which --quiet and batch rows hide.
std::string first_mismatch(const std::vector<ExportedGraph>& graphs) {
  for (const auto& graph : graphs) {
    for (const auto& set : graph.validation) {
      for (const auto& row : set.rows) {
        if (row.passed) continue;
        const std::string problem = !row.failure.empty() ? row.failure
                                 : fmt::format("max abs diff {:.3e}", row.max_abs_diff);
        return fmt::format("{} of {} at {}: {}", row.name, graph.file, set.size_set, problem);
      }
    }
  }
  return "see the table above";
}

}  // namespace

void run_export(const ExportOptions& options) {
  auto started = std::chrono::steady_clock::now();
  check_options(options);
  ExportReport report;
  report.options = options;

  check_model_path(options.model);
  auto config_path = config_path_for(options);
  const std::vector<NamedPath> input_files = {{options.model, "the model"}, {config_path, "the config"}};
  check_output_keeps(options.output_dir, input_files, "OUTPUT_DIR");
  if (!options.report.empty()) {
    check_report_target(options.report, input_files, "--report");
    check_writable(options.report, "the report", "--report");
  }
  if (!std::filesystem::exists(config_path)) {
    throw invalid_input("config not found: " + config_path.string() +
                        "; pass --config with the checkpoint's config.json");
  }
  ModelConfig config = ModelConfig::from_file(config_path);
  check_dummy_sizes(options, config);
  TaskSpec task = make_task_spec(options.task, config);
  StagedOutputDir staged(options.output_dir, options.force);

  auto stage_start = std::chrono::steady_clock::now();
  spdlog::info("loading {}", options.model.string());
  // The checksum for the report is computed while LibTorch reads the archive:
  // both stream the same file, so the second read comes from the page cache.
  std::future<std::string> model_sha256 = std::async(std::launch::async, [&] { return sha256_file(options.model); });
  LoadedModule loaded = load_torchscript(options.model);
  report.add_timing("load", stage_start);
  report.set_inputs(loaded, config_path, config, model_sha256.get(), sha256_file(config_path));

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
    std::vector<std::vector<ValidationCase>> cases;
    for (const auto& graph : task.graphs) cases.push_back(compute_references(loaded, config, graph, options));
    // Free the weights before ONNX Runtime loads each graph in its own process,
    // so validation does not hold two copies of the model at once.
    loaded.module = torch::jit::Module();

    for (size_t i = 0; i < graphs.size(); ++i) {
      compare_with_onnxruntime(cases[i], task.graphs[i], options, staged.path(), graphs[i]);
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
                fmt::format("ONNX Runtime disagrees with LibTorch beyond --atol {:g}: {}; nothing was written to {}",
                            options.atol, first_mismatch(graphs), options.output_dir.string()));
  }

  report.status = "ok";
  report.write(staged.path() / "export_report.json");
  staged.commit();
  if (!options.report.empty()) report.write(options.report);
  spdlog::info("exported {} graph(s) for {} to {} in {}", graphs.size(), options.task, staged.target().string(),
               format_duration(std::chrono::seconds(static_cast<int64_t>(report.total_seconds))));
}

}  // namespace qwen2vl
