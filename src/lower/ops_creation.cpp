// Tensor factories: arange, zeros/ones/full and their _like/new_ forms.
#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

onnx::TensorValue fill_value(double value, DataType type) {
  onnx::TensorValue tensor;
  tensor.type = type;
  tensor.dims = {1};
  auto store = [&](auto typed) { tensor.raw.assign(reinterpret_cast<const char*>(&typed), sizeof(typed)); };
  switch (type) {
    case DataType::kFloat: store(static_cast<float>(value)); break;
    case DataType::kDouble: store(value); break;
    case DataType::kInt64: store(static_cast<int64_t>(value)); break;
    case DataType::kInt32: store(static_cast<int32_t>(value)); break;
    case DataType::kBool: store(static_cast<uint8_t>(value != 0)); break;
    case DataType::kUint8: store(static_cast<uint8_t>(value)); break;
    case DataType::kInt8: store(static_cast<int8_t>(value)); break;
    default: throw UnsupportedNode(std::string("filling a tensor of dtype ") + onnx::data_type_name(type));
  }
  return tensor;
}

// A tensor of `shape` (1-D int64) filled with the constant or dynamic `fill`.
std::string filled(LoweringContext& context, const std::string& shape, const Value* fill, double constant_fill,
                   DataType type) {
  auto& b = context.b();
  if (!fill || context.is_constant(fill)) {
    double value = fill ? context.constant_double(fill) : constant_fill;
    return b.op("ConstantOfShape", {shape}, {{"value", fill_value(value, type)}});
  }
  return b.op("Expand", {context.tensor_as(fill, type), shape});
}

// zeros / ones / empty (size, dtype, ...), full(size, fill, dtype, ...)
void lower_factory(LoweringContext& context, const Node* node, double value, bool has_fill) {
  DataType type = context.type_of(node->output());
  std::string shape = context.int_list(node->input(0));
  const Value* fill = has_fill ? node->input(1) : nullptr;
  context.set(node->output(), filled(context, shape, fill, value, type));
}

// zeros_like / ones_like / empty_like (x, ...), full_like(x, fill, ...)
void lower_like(LoweringContext& context, const Node* node, double value, bool has_fill) {
  DataType type = context.type_of(node->output());
  std::string shape = context.b().shape(context.tensor(node->input(0)));
  const Value* fill = has_fill ? node->input(1) : nullptr;
  context.set(node->output(), filled(context, shape, fill, value, type));
}

// new_zeros / new_ones / new_empty (x, size, ...), new_full(x, size, fill, ...)
void lower_new(LoweringContext& context, const Node* node, double value, bool has_fill) {
  DataType type = context.type_of(node->output());
  std::string shape = context.int_list(node->input(1));
  const Value* fill = has_fill ? node->input(2) : nullptr;
  context.set(node->output(), filled(context, shape, fill, value, type));
}

// arange(end, ...), arange(start, end, ...), arange(start, end, step, ...):
// the argument count (5, 6 or 7) identifies the overload.
void lower_arange(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  size_t count = node->inputs().size();
  const Value* start = nullptr;
  const Value* end = nullptr;
  const Value* step = nullptr;
  if (count == 5) {
    end = node->input(0);
  } else if (count == 6) {
    start = node->input(0);
    end = node->input(1);
  } else if (count == 7) {
    start = node->input(0);
    end = node->input(1);
    step = node->input(2);
  } else {
    throw UnsupportedNode("arange with " + std::to_string(count) + " arguments");
  }
  auto scalar = [&](const Value* value, double fallback) {
    if (!value) return b.scalar(fallback, type);
    std::string name = context.tensor_as(value, type);
    if (value->type()->isSubtypeOf(*c10::TensorType::get()) && context.rank_of(value) == 1) name = b.squeeze(name, {0});
    return name;
  };
  context.set(node->output(), b.op("Range", {scalar(start, 0), scalar(end, 0), scalar(step, 1)}));
}

// meshgrid(tensors, indexing): output i is tensor i laid along its own dim
// and expanded to the full grid. "xy" swaps the first two dims.
void lower_meshgrid(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  auto tensors = context.tensor_list(node->input(0));
  std::string indexing = "ij";
  if (node->inputs().size() > 1 && !context.is_none(node->input(1))) indexing = context.constant(node->input(1)).toStringRef();
  int64_t count = static_cast<int64_t>(tensors.size());
  if (count == 0) throw UnsupportedNode("meshgrid of an opaque list");

  std::vector<int64_t> position(count);
  for (int64_t i = 0; i < count; ++i) position[i] = i;
  if (indexing == "xy" && count >= 2) std::swap(position[0], position[1]);

  std::vector<std::string> lengths(count);
  for (int64_t i = 0; i < count; ++i) lengths[position[i]] = b.reshape(tensors[i], b.i64({-1}));
  std::vector<std::string> dims;
  for (const auto& flat : lengths) dims.push_back(b.shape(flat));
  std::string grid_shape = b.concat(dims);

  std::vector<std::string> outputs;
  for (int64_t i = 0; i < count; ++i) {
    std::vector<int64_t> view(count, 1);
    view[position[i]] = -1;
    outputs.push_back(b.op("Expand", {b.reshape(tensors[i], b.i64(view)), grid_shape}));
  }
  context.set_list(node->output(), outputs);
}

void lower_scalar_tensor(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.tensor_as(node->input(0), context.type_of(node->output())));
}

}  // namespace

void add_creation_lowerings(Registry& registry) {
  registry.add("aten::zeros", [](LoweringContext& c, const Node* n) { lower_factory(c, n, 0, false); });
  registry.add("aten::ones", [](LoweringContext& c, const Node* n) { lower_factory(c, n, 1, false); });
  registry.add("aten::empty", [](LoweringContext& c, const Node* n) { lower_factory(c, n, 0, false); });
  registry.add("aten::full", [](LoweringContext& c, const Node* n) { lower_factory(c, n, 0, true); });
  registry.add("aten::zeros_like", [](LoweringContext& c, const Node* n) { lower_like(c, n, 0, false); });
  registry.add("aten::ones_like", [](LoweringContext& c, const Node* n) { lower_like(c, n, 1, false); });
  registry.add("aten::empty_like", [](LoweringContext& c, const Node* n) { lower_like(c, n, 0, false); });
  registry.add("aten::full_like", [](LoweringContext& c, const Node* n) { lower_like(c, n, 0, true); });
  registry.add("aten::new_zeros", [](LoweringContext& c, const Node* n) { lower_new(c, n, 0, false); });
  registry.add("aten::new_ones", [](LoweringContext& c, const Node* n) { lower_new(c, n, 1, false); });
  registry.add("aten::new_empty", [](LoweringContext& c, const Node* n) { lower_new(c, n, 0, false); });
  registry.add("aten::new_full", [](LoweringContext& c, const Node* n) { lower_new(c, n, 0, true); });
  registry.add("aten::arange", lower_arange);
  registry.add("aten::scalar_tensor", lower_scalar_tensor);
  registry.add("aten::meshgrid", lower_meshgrid);
}

}  // namespace qwen2vl::lower
