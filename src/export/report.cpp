#include "qwen2vl/export/report.h"

#include <sys/resource.h>

#include "qwen2vl/util/atomic_file.h"

namespace qwen2vl {
namespace {

nlohmann::json dims_json(const std::vector<onnx::Dim>& dims) {
  auto result = nlohmann::json::array();
  for (const auto& dim : dims) {
    if (dim.is_dynamic()) result.push_back(dim.param);
    else result.push_back(dim.value);
  }
  return result;
}

nlohmann::json rows_json(const std::vector<validate::ComparisonRow>& rows) {
  auto result = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json entry = {{"output", row.name},
                            {"shape", row.actual_shape},
                            {"passed", row.passed}};
    // NaN is not JSON: a comparison that could not run has no numbers.
    if (row.max_abs_diff == row.max_abs_diff) entry["max_abs_diff"] = row.max_abs_diff;
    if (row.mean_abs_diff == row.mean_abs_diff) entry["mean_abs_diff"] = row.mean_abs_diff;
    if (!row.failure.empty()) entry["failure"] = row.failure;
    result.push_back(entry);
  }
  return result;
}

}  // namespace

uint64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

void ExportReport::set_inputs(const LoadedModule& loaded, const std::filesystem::path& config_path,
                              const ModelConfig& config, const std::string& model_sha256,
                              const std::string& config_sha256) {
  std::error_code error;
  const uintmax_t config_bytes = std::filesystem::file_size(config_path, error);
  inputs = {
      {"model", {{"path", loaded.path.string()}, {"bytes", loaded.file_bytes}, {"sha256", model_sha256},
                 {"methods", loaded.methods}, {"metadata", loaded.metadata}}},
      {"config", {{"path", config_path.string()},
                  {"bytes", error ? 0 : config_bytes},
                  {"sha256", config_sha256},
                  {"model_type", config.model_type},
                  {"hidden_size", config.text.hidden_size},
                  {"num_hidden_layers", config.text.num_hidden_layers},
                  {"num_attention_heads", config.text.num_attention_heads},
                  {"num_key_value_heads", config.text.num_key_value_heads},
                  {"head_dim", config.text.head_dim},
                  {"vocab_size", config.text.vocab_size},
                  {"vision_depth", config.vision.depth},
                  {"vision_embed_dim", config.vision.embed_dim}}},
  };
}

void ExportReport::add_timing(const std::string& stage, std::chrono::steady_clock::time_point started) {
  timings.emplace_back(stage, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

nlohmann::json ExportReport::to_json() const {
  nlohmann::json graphs_json = nlohmann::json::array();
  for (const auto& graph : graphs) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& file : graph.written.data_files) {
      files.push_back({{"path", file.path.filename().string()}, {"bytes", file.bytes}});
    }
    nlohmann::json validation = nlohmann::json::array();
    for (const auto& set : graph.validation) validation.push_back({{"sizes", set.size_set}, {"outputs", rows_json(set.rows)}});
    nlohmann::json inputs_json = nlohmann::json::array();
    for (const auto& input : graph.spec.inputs) {
      inputs_json.push_back({{"name", input.name}, {"dtype", onnx::data_type_name(input.type)}, {"shape", dims_json(input.dims)}});
    }
    nlohmann::json outputs_json = nlohmann::json::array();
    for (const auto& output : graph.spec.outputs) {
      outputs_json.push_back({{"name", output.name}, {"dtype", onnx::data_type_name(output.type)}, {"shape", dims_json(output.dims)}});
    }
    graphs_json.push_back({{"file", graph.file},
                           {"method", graph.method},
                           {"inputs", inputs_json},
                           {"outputs", outputs_json},
                           {"nodes", graph.node_count},
                           {"model_bytes", graph.written.model_bytes},
                           {"weight_bytes", graph.written.weight_bytes},
                           {"external_data", files},
                           {"profiled_at", graph.profiled_sizes},
                           {"warnings", graph.warnings},
                           {"validation", validation}});
  }
  nlohmann::json timing = nlohmann::json::object();
  for (const auto& [stage, seconds] : timings) timing[stage] = seconds;
  return {
      {"tool", {{"name", "qwen2vl-export"}, {"version", QWEN2VL_VERSION}}},
      {"status", status},
      {"task", options.task},
      {"opset", options.opset},
      {"atol", options.atol},
      {"validated", options.validate},
      {"output_dir", options.output_dir.string()},
      {"inputs", inputs},
      {"graphs", graphs_json},
      {"timings_seconds", timing},
      {"total_seconds", total_seconds},
      {"peak_rss_bytes", peak_rss_bytes()},
  };
}

void ExportReport::write(const std::filesystem::path& path) const {
  // Replace bytes that are not UTF-8 (Latin-1 file names) rather than fail after the export.
  write_file_atomically(path, to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                        "the report");
}

}  // namespace qwen2vl
