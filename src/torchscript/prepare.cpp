#include "qwen2vl/torchscript/prepare.h"

#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_tuples.h>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Ops that return their first input unchanged in inference.
bool is_no_op(const Node* node) {
  static const std::vector<c10::Symbol> kinds = {
      c10::Symbol::fromQualString("aten::detach"), c10::Symbol::fromQualString("aten::contiguous"),
      c10::Symbol::fromQualString("aten::clone"),  c10::Symbol::fromQualString("aten::alias"),
      c10::Symbol::fromQualString("aten::lift_fresh"), c10::Symbol::fromQualString("aten::dropout"),
      c10::Symbol::fromQualString("aten::feature_dropout"), c10::Symbol::fromQualString("aten::alpha_dropout"),
  };
  if (node->outputs().size() != 1 || node->inputs().empty()) return false;
  for (const auto& kind : kinds) {
    if (node->kind() == kind) return true;
  }
  return false;
}

// Follow prim::GetAttr chains from `self` and record which tensors they read.
void collect_module_tensors(const torch::jit::Module& module, PreparedMethod& prepared) {
  std::unordered_map<const Value*, std::pair<c10::IValue, std::string>> objects;
  const Value* self = prepared.graph->inputs().at(0);
  objects[self] = {module._ivalue(), ""};

  for (Node* node : prepared.graph->nodes()) {
    if (node->kind() != c10::prim::GetAttr) continue;
    auto parent = objects.find(node->input(0));
    if (parent == objects.end()) continue;
    const std::string& field = node->s(c10::attr::name);
    const auto& object = parent->second.first.toObject();
    c10::IValue attribute = object->getAttr(field);
    std::string qualified = parent->second.second.empty() ? field : parent->second.second + "." + field;
    if (attribute.isTensor()) {
      prepared.module_tensors[node->output()] = ModuleTensor{qualified, attribute.toTensor()};
    } else if (attribute.isObject()) {
      objects[node->output()] = {attribute, qualified};
    }
  }
}

}  // namespace

PreparedMethod prepare_method(const torch::jit::Module& module, const std::string& method) {
  auto found = module.find_method(method);
  if (!found) {
    throw invalid_input("the TorchScript module has no method '" + method +
                        "'; trace it with tools/trace_model.py, which writes every method of docs/torchscript-contract.md");
  }

  PreparedMethod prepared;
  prepared.method = method;
  prepared.graph = found->graph()->copy();
  torch::jit::Inline(*prepared.graph);
  torch::jit::LowerSimpleTuples(prepared.graph);

  for (Node* node : prepared.graph->nodes()) {
    if (is_no_op(node)) node->output()->replaceAllUsesWith(node->input(0));
  }
  torch::jit::EliminateDeadCode(prepared.graph);

  collect_module_tensors(module, prepared);
  spdlog::debug("prepared {}: {} nodes, {} module tensors", method, std::distance(prepared.graph->nodes().begin(),
                prepared.graph->nodes().end()), prepared.module_tensors.size());
  return prepared;
}

std::string python_source_line(const torch::jit::Node* node) {
  const auto& range = node->sourceRange();
  if (!range.source()) return "";
  auto location = range.file_line_col();
  if (location) {
    auto [file, line, column] = *location;
    (void)column;
    return file + ":" + std::to_string(line);
  }
  return "";
}

std::string node_text(const torch::jit::Node* node) {
  std::ostringstream out;
  out << *node;
  std::string text = out.str();
  auto comment = text.find(" # ");
  if (comment != std::string::npos) text.resize(comment);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace qwen2vl
