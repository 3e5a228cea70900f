#include "qwen2vl/export/runtime_files.h"

#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

const char* const kCompanionFiles[] = {
    "generation_config.json", "preprocessor_config.json", "tokenizer.json",       "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json",              "merges.txt",           "chat_template.json",
    "chat_template.jinja",    "video_preprocessor_config.json", "added_tokens.json",
};

void copy_companion(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::error_code error;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, error);
  if (error) throw io_error("cannot copy " + from.string() + " to " + to.string() + ": " + error.message());
}

}  // namespace

void write_runtime_files(const TaskSpec& task, const ModelConfig&, const std::filesystem::path& config_path,
                         const std::vector<ExportedGraph>& graphs, const std::filesystem::path& output_dir) {
  auto checkpoint_dir = config_path.parent_path();
  for (const char* name : kCompanionFiles) {
    auto source = checkpoint_dir / name;
    if (std::filesystem::exists(source)) copy_companion(source, output_dir / name);
  }

  std::ifstream in(config_path);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded()) throw invalid_input("config is not valid JSON: " + config_path.string());
  if (task.runtime_layout) {
    // transformers.js loads <graph>.onnx_data, _1, ... when told how many chunks each graph has.
    nlohmann::json chunks = nlohmann::json::object();
    for (const auto& graph : graphs) {
      auto file = std::filesystem::path(graph.file).filename().string();
      chunks[file] = graph.written.data_files.size();
    }
    config["transformers.js_config"]["use_external_data_format"] = chunks;
  }
  std::ofstream out(output_dir / "config.json");
  out << config.dump(2) << "\n";
  if (!out) throw io_error("cannot write " + (output_dir / "config.json").string());
}

}  // namespace qwen2vl
