#include "qwen2vl/export/runtime_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/atomic_file.h"

namespace qwen2vl {
namespace {

const char* const kCompanionFiles[] = {
    "generation_config.json", "preprocessor_config.json", "tokenizer.json",       "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json",              "merges.txt",           "chat_template.json",
    "chat_template.jinja",    "video_preprocessor_config.json", "added_tokens.json",
};

// Copied through memory rather than with std::filesystem::copy_file, whose
// error for a full disk can read "Input/output error". The files are small.
void copy_companion(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::ifstream in(from, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in || in.bad()) {
    throw io_error("cannot read " + from.string() + ": " + std::strerror(errno));
  }
  write_file_atomically(to, contents.str(), "the copy of " + from.filename().string());
}

// Fills the transformers.js fields of config.json for the runtime layout.
void add_transformers_js_fields(const ModelConfig& model, const std::vector<ExportedGraph>& graphs,
                                nlohmann::json& config) {
  // transformers.js (checked on 4.3.2) reads the language model's sizes of a qwen2_vl
  // config from the top level, as in the hub configs that transformers 4.x wrote, and
  // not from text_config. Without num_hidden_layers there it creates no
  // past_key_values inputs and the decoder's first run fails.
  config["num_hidden_layers"] = model.text.num_hidden_layers;
  config["num_attention_heads"] = model.text.num_attention_heads;
  config["num_key_value_heads"] = model.text.num_key_value_heads;
  config["hidden_size"] = model.text.hidden_size;

  nlohmann::json& js_config = config["transformers.js_config"];
  // The graphs are float32 and named without a dtype suffix. transformers.js picks
  // fp32 by default only on the "cpu" device of Node.js. In browsers ("wasm") it
  // would look for <graph>_quantized.onnx instead.
  js_config["dtype"] = "fp32";
  // transformers.js loads <graph>.onnx_data, <graph>.onnx_data_1, ... up to the chunk count given here.
  nlohmann::json chunks = nlohmann::json::object();
  for (const auto& graph : graphs) {
    auto file = std::filesystem::path(graph.file).filename().string();
    chunks[file] = graph.written.data_files.size();
  }
  js_config["use_external_data_format"] = chunks;
}

}  // namespace

void write_runtime_files(const TaskSpec& task, const ModelConfig& model, const std::filesystem::path& config_path,
                         const std::vector<ExportedGraph>& graphs, const std::filesystem::path& output_dir) {
  auto checkpoint_dir = config_path.parent_path();
  for (const char* name : kCompanionFiles) {
    auto source = checkpoint_dir / name;
    if (std::filesystem::exists(source)) copy_companion(source, output_dir / name);
  }

  std::ifstream in(config_path);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded()) throw invalid_input("config is not valid JSON: " + config_path.string());
  if (task.runtime_layout) add_transformers_js_fields(model, graphs, config);
  write_file_atomically(output_dir / "config.json", config.dump(2) + "\n", "the runtime config");
}

}  // namespace qwen2vl
