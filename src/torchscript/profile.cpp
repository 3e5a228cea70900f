#include "qwen2vl/torchscript/profile.h"

#include <unordered_set>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Ops whose result depends on the shapes of their tensor inputs, not on
// their elements.
bool reads_shape_only(const Node* node) {
  static const std::unordered_set<std::string> kinds = {
      "aten::size",       "aten::dim",      "aten::numel",     "prim::dtype",     "prim::device",
      "aten::zeros_like", "aten::ones_like", "aten::empty_like", "aten::full_like", "aten::new_zeros",
      "aten::new_ones",   "aten::new_empty", "aten::new_full",   "prim::layout",    "aten::len",
  };
  return kinds.count(node->kind().toQualString()) > 0;
}

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// Evaluate one node on the values of its inputs.
std::vector<c10::IValue> evaluate(const Node* node, const std::vector<c10::IValue>& inputs) {
  switch (node->kind()) {
    case c10::prim::Constant:
      return {torch::jit::toIValue(node->output()).value()};
    case c10::prim::GetAttr:
      return {inputs.at(0).toObject()->getAttr(node->s(c10::attr::name))};
    case c10::prim::ListConstruct: {
      auto element_type = node->output()->type()->expectRef<c10::ListType>().getElementType();
      c10::impl::GenericList list(element_type);
      for (const auto& input : inputs) list.push_back(input);
      return {c10::IValue(list)};
    }
    case c10::prim::ListUnpack: {
      auto list = inputs.at(0).toListRef();
      return std::vector<c10::IValue>(list.begin(), list.end());
    }
    case c10::prim::TupleConstruct:
      return {c10::ivalue::Tuple::create(inputs)};
    case c10::prim::TupleUnpack: {
      const auto& elements = inputs.at(0).toTupleRef().elements();
      return std::vector<c10::IValue>(elements.begin(), elements.end());
    }
    default:
      break;
  }
  if (!node->maybeOperator()) {
    throw std::runtime_error("no LibTorch operator for " + std::string(node->kind().toQualString()));
  }
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  node->getOperation()(stack);
  if (stack.size() != node->outputs().size()) {
    throw std::runtime_error("operator returned " + std::to_string(stack.size()) + " values, expected " +
                             std::to_string(node->outputs().size()));
  }
  return std::vector<c10::IValue>(stack.begin(), stack.end());
}

// The last node index that reads each value, so tensors can be freed early.
std::unordered_map<const Value*, size_t> last_uses(const torch::jit::Graph& graph) {
  std::unordered_map<const Value*, size_t> last;
  size_t index = 0;
  for (const Node* node : graph.nodes()) {
    for (const Value* input : node->inputs()) last[input] = index;
    ++index;
  }
  for (const Value* output : graph.outputs()) last[output] = index;
  return last;
}

void record(ValueProfile& profile, const c10::IValue& value) {
  if (value.isTensor()) {
    const auto& tensor = value.toTensor();
    profile.is_tensor = true;
    profile.dtype = tensor.scalar_type();
    profile.sizes.push_back(tensor.sizes().vec());
    if (tensor.numel() <= kFoldableElements) profile.values.push_back(tensor.clone());
    return;
  }
  // Lists and tuples of tensors are described by the values they unpack to;
  // keeping them here would hold every activation until the run ends.
  if (value.isTensorList() || value.isTuple() || (value.isList() && !value.isIntList() && !value.isDoubleList() &&
                                                  !value.isBoolList())) {
    return;
  }
  profile.values.push_back(value);
}

bool same_ivalue(const c10::IValue& a, const c10::IValue& b) {
  if (a.isTensor() && b.isTensor()) {
    const auto& x = a.toTensor();
    const auto& y = b.toTensor();
    return x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() && torch::equal(x, y);
  }
  if (a.isTensor() != b.isTensor()) return false;
  if (a.isObject() || b.isObject()) return a.isSameIdentity(b);
  try {
    return a == b;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

bool ValueProfile::dim_is_dynamic(size_t dim) const {
  for (const auto& run : sizes) {
    if (run.size() <= dim || run[dim] != sizes.front()[dim]) return true;
  }
  return false;
}

const ValueProfile& Profile::at(const Value* value) const {
  auto found = values.find(value);
  if (found == values.end()) {
    throw Error(ExitCode::kInternal, "no profile for value %" + value->debugName());
  }
  return found->second;
}

Profile profile_method(const PreparedMethod& prepared, const torch::jit::Module& module,
                       const std::vector<std::vector<c10::IValue>>& input_sets, ProfileFailure* failure) {
  const auto& graph = *prepared.graph;
  Profile profile;
  profile.runs = static_cast<int>(input_sets.size());
  auto last = last_uses(graph);

  for (size_t run = 0; run < input_sets.size(); ++run) {
    const auto& inputs = input_sets[run];
    if (inputs.size() + 1 != graph.inputs().size()) {
      throw Error(ExitCode::kInternal, "method " + prepared.method + " takes " +
                                           std::to_string(graph.inputs().size() - 1) + " inputs, got " +
                                           std::to_string(inputs.size()));
    }
    std::unordered_map<const Value*, c10::IValue> env;
    env[graph.inputs()[0]] = module._ivalue();
    for (size_t i = 0; i < inputs.size(); ++i) {
      env[graph.inputs()[i + 1]] = inputs[i];
      record(profile.values[graph.inputs()[i + 1]], inputs[i]);
    }

    size_t index = 0;
    for (const Node* node : graph.nodes()) {
      std::vector<c10::IValue> arguments;
      arguments.reserve(node->inputs().size());
      for (const Value* input : node->inputs()) arguments.push_back(env.at(input));

      std::vector<c10::IValue> results;
      try {
        results = evaluate(node, arguments);
      } catch (const std::exception& error) {
        ProfileFailure details{static_cast<int>(run), node_text(node), python_source_line(node), first_line(error.what())};
        if (failure) *failure = details;
        throw Error(ExitCode::kUnsupported,
                    "profiling " + prepared.method + " failed at size set " + std::to_string(run + 1) + " in `" +
                        details.node + "`" + (details.source_line.empty() ? "" : " (" + details.source_line + ")") +
                        ": " + details.message);
      }

      for (size_t i = 0; i < results.size(); ++i) {
        const Value* output = node->outputs()[i];
        if (node->kind() != c10::prim::GetAttr || !results[i].isObject()) record(profile.values[output], results[i]);
        env[output] = std::move(results[i]);
      }
      for (const Value* input : node->inputs()) {
        if (last[input] == index && input != graph.inputs()[0]) env.erase(input);
      }
      ++index;
    }
  }

  // Mark what can change with the inputs, in graph order.
  for (size_t i = 1; i < graph.inputs().size(); ++i) profile.values[graph.inputs()[i]].dynamic = true;
  for (const Node* node : graph.nodes()) {
    bool dynamic = false;
    if (reads_shape_only(node)) {
      for (const Value* input : node->inputs()) {
        auto found = profile.values.find(input);
        if (found == profile.values.end()) continue;
        const auto& input_profile = found->second;
        if (!input_profile.is_tensor) {
          dynamic = dynamic || input_profile.dynamic;
          continue;
        }
        if (node->kind() == c10::aten::size && node->inputs().size() == 2) {
          auto dim = torch::jit::toIValue(node->input(1));
          if (dim && dim->isInt()) {
            int64_t d = dim->toInt();
            if (d < 0) d += input_profile.rank();
            dynamic = dynamic || input_profile.dim_is_dynamic(static_cast<size_t>(d));
            continue;
          }
        }
        for (int64_t d = 0; d < input_profile.rank(); ++d) dynamic = dynamic || input_profile.dim_is_dynamic(d);
      }
    } else {
      for (const Value* input : node->inputs()) {
        auto found = profile.values.find(input);
        if (found != profile.values.end() && found->second.dynamic) dynamic = true;
      }
    }
    for (const Value* output : node->outputs()) {
      auto found = profile.values.find(output);
      if (found == profile.values.end()) continue;
      auto& output_profile = found->second;
      output_profile.dynamic = dynamic;
      // A value that differs between runs is dynamic, whatever its inputs are.
      for (size_t run = 1; run < output_profile.values.size() && !output_profile.dynamic; ++run) {
        if (!same_ivalue(output_profile.values[run], output_profile.values[0])) output_profile.dynamic = true;
      }
    }
  }
  return profile;
}

}  // namespace qwen2vl
