#include "qwen2vl/export/size_sets.h"

#include <sstream>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

DummyInputSpec for_graph(DummyInputSpec spec, const GraphSpec& graph) {
  if (!graph.has_past) spec.past_sequence_length = 0;
  if (!graph.takes_images && graph.method != "embed_tokens" && graph.method != "decoder") return spec;
  if (graph.method == "embed_tokens" || graph.method == "decoder") {
    spec.grids.clear();
    spec.num_images = 0;
  }
  return spec;
}

}  // namespace

std::string describe(const DummyInputSpec& spec, const GraphSpec& graph) {
  std::ostringstream out;
  auto grids = spec.image_grids();
  if (graph.method == "vision_encoder") {
    out << grids.size() << (grids.size() == 1 ? " image" : " images");
  } else {
    out << "batch " << spec.batch_size << ", sequence " << spec.sequence_length;
    if (graph.has_past) out << ", past " << spec.past_sequence_length;
    if (graph.takes_images) out << ", " << grids.size() << (grids.size() == 1 ? " image" : " images");
  }
  if (!grids.empty() && graph.takes_images) {
    out << " (";
    for (size_t i = 0; i < grids.size(); ++i) {
      out << (i ? ", " : "") << grids[i].t << "x" << grids[i].h << "x" << grids[i].w;
    }
    out << ")";
  }
  if (spec.left_padding > 0 && graph.method != "vision_encoder") out << ", left padding " << spec.left_padding;
  return out.str();
}

std::vector<SizeSet> profiling_size_sets(const ExportOptions& options, const GraphSpec& graph) {
  DummyInputSpec first;
  if (options.batch_size) first.batch_size = *options.batch_size;
  if (options.sequence_length) first.sequence_length = *options.sequence_length;
  first.past_sequence_length = options.past_sequence_length.value_or(graph.has_past ? 8 : 0);
  if (options.num_images) first.num_images = *options.num_images;
  if (options.image_grid) first.grid = *options.image_grid;
  first.seed = 1;

  // Every dynamic size moves, and the image count and grids change too.
  DummyInputSpec second;
  second.batch_size = first.batch_size + 1;
  second.sequence_length = first.sequence_length + 9;
  second.past_sequence_length = first.past_sequence_length + 5;
  second.grids = {{1, 4, 6}, {1, 6, 4}, {1, 2, 2}};
  if (first.num_images == 3) second.grids = {{1, 4, 6}, {1, 2, 2}};
  second.seed = 2;

  std::vector<SizeSet> sets;
  for (auto spec : {first, second}) {
    spec = for_graph(spec, graph);
    sets.push_back({describe(spec, graph), spec});
  }
  return sets;
}

std::vector<SizeSet> validation_size_sets(const GraphSpec& graph) {
  DummyInputSpec decode;
  decode.batch_size = 1;
  decode.sequence_length = 1;
  decode.past_sequence_length = 29;
  decode.num_images = 0;
  decode.seed = 11;

  DummyInputSpec prefill;
  prefill.batch_size = 3;
  prefill.sequence_length = 37;
  prefill.past_sequence_length = 0;
  prefill.grids = {{1, 8, 12}, {1, 4, 4}, {1, 2, 6}};
  prefill.seed = 12;

  DummyInputSpec padded;
  padded.batch_size = 2;
  padded.sequence_length = 23;
  padded.past_sequence_length = 5;
  padded.grids = {{1, 6, 10}};
  padded.left_padding = 3;
  padded.seed = 13;

  std::vector<SizeSet> sets;
  for (auto spec : {decode, prefill, padded}) {
    spec = for_graph(spec, graph);
    sets.push_back({describe(spec, graph), spec});
  }
  return sets;
}

validate::NamedTensors make_graph_inputs(const GraphSpec& graph, const ModelConfig& config, const SizeSet& sizes) {
  DummyInputs dummy = make_dummy_inputs(config, sizes.spec);
  validate::NamedTensors result;
  for (const auto& input : graph.inputs) {
    const std::string& name = input.name;
    torch::Tensor tensor;
    if (name == "input_ids") tensor = dummy.input_ids;
    else if (name == "attention_mask") tensor = dummy.attention_mask;
    else if (name == "position_ids") tensor = dummy.position_ids;
    else if (name == "pixel_values") tensor = dummy.pixel_values;
    else if (name == "image_grid_thw" || name == "grid_thw") tensor = dummy.image_grid_thw;
    else if (name == "inputs_embeds") {
      auto generator = at::detail::createCPUGenerator(sizes.spec.seed + 1000);
      tensor = torch::randn({sizes.spec.batch_size, sizes.spec.sequence_length, config.text.hidden_size}, generator);
    } else if (name.rfind("past_key_values.", 0) == 0) {
      auto first_dot = name.find('.', 16);
      int64_t layer = std::stoll(name.substr(16, first_dot - 16));
      bool is_key = name.substr(first_dot + 1) == "key";
      tensor = is_key ? dummy.past_keys.at(layer) : dummy.past_values.at(layer);
    } else {
      throw Error(ExitCode::kInternal, "no dummy input for graph input " + name);
    }
    result.emplace_back(name, tensor);
  }
  return result;
}

}  // namespace qwen2vl
