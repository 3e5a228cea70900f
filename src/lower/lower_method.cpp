#include "qwen2vl/lower/lower_method.h"

#include <unordered_set>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

// Every output is a constant the profile recorded: later uses fold it.
bool folds_to_constants(const LoweringContext& context, const Node* node) {
  if (node->outputs().empty()) return false;
  for (const Value* output : node->outputs()) {
    if (!context.is_constant(output)) return false;
  }
  return true;
}

std::string schema_of(const Node* node) {
  if (const auto* schema = node->maybeSchema()) {
    std::ostringstream out;
    out << *schema;
    return out.str();
  }
  return "";
}

// The method's results as a flat list of values.
std::vector<const Value*> flat_outputs(const torch::jit::Graph& graph, LoweringContext& context) {
  std::vector<const Value*> result;
  for (const Value* output : graph.outputs()) {
    auto elements = context.list_elements(output);
    if (output->type()->kind() == c10::TypeKind::TupleType && !elements.empty()) {
      result.insert(result.end(), elements.begin(), elements.end());
    } else {
      result.push_back(output);
    }
  }
  return result;
}

}  // namespace

LoweringResult lower_method(const PreparedMethod& prepared, const Profile& profile,
                            const std::vector<std::string>& input_names, const std::vector<std::string>& output_names) {
  LoweringResult result;
  result.graph.name = prepared.method;
  GraphBuilder builder(result.graph);
  LoweringContext context(builder, prepared, profile);
  const auto& graph = *prepared.graph;

  if (graph.inputs().size() != input_names.size() + 1) {
    throw Error(ExitCode::kInvalidInput, "method " + prepared.method + " takes " +
                                             std::to_string(graph.inputs().size() - 1) + " arguments, but the task expects " +
                                             std::to_string(input_names.size()) + "; see docs/torchscript-contract.md");
  }
  for (size_t i = 0; i < input_names.size(); ++i) context.set(graph.inputs()[i + 1], input_names[i]);

  const Registry& registry = Registry::instance();
  // Outputs of nodes that failed to lower: their users are skipped, so each
  // problem is reported once, at its source.
  std::unordered_set<const Value*> failed_values;
  auto mark_failed = [&](const Node* node) {
    for (const Value* output : node->outputs()) failed_values.insert(output);
  };
  for (const Node* node : graph.nodes()) {
    bool reads_failed = false;
    for (const Value* input : node->inputs()) reads_failed = reads_failed || failed_values.count(input) > 0;
    if (reads_failed) {
      mark_failed(node);
      continue;
    }
    const Lowering* lowering = registry.find(node->kind());
    bool is_structural = node->kind() == c10::prim::Constant || node->kind() == c10::prim::GetAttr ||
                         node->kind() == c10::prim::ListConstruct || node->kind() == c10::prim::TupleConstruct;
    if (!is_structural && folds_to_constants(context, node)) {
      bool large_tensor = false;
      for (const Value* output : node->outputs()) {
        const auto& info = context.info(output);
        large_tensor = large_tensor || (info.is_tensor && info.values.empty());
      }
      if (!large_tensor) continue;
    }
    std::string origin = python_source_line(node);
    builder.set_origin(origin.empty() ? std::string(node->kind().toQualString())
                                      : std::string(node->kind().toQualString()) + " at " + origin);
    if (!lowering) {
      result.unsupported.push_back({node->kind().toQualString(), schema_of(node), node_text(node), origin,
                                    "no lowering registered"});
      mark_failed(node);
      continue;
    }
    try {
      (*lowering)(context, node);
    } catch (const UnsupportedNode& error) {
      result.unsupported.push_back({node->kind().toQualString(), schema_of(node), node_text(node), origin, error.what()});
      mark_failed(node);
    } catch (const c10::Error& error) {
      result.unsupported.push_back({node->kind().toQualString(), schema_of(node), node_text(node), origin,
                                    error.what_without_backtrace()});
      mark_failed(node);
    }
  }
  if (!result.unsupported.empty()) return result;

  auto outputs = flat_outputs(graph, context);
  if (outputs.size() != output_names.size()) {
    throw Error(ExitCode::kInvalidInput, "method " + prepared.method + " returns " + std::to_string(outputs.size()) +
                                             " values, but the task expects " + std::to_string(output_names.size()) +
                                             "; see docs/torchscript-contract.md");
  }
  builder.set_origin("graph output");
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string name = context.tensor(outputs[i]);
    result.graph.nodes.push_back(onnx::Node{"Identity", {name}, {output_names[i]}, {}, builder.fresh("output"), "", ""});
  }
  return result;
}

}  // namespace qwen2vl::lower
