// Structural nodes: constants, attributes, lists, tuples and the conversions
// between Python numbers and tensors that a trace records around sizes.
#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

// Constants and module attributes are materialized where they are used.
void lower_nothing(LoweringContext&, const Node*) {}

// ListUnpack / TupleUnpack: the outputs are the elements of the input.
void lower_unpack(LoweringContext& context, const Node* node) {
  const Value* list = node->input(0);
  if (const auto* names = context.list_names(list)) {
    if (names->size() != node->outputs().size()) throw UnsupportedNode("unpacking a list of the wrong length");
    for (size_t i = 0; i < names->size(); ++i) context.set(node->output(i), (*names)[i]);
    return;
  }
  auto elements = context.list_elements(list);
  if (!elements.empty()) {
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      const Value* element = elements.at(i);
      if (context.is_constant(element)) continue;
      context.set(node->output(i), context.tensor(element));
    }
    return;
  }
  // An int[] held as a 1-D tensor, e.g. the result of aten::size(x).
  std::string vector = context.int_list(list);
  for (size_t i = 0; i < node->outputs().size(); ++i) {
    if (context.is_constant(node->output(i))) continue;
    context.set(node->output(i), context.b().op("Gather", {vector, context.b().i64_scalar(int64_t(i))}, {{"axis", int64_t(0)}}));
  }
}

// Python number <-> 0-d tensor: same ONNX value, cast where the dtype changes.
void lower_number_to_tensor(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.tensor(node->input(0)));
}

void lower_tensor_to_int(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.int_as_scalar(context.int_value(node->input(0))));
}

void lower_tensor_to_float(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.tensor_as(node->input(0), DataType::kFloat));
}

void lower_scalar_implicit(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.tensor(node->input(0)));
}

// aten::size(x, dim) -> 0-d int64; aten::size(x) -> 1-D shape.
void lower_size(LoweringContext& context, const Node* node) {
  std::string x = context.tensor(node->input(0));
  if (node->inputs().size() == 1) {
    context.set(node->output(), context.b().shape(x));
    return;
  }
  int64_t dim = context.constant_int(node->input(1));
  if (dim < 0) dim += context.rank_of(node->input(0));
  context.set(node->output(), context.b().squeeze(context.b().dim(x, dim), {0}));
}

void lower_numel(LoweringContext& context, const Node* node) {
  std::string shape = context.b().shape(context.tensor(node->input(0)));
  context.set(node->output(), context.b().op("ReduceProd", {shape}, {{"keepdims", int64_t(0)}}));
}

// aten::__getitem__(int[] list, int index)
void lower_list_item(LoweringContext& context, const Node* node) {
  const Value* list = node->input(0);
  if (const auto* names = context.list_names(list)) {
    int64_t index = context.constant_int(node->input(1));
    if (index < 0) index += static_cast<int64_t>(names->size());
    context.set(node->output(), names->at(index));
    return;
  }
  auto elements = context.list_elements(list);
  if (!elements.empty() && context.is_constant(node->input(1))) {
    int64_t index = context.constant_int(node->input(1));
    if (index < 0) index += static_cast<int64_t>(elements.size());
    context.set(node->output(), context.tensor(elements.at(index)));
    return;
  }
  std::string vector = context.int_list(list);
  std::string index = context.int_as_scalar(context.int_value(node->input(1)));
  context.set(node->output(), context.b().op("Gather", {vector, index}, {{"axis", int64_t(0)}}));
}

}  // namespace

void add_prim_lowerings(Registry& registry) {
  for (const char* kind : {"prim::Constant", "prim::GetAttr", "prim::ListConstruct", "prim::TupleConstruct"}) {
    registry.add(kind, lower_nothing);
  }
  registry.add("prim::ListUnpack", lower_unpack);
  registry.add("prim::TupleUnpack", lower_unpack);
  registry.add("prim::NumToTensor", lower_number_to_tensor);
  registry.add("aten::Int", lower_tensor_to_int);
  registry.add("aten::IntImplicit", lower_tensor_to_int);
  registry.add("aten::Float", lower_tensor_to_float);
  registry.add("aten::FloatImplicit", lower_tensor_to_float);
  registry.add("aten::ScalarImplicit", lower_scalar_implicit);
  registry.add("aten::size", lower_size);
  registry.add("aten::numel", lower_numel);
  registry.add("aten::__getitem__", lower_list_item);
}

}  // namespace qwen2vl::lower
