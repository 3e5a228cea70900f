#include "qwen2vl/export/graph_export.h"

#include <unordered_set>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/torchscript/prepare.h"
#include "qwen2vl/torchscript/profile.h"
#include "qwen2vl/util/progress.h"
#include "qwen2vl/validate/onnxruntime.h"

namespace qwen2vl {
namespace {

using torch::jit::Node;
using torch::jit::Value;

constexpr uint64_t kBrowserChunkBytes = 2000ull * 1000 * 1000;  // below the 2 GiB ArrayBuffer limit

std::vector<c10::IValue> as_arguments(const validate::NamedTensors& inputs) {
  std::vector<c10::IValue> arguments;
  for (const auto& [name, tensor] : inputs) arguments.emplace_back(tensor);
  return arguments;
}

// The method's results in contract order: a tensor or a flat tuple.
std::vector<const Value*> graph_results(const torch::jit::Graph& graph) {
  std::vector<const Value*> results;
  for (const Value* output : graph.outputs()) {
    const Node* producer = output->node();
    if (producer->kind() == c10::prim::TupleConstruct) {
      results.insert(results.end(), producer->inputs().begin(), producer->inputs().end());
    } else {
      results.push_back(output);
    }
  }
  return results;
}

// The first node on the way to `target` whose tensor outputs have only static
// dims although one of its tensor inputs has a dynamic dim: where a trace
// turned a size into a constant.
const Node* find_frozen_origin(const torch::jit::Graph& graph, const Profile& profile, const Value* target) {
  std::unordered_set<const Node*> ancestors;
  std::vector<const Node*> pending = {target->node()};
  while (!pending.empty()) {
    const Node* node = pending.back();
    pending.pop_back();
    if (!ancestors.insert(node).second) continue;
    for (const Value* input : node->inputs()) pending.push_back(input->node());
  }
  for (const Node* node : graph.nodes()) {
    if (!ancestors.count(node)) continue;
    bool input_dynamic = false;
    for (const Value* input : node->inputs()) {
      auto found = profile.values.find(input);
      if (found == profile.values.end() || !found->second.is_tensor) continue;
      for (int64_t d = 0; d < found->second.rank(); ++d) input_dynamic = input_dynamic || found->second.dim_is_dynamic(d);
    }
    bool output_static = true;
    bool has_tensor_output = false;
    for (const Value* output : node->outputs()) {
      auto found = profile.values.find(output);
      if (found == profile.values.end() || !found->second.is_tensor) continue;
      has_tensor_output = true;
      for (int64_t d = 0; d < found->second.rank(); ++d) output_static = output_static && !found->second.dim_is_dynamic(d);
    }
    if (input_dynamic && has_tensor_output && output_static && node->kind() != c10::aten::size) return node;
  }
  return nullptr;
}

bool is_image_axis(const std::string& axis_name) {
  return axis_name == axis::kPatches || axis_name == axis::kImages || axis_name == axis::kImageTokens;
}

// Every dim the task declares dynamic must have changed between the profile
// runs; a frozen one means the trace baked a size in.
void check_dynamic_dims(const PreparedMethod& prepared, const Profile& profile, const GraphSpec& graph,
                        const ExportOptions& options, ExportedGraph& exported) {
  auto results = graph_results(*prepared.graph);
  for (size_t i = 0; i < results.size() && i < graph.outputs.size(); ++i) {
    const auto& spec = graph.outputs[i];
    const auto& info = profile.at(results[i]);
    for (size_t d = 0; d < spec.dims.size(); ++d) {
      if (!spec.dims[d].is_dynamic() || info.dim_is_dynamic(d)) continue;
      std::string origin;
      if (const Node* node = find_frozen_origin(*prepared.graph, profile, results[i])) {
        std::string line = python_source_line(node);
        origin = " The size became a constant at `" + node_text(node) + "`" + (line.empty() ? "" : " (" + line + ")") + ".";
      }
      std::string message = "output " + spec.name + " of " + graph.method + " keeps size " +
                            std::to_string(info.sizes.front().at(d)) + " in dim " + std::to_string(d) +
                            " at every profiled size, but that dim must follow '" + spec.dims[d].param + "'." + origin;
      if (options.allow_static_vision && is_image_axis(spec.dims[d].param)) {
        exported.warnings.push_back(message);
        spdlog::warn("{}", message);
        continue;
      }
      throw unsupported(message + " Trace the checkpoint with tools/trace_model.py, which keeps this size dynamic.");
    }
  }
}

std::vector<GridThw> traced_image_grids(const LoadedModule& loaded, const std::string& method);

// The task derives the method's inputs from config.json (two past tensors per
// layer for the -with-past methods). A config from another checkpoint gives
// the wrong count, which is the user's input to fix, not an internal error.
void check_arity(const PreparedMethod& prepared, const GraphSpec& graph, const ModelConfig& config) {
  const size_t arguments = prepared.graph->inputs().size() - 1;  // without self
  if (arguments == graph.inputs.size()) return;
  throw invalid_input(config.source + " does not match the archive: method " + graph.method + " takes " +
                      std::to_string(arguments) + " inputs, but the config (num_hidden_layers " +
                      std::to_string(config.text.num_hidden_layers) + ") gives " +
                      std::to_string(graph.inputs.size()) +
                      "; pass --config with the config.json of the checkpoint that was traced");
}

// Replace each image axis of `dims` that kept one size in every profile run
// by that size.
void fix_image_dims(std::vector<onnx::Dim>& dims, const ValueProfile& info) {
  for (size_t d = 0; d < dims.size() && static_cast<int64_t>(d) < info.rank(); ++d) {
    if (dims[d].is_dynamic() && is_image_axis(dims[d].param) && !info.dim_is_dynamic(d)) {
      dims[d] = onnx::Dim::fixed(info.sizes.front().at(d));
    }
  }
}

// A plain trace accepts only the images it was traced with. Its graph
// declares those image axes with their traced sizes rather than with names
// that promise any number of patches or images.
GraphSpec declare_static_image_dims(const GraphSpec& graph, const PreparedMethod& prepared, const Profile& profile) {
  GraphSpec declared = graph;
  for (size_t i = 0; i < declared.inputs.size() && i + 1 < prepared.graph->inputs().size(); ++i) {
    fix_image_dims(declared.inputs[i].dims, profile.at(prepared.graph->inputs()[i + 1]));
  }
  auto results = graph_results(*prepared.graph);
  for (size_t i = 0; i < declared.outputs.size() && i < results.size(); ++i) {
    fix_image_dims(declared.outputs[i].dims, profile.at(results[i]));
  }
  return declared;
}

Profile profile_graph(const LoadedModule& loaded, const ModelConfig& config, const GraphSpec& graph,
                      const ExportOptions& options, const PreparedMethod& prepared, ExportedGraph& exported) {
  auto sets = profiling_size_sets(options, graph);
  bool static_vision = loaded.metadata.value("vision", std::string("dynamic")) == "static";
  if (static_vision && graph.takes_images) {
    if (!options.allow_static_vision) {
      throw unsupported("the vision encoder in " + loaded.path.string() +
                        " was traced with transformers' own vision code, which freezes the number and size of "
                        "images; trace with tools/trace_model.py without --plain-vision, or pass "
                        "--allow-static-vision to export it for the traced image count only");
    }
    // A plain trace accepts only the grids it was traced with: profile every
    // set at those, and vary only the text sizes.
    std::vector<GridThw> traced_grids = traced_image_grids(loaded, graph.method);
    if (traced_grids.empty()) traced_grids = sets[0].spec.image_grids();
    for (auto& set : sets) {
      set.spec.grids = traced_grids;
      set.label = describe(set.spec, graph);
    }
    exported.warnings.push_back("static vision: the graph accepts only the traced images (" + sets[0].label + ")");
    spdlog::warn("exporting {} with a static vision encoder: it accepts only {}", graph.method, sets[0].label);
  }

  std::vector<std::vector<c10::IValue>> input_sets;
  for (const auto& set : sets) {
    try {
      input_sets.push_back(as_arguments(make_graph_inputs(graph, config, set)));
    } catch (const Error& error) {
      // The first set comes from the command line, so the fix is a flag.
      if (error.code() != ExitCode::kInvalidInput) throw;
      throw Error(ExitCode::kUsage, std::string(error.what()) +
                                        " (the dummy-input flags --batch-size, --sequence-length, --num-images and "
                                        "--image-grid must fit together)");
    }
    exported.profiled_sizes.push_back(set.label);
  }
  spdlog::info("profiling {} at {} and {}", graph.method, sets[0].label, sets[1].label);
  ProfileFailure failure;
  try {
    return profile_method(prepared, loaded.module, input_sets, &failure);
  } catch (const Error& error) {
    if (failure.run == 1 && graph.takes_images) {
      throw unsupported("the traced " + graph.method + " runs at " + sets[0].label + " but fails at " + sets[1].label +
                        ", in `" + failure.node + "`" +
                        (failure.source_line.empty() ? "" : " (" + failure.source_line + ")") + ": " + failure.message +
                        ". A plain torch.jit.trace freezes the number and size of images; trace with "
                        "tools/trace_model.py, or pass --allow-static-vision to keep the traced image count");
    }
    throw;
  }
}

// The grids recorded by tools/trace_model.py for `method` (key
// traced_image_grids of qwen2vl_export.json); empty when absent.
std::vector<GridThw> traced_image_grids(const LoadedModule& loaded, const std::string& method) {
  std::vector<GridThw> grids;
  const auto& recorded = loaded.metadata.value("traced_image_grids", nlohmann::json::object());
  if (!recorded.is_object() || !recorded.contains(method) || !recorded[method].is_array()) return grids;
  for (const auto& row : recorded[method]) {
    if (!row.is_array() || row.size() != 3 || !row[0].is_number_integer()) return {};
    grids.push_back({row[0].get<int64_t>(), row[1].get<int64_t>(), row[2].get<int64_t>()});
  }
  return grids;
}

onnx::ValueInfo value_info(const TensorSpec& spec) {
  return onnx::ValueInfo{spec.name, spec.type, spec.dims};
}

std::vector<std::string> names_of(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& spec : specs) names.push_back(spec.name);
  return names;
}

}  // namespace

ExportedGraph export_graph(const LoadedModule& loaded, const ModelConfig& config, const GraphSpec& graph,
                           const ExportOptions& options, const std::filesystem::path& output_dir, bool chunked) {
  ExportedGraph exported;
  exported.file = graph.file;
  exported.method = graph.method;
  exported.spec = graph;

  PreparedMethod prepared = prepare_method(loaded.module, graph.method);
  check_arity(prepared, graph, config);
  Profile profile = profile_graph(loaded, config, graph, options, prepared, exported);
  check_dynamic_dims(prepared, profile, graph, options, exported);
  const bool static_vision = loaded.metadata.value("vision", std::string("dynamic")) == "static";
  if (static_vision && graph.takes_images) exported.spec = declare_static_image_dims(graph, prepared, profile);

  spdlog::info("lowering {} to ONNX opset {}", graph.method, options.opset);
  auto lowered = lower::lower_method(prepared, profile, names_of(graph.inputs), names_of(graph.outputs));
  if (!lowered.unsupported.empty()) {
    exported.unsupported = std::move(lowered.unsupported);
    return exported;
  }

  onnx::Model model;
  model.graph = std::move(lowered.graph);
  model.graph.name = graph.method;
  model.opset = options.opset;
  model.producer_version = QWEN2VL_VERSION;
  model.metadata = {{"source_method", graph.method}, {"task", options.task}};
  for (const auto& input : exported.spec.inputs) model.graph.inputs.push_back(value_info(input));
  for (const auto& output : exported.spec.outputs) model.graph.outputs.push_back(value_info(output));
  exported.node_count = model.graph.nodes.size();

  onnx::WriteOptions write_options;
  write_options.max_chunk_bytes = chunked ? kBrowserChunkBytes : 0;
  uint64_t total_bytes = 0;
  for (const auto& initializer : model.graph.initializers) total_bytes += initializer.byte_size;
  Progress progress("writing " + graph.file, total_bytes, ProgressUnit::kBytes);
  write_options.progress = [&progress](uint64_t done, uint64_t) { progress.update(done); };
  auto path = output_dir / graph.file;
  std::filesystem::create_directories(path.parent_path());
  exported.written = onnx::write_model(model, path, write_options);
  progress.finish();
  spdlog::info("wrote {}: {} nodes, {} initializers in {} data file(s)", graph.file, exported.node_count,
               model.graph.initializers.size(), exported.written.data_files.size());
  return exported;
}

std::vector<ValidationCase> compute_references(const LoadedModule& loaded, const ModelConfig& config,
                                               const GraphSpec& graph, const ExportOptions& options) {
  auto sets = validation_size_sets(graph);
  bool static_vision = loaded.metadata.value("vision", std::string("dynamic")) == "static";
  if (static_vision && graph.takes_images) {
    // Only the traced grids are valid: pin them, and drop the sets whose
    // sequence is too short to hold their tokens (the decode step).
    std::vector<GridThw> traced_grids = traced_image_grids(loaded, graph.method);
    if (traced_grids.empty()) traced_grids = profiling_size_sets(options, graph).front().spec.image_grids();
    std::vector<SizeSet> pinned;
    for (auto set : sets) {
      set.spec.grids = traced_grids;
      set.label = describe(set.spec, graph);
      try {
        make_dummy_inputs(config, set.spec);
        pinned.push_back(set);
      } catch (const Error&) {
        spdlog::debug("skipping validation at {}: the traced images do not fit", set.label);
      }
    }
    sets = pinned;
  }
  auto method = loaded.module.get_method(graph.method);
  std::vector<ValidationCase> cases;
  for (const auto& set : sets) {
    ValidationCase validation_case{set.label, make_graph_inputs(graph, config, set), {}};
    c10::IValue result = method(as_arguments(validation_case.inputs));
    std::vector<torch::Tensor> tensors;
    if (result.isTuple()) {
      for (const auto& element : result.toTupleRef().elements()) tensors.push_back(element.toTensor());
    } else {
      tensors.push_back(result.toTensor());
    }
    for (size_t i = 0; i < tensors.size() && i < graph.outputs.size(); ++i) {
      validation_case.expected.emplace_back(graph.outputs[i].name, tensors[i]);
    }
    cases.push_back(std::move(validation_case));
  }
  return cases;
}

void compare_with_onnxruntime(const std::vector<ValidationCase>& cases, const GraphSpec& graph,
                              const ExportOptions& options, const std::filesystem::path& output_dir,
                              ExportedGraph& exported) {
  validate::OrtRunOptions ort_options;
  ort_options.python = options.python;
  Progress progress("validating " + graph.file, cases.size());
  for (const auto& validation_case : cases) {
    auto actual = validate::run_onnxruntime(output_dir / graph.file, validation_case.inputs, ort_options);
    exported.validation.push_back(
        {validation_case.size_set, validate::compare_outputs(validation_case.expected, actual, options.atol)});
    progress.advance();
  }
  progress.finish();
}

}  // namespace qwen2vl
