#include "qwen2vl/torchscript/inspect.h"

#include <algorithm>
#include <sstream>
#include <unordered_set>

#include <torch/csrc/jit/passes/inliner.h>

#include "qwen2vl/util/format.h"

namespace qwen2vl {
namespace {

// Node kinds listed per method in the text rendering; JSON lists all.
constexpr size_t kTextNodeKinds = 12;

std::string dtype_name(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Double: return "float64";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Int: return "int32";
    case c10::ScalarType::Short: return "int16";
    case c10::ScalarType::Char: return "int8";
    case c10::ScalarType::Byte: return "uint8";
    case c10::ScalarType::Bool: return "bool";
    default: return c10::toString(type);
  }
}

template <typename NamedTensors>
TensorTotals total_tensors(const NamedTensors& named) {
  TensorTotals totals;
  std::unordered_set<const void*> storages;
  for (const auto& entry : named) {
    const at::Tensor& tensor = entry.value;
    ++totals.tensors;
    if (!tensor.defined() || !tensor.has_storage()) {
      continue;
    }
    if (!storages.insert(tensor.storage().unsafeGetStorageImpl()).second) {
      ++totals.shared_tensors;
      continue;
    }
    const uint64_t bytes = tensor.storage().nbytes();
    const int64_t elements = static_cast<int64_t>(bytes / std::max<size_t>(tensor.element_size(), 1));
    totals.bytes += bytes;
    totals.count += elements;
    totals.dtypes[dtype_name(tensor.scalar_type())] += elements;
  }
  return totals;
}

void count_nodes(torch::jit::Block* block, std::map<std::string, int64_t>& kinds, int64_t& total) {
  for (torch::jit::Node* node : block->nodes()) {
    ++total;
    ++kinds[node->kind().toQualString()];
    for (torch::jit::Block* nested : node->blocks()) {
      count_nodes(nested, kinds, total);
    }
  }
}

MethodSummary summarize_method(const torch::jit::Module& module, const std::string& name) {
  MethodSummary summary;
  summary.name = name;
  const torch::jit::Method method = module.get_method(name);

  const c10::FunctionSchema& schema = method.function().getSchema();
  for (size_t i = 0; i < schema.arguments().size(); ++i) {
    const c10::Argument& argument = schema.arguments()[i];
    if (i == 0 && argument.name() == "self") {
      continue;
    }
    summary.arguments.push_back({argument.name(), argument.type()->annotation_str()});
  }
  for (const c10::Argument& output : schema.returns()) {
    if (const auto tuple = output.type()->cast<c10::TupleType>()) {
      for (const auto& element : tuple->elements()) {
        summary.returns.push_back(element->annotation_str());
      }
    } else {
      summary.returns.push_back(output.type()->annotation_str());
    }
  }

  auto graph = method.graph()->copy();
  torch::jit::Inline(*graph);
  std::map<std::string, int64_t> kinds;
  count_nodes(graph->block(), kinds, summary.node_count);
  summary.node_kinds.assign(kinds.begin(), kinds.end());
  std::stable_sort(summary.node_kinds.begin(), summary.node_kinds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return summary;
}

// "Tensor, Tensor, Tensor" -> "Tensor x 3", keeping the order of runs.
std::string compact_types(const std::vector<std::string>& types) {
  std::string result;
  for (size_t i = 0; i < types.size();) {
    size_t run = 1;
    while (i + run < types.size() && types[i + run] == types[i]) {
      ++run;
    }
    result += (result.empty() ? "" : ", ") + types[i] + (run > 1 ? " x " + std::to_string(run) : "");
    i += run;
  }
  return result.empty() ? "None" : result;
}

std::string render_totals(const TensorTotals& totals) {
  std::ostringstream out;
  out << format_count(static_cast<uint64_t>(totals.count)) << " (" << format_bytes(totals.bytes) << ") in "
      << totals.tensors << " tensors";
  if (totals.shared_tensors > 0) {
    out << ", " << totals.shared_tensors << " sharing storage with another";
  }
  std::string dtypes;
  for (const auto& [dtype, count] : totals.dtypes) {
    dtypes += (dtypes.empty() ? "" : ", ") + dtype;
  }
  if (!dtypes.empty()) {
    out << "; " << dtypes;
  }
  return out.str();
}

std::string render_metadata(const nlohmann::json& metadata) {
  std::string result;
  for (const auto& [key, value] : metadata.items()) {
    if (key == "methods") {
      continue;  // listed below
    }
    std::string shown;
    if (value.is_string()) {
      shown = value.get<std::string>();
    } else if (value.is_structured()) {
      shown = "(" + std::to_string(value.size()) + " entries, see --json)";
    } else {
      shown = value.dump();
    }
    result += (result.empty() ? "" : ", ") + key + " " + shown;
  }
  return result.empty() ? "none (no qwen2vl_export.json)" : result;
}

std::string render_config(const ModelConfig& config) {
  const TextConfig& text = config.text;
  const VisionConfig& vision = config.vision;
  std::ostringstream out;
  out << (config.model_type.empty() ? "unknown model_type" : config.model_type) << "; text: " << text.num_hidden_layers
      << " layers, hidden " << text.hidden_size << ", " << text.num_attention_heads << " heads, "
      << text.num_key_value_heads << " KV heads, head_dim " << text.head_dim << ", vocab " << text.vocab_size
      << "; vision: depth " << vision.depth << ", embed_dim " << vision.embed_dim << ", " << vision.num_heads
      << " heads, patch " << vision.patch_size << ", merge " << vision.spatial_merge_size;
  if (config.tie_word_embeddings) {
    out << "; tied word embeddings";
  }
  return out.str();
}

nlohmann::json totals_to_json(const TensorTotals& totals) {
  return {{"count", totals.count},
          {"bytes", totals.bytes},
          {"tensors", totals.tensors},
          {"shared_tensors", totals.shared_tensors},
          {"dtypes", totals.dtypes}};
}

nlohmann::json config_to_json(const ModelConfig& config) {
  const TextConfig& text = config.text;
  const VisionConfig& vision = config.vision;
  return {
      {"model_type", config.model_type},
      {"torch_dtype", config.torch_dtype},
      {"tie_word_embeddings", config.tie_word_embeddings},
      {"text",
       {{"hidden_size", text.hidden_size},
        {"num_hidden_layers", text.num_hidden_layers},
        {"num_attention_heads", text.num_attention_heads},
        {"num_key_value_heads", text.num_key_value_heads},
        {"head_dim", text.head_dim},
        {"intermediate_size", text.intermediate_size},
        {"vocab_size", text.vocab_size},
        {"mrope_section", text.mrope_section}}},
      {"vision",
       {{"depth", vision.depth},
        {"embed_dim", vision.embed_dim},
        {"hidden_size", vision.hidden_size},
        {"num_heads", vision.num_heads},
        {"in_channels", vision.in_channels},
        {"patch_size", vision.patch_size},
        {"temporal_patch_size", vision.temporal_patch_size},
        {"spatial_merge_size", vision.spatial_merge_size}}},
  };
}

}  // namespace

ModuleSummary summarize_module(const LoadedModule& loaded) {
  ModuleSummary summary;
  summary.path = loaded.path;
  summary.file_bytes = loaded.file_bytes;
  summary.metadata = loaded.metadata;
  summary.parameters = total_tensors(loaded.module.named_parameters(/*recurse=*/true));
  summary.buffers = total_tensors(loaded.module.named_buffers(/*recurse=*/true));
  for (const auto& name : loaded.methods) {
    summary.methods.push_back(summarize_method(loaded.module, name));
  }
  return summary;
}

std::string render_summary_text(const ModuleSummary& summary) {
  std::ostringstream out;
  out << "archive     " << summary.path.string() << " (" << format_bytes(summary.file_bytes) << ")\n";
  out << "parameters  " << render_totals(summary.parameters) << "\n";
  out << "buffers     " << render_totals(summary.buffers) << "\n";
  out << "metadata    " << render_metadata(summary.metadata) << "\n";
  if (summary.config) {
    out << "config      " << summary.config_path.string() << ": " << render_config(*summary.config) << "\n";
  } else if (!summary.config_error.empty()) {
    out << "config      not read: " << summary.config_error << "\n";
  } else {
    out << "config      none found (pass --config FILE)\n";
  }

  out << "methods     " << summary.methods.size() << "\n";
  for (const MethodSummary& method : summary.methods) {
    out << "\n  " << method.name << "(";
    for (size_t i = 0; i < method.arguments.size(); ++i) {
      out << (i == 0 ? "" : ", ") << method.arguments[i].name << ": " << method.arguments[i].type;
    }
    out << ") -> " << compact_types(method.returns) << "\n";

    out << "    " << format_count(static_cast<uint64_t>(method.node_count)) << " nodes after inlining";
    const size_t shown = std::min(kTextNodeKinds, method.node_kinds.size());
    for (size_t i = 0; i < shown; ++i) {
      out << (i == 0 ? ": " : ", ") << method.node_kinds[i].first << " " << method.node_kinds[i].second;
    }
    if (method.node_kinds.size() > shown) {
      out << ", and " << method.node_kinds.size() - shown << " more kinds";
    }
    out << "\n";
  }
  return out.str();
}

nlohmann::json summary_to_json(const ModuleSummary& summary) {
  nlohmann::json methods = nlohmann::json::array();
  for (const MethodSummary& method : summary.methods) {
    nlohmann::json arguments = nlohmann::json::array();
    for (const ArgumentSummary& argument : method.arguments) {
      arguments.push_back({{"name", argument.name}, {"type", argument.type}});
    }
    nlohmann::json kinds = nlohmann::json::object();
    for (const auto& [kind, count] : method.node_kinds) {
      kinds[kind] = count;
    }
    methods.push_back({{"name", method.name},
                       {"arguments", arguments},
                       {"returns", method.returns},
                       {"node_count", method.node_count},
                       {"node_kinds", kinds}});
  }

  nlohmann::json result = {
      {"path", summary.path.string()},
      {"file_bytes", summary.file_bytes},
      {"parameters", totals_to_json(summary.parameters)},
      {"buffers", totals_to_json(summary.buffers)},
      {"metadata", summary.metadata},
      {"methods", methods},
      {"config_path", summary.config_path.empty() ? nlohmann::json() : nlohmann::json(summary.config_path.string())},
      {"config", summary.config ? config_to_json(*summary.config) : nlohmann::json()},
  };
  if (!summary.config_error.empty()) {
    result["config_error"] = summary.config_error;
  }
  return result;
}

}  // namespace qwen2vl
