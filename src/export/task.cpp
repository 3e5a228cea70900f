#include "qwen2vl/export/task.h"

#include "qwen2vl/error.h"
#include "qwen2vl/export/options.h"

namespace qwen2vl {
namespace {

using onnx::DataType;
using onnx::Dim;

Dim dyn(const char* name) { return Dim::dynamic(name); }
Dim fixed(int64_t size) { return Dim::fixed(size); }

std::vector<TensorSpec> past_inputs(const ModelConfig& config) {
  std::vector<TensorSpec> result;
  for (int64_t layer = 0; layer < config.text.num_hidden_layers; ++layer) {
    for (const char* kind : {"key", "value"}) {
      result.push_back({"past_key_values." + std::to_string(layer) + "." + kind, DataType::kFloat,
                        {dyn(axis::kBatch), fixed(config.text.num_key_value_heads), dyn(axis::kPast),
                         fixed(config.text.head_dim)}});
    }
  }
  return result;
}

std::vector<TensorSpec> present_outputs(const ModelConfig& config) {
  std::vector<TensorSpec> result;
  for (int64_t layer = 0; layer < config.text.num_hidden_layers; ++layer) {
    for (const char* kind : {"key", "value"}) {
      result.push_back({"present." + std::to_string(layer) + "." + kind, DataType::kFloat,
                        {dyn(axis::kBatch), fixed(config.text.num_key_value_heads), dyn(axis::kTotal),
                         fixed(config.text.head_dim)}});
    }
  }
  return result;
}

// input_ids, attention_mask, position_ids, pixel_values, image_grid_thw
std::vector<TensorSpec> text_and_image_inputs(const ModelConfig& config, bool has_past) {
  return {
      {"input_ids", DataType::kInt64, {dyn(axis::kBatch), dyn(axis::kSequence)}},
      {"attention_mask", DataType::kInt64, {dyn(axis::kBatch), dyn(has_past ? axis::kTotal : axis::kSequence)}},
      {"position_ids", DataType::kInt64, {fixed(3), dyn(axis::kBatch), dyn(axis::kSequence)}},
      {"pixel_values", DataType::kFloat, {dyn(axis::kPatches), fixed(config.vision.patch_features())}},
      {"image_grid_thw", DataType::kInt64, {dyn(axis::kImages), fixed(3)}},
  };
}

GraphSpec single_graph(const ModelConfig& config, const std::string& method, bool logits, bool has_past) {
  GraphSpec graph;
  graph.method = method;
  graph.file = "model.onnx";
  graph.has_past = has_past;
  graph.takes_images = true;
  graph.inputs = text_and_image_inputs(config, has_past);
  if (logits) {
    graph.outputs.push_back({"logits", DataType::kFloat,
                             {dyn(axis::kBatch), dyn(axis::kSequence), fixed(config.text.vocab_size)}});
  } else {
    graph.outputs.push_back({"last_hidden_state", DataType::kFloat,
                             {dyn(axis::kBatch), dyn(axis::kSequence), fixed(config.text.hidden_size)}});
  }
  if (has_past) {
    auto past = past_inputs(config);
    graph.inputs.insert(graph.inputs.end(), past.begin(), past.end());
    auto present = present_outputs(config);
    graph.outputs.insert(graph.outputs.end(), present.begin(), present.end());
  }
  return graph;
}

std::vector<GraphSpec> runtime_graphs(const ModelConfig& config) {
  GraphSpec vision;
  vision.method = "vision_encoder";
  vision.file = "onnx/vision_encoder.onnx";
  vision.takes_images = true;
  vision.inputs = {
      {"pixel_values", DataType::kFloat, {dyn(axis::kPatches), fixed(config.vision.patch_features())}},
      {"grid_thw", DataType::kInt64, {dyn(axis::kImages), fixed(3)}},
  };
  vision.outputs = {{"image_features", DataType::kFloat, {dyn(axis::kImageTokens), fixed(config.text.hidden_size)}}};

  GraphSpec embed;
  embed.method = "embed_tokens";
  embed.file = "onnx/embed_tokens.onnx";
  embed.inputs = {{"input_ids", DataType::kInt64, {dyn(axis::kBatch), dyn(axis::kSequence)}}};
  embed.outputs = {{"inputs_embeds", DataType::kFloat,
                    {dyn(axis::kBatch), dyn(axis::kSequence), fixed(config.text.hidden_size)}}};

  GraphSpec decoder;
  decoder.method = "decoder";
  decoder.file = "onnx/decoder_model_merged.onnx";
  decoder.has_past = true;
  decoder.inputs = {
      {"inputs_embeds", DataType::kFloat, {dyn(axis::kBatch), dyn(axis::kSequence), fixed(config.text.hidden_size)}},
      {"attention_mask", DataType::kInt64, {dyn(axis::kBatch), dyn(axis::kTotal)}},
      {"position_ids", DataType::kInt64, {fixed(3), dyn(axis::kBatch), dyn(axis::kSequence)}},
  };
  auto past = past_inputs(config);
  decoder.inputs.insert(decoder.inputs.end(), past.begin(), past.end());
  decoder.outputs = {{"logits", DataType::kFloat,
                      {dyn(axis::kBatch), dyn(axis::kSequence), fixed(config.text.vocab_size)}}};
  auto present = present_outputs(config);
  decoder.outputs.insert(decoder.outputs.end(), present.begin(), present.end());
  return {vision, embed, decoder};
}

}  // namespace

const std::vector<std::string>& supported_tasks() {
  static const std::vector<std::string> tasks = {
      "text-generation-with-past", "text-generation", "feature-extraction-with-past", "feature-extraction",
      "image-text-to-text",
  };
  return tasks;
}

TaskSpec make_task_spec(const std::string& task, const ModelConfig& config) {
  TaskSpec spec;
  spec.name = task;
  if (task == "feature-extraction") {
    spec.graphs = {single_graph(config, "feature_extraction", false, false)};
  } else if (task == "feature-extraction-with-past") {
    spec.graphs = {single_graph(config, "feature_extraction_with_past", false, true)};
  } else if (task == "text-generation") {
    spec.graphs = {single_graph(config, "text_generation", true, false)};
  } else if (task == "text-generation-with-past") {
    spec.graphs = {single_graph(config, "text_generation_with_past", true, true)};
  } else if (task == "image-text-to-text") {
    spec.graphs = runtime_graphs(config);
    spec.runtime_layout = true;
  } else {
    std::string known;
    for (const auto& name : supported_tasks()) known += (known.empty() ? "" : ", ") + name;
    throw Error(ExitCode::kUsage, "unknown task '" + task + "'; choose one of: " + known);
  }
  return spec;
}

}  // namespace qwen2vl
