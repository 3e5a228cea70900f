// Reductions: mean, sum, prod, max/min (values and indices), argmax, all/any.
// Opset 18 takes reduction axes as an input, not an attribute.
#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

int64_t normalize_dim(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

struct ReductionEntry {
  const char* kind;
  const char* onnx_op;
};

// x.op(dims, keepdim, dtype) or x.op(dtype) over every dim.
const ReductionEntry kReductions[] = {
    {"aten::mean", "ReduceMean"}, {"aten::sum", "ReduceSum"},  {"aten::prod", "ReduceProd"},
    {"aten::amax", "ReduceMax"},  {"aten::amin", "ReduceMin"},
};

void lower_reduction(LoweringContext& context, const Node* node, const std::string& onnx_op) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  std::string x = context.tensor_as(node->input(0), type);
  int64_t rank = context.rank_of(node->input(0));

  std::vector<int64_t> axes;
  bool keepdim = false;
  bool has_dims = node->inputs().size() >= 3 && !context.is_none(node->input(1)) &&
                  node->input(1)->type()->kind() != c10::TypeKind::IntType;
  if (node->inputs().size() >= 3 && node->input(1)->type()->kind() == c10::TypeKind::IntType) {
    // prod(x, int dim, keepdim, dtype)
    axes.push_back(normalize_dim(context.constant_int(node->input(1)), rank));
    keepdim = context.constant(node->input(2)).toBool();
  } else if (has_dims) {
    auto dims = context.constant_int_list(node->input(1));
    if (!dims) throw UnsupportedNode("reduction over dynamic dims");
    for (int64_t d : *dims) axes.push_back(normalize_dim(d, rank));
    keepdim = context.constant(node->input(2)).toBool();
  } else {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  if (axes.empty()) {  // sum(x, dim=[]) reduces everything
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  context.set(node->output(), b.op(onnx_op, {x, b.i64(axes)}, {{"keepdims", int64_t(keepdim)}}));
}

// max/min: (x, other) elementwise; (x) over all dims; (x, dim, keepdim) -> (values, indices).
void lower_max_min(LoweringContext& context, const Node* node, bool is_max) {
  auto& b = context.b();
  const char* reduce = is_max ? "ReduceMax" : "ReduceMin";
  if (node->inputs().size() == 2 && node->input(1)->type()->isSubtypeOf(*c10::TensorType::get())) {
    DataType type = context.type_of(node->output());
    context.set(node->output(), b.op(is_max ? "Max" : "Min", {context.tensor_as(node->input(0), type),
                                                                context.tensor_as(node->input(1), type)}));
    return;
  }
  std::string x = context.tensor(node->input(0));
  int64_t rank = context.rank_of(node->input(0));
  if (node->inputs().size() == 1) {
    std::vector<int64_t> axes;
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
    context.set(node->output(), b.op(reduce, {x, b.i64(axes)}, {{"keepdims", int64_t(0)}}));
    return;
  }
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  int64_t keepdim = context.constant(node->input(2)).toBool();
  context.set(node->output(0), b.op(reduce, {x, b.i64({dim})}, {{"keepdims", keepdim}}));
  if (node->outputs().size() > 1) {
    context.set(node->output(1), b.op(is_max ? "ArgMax" : "ArgMin", {x},
                                       {{"axis", dim}, {"keepdims", keepdim}, {"select_last_index", int64_t(0)}}));
  }
}

// argmax(x, dim=None, keepdim=False)
void lower_argmax(LoweringContext& context, const Node* node, bool is_max) {
  auto& b = context.b();
  std::string x = context.tensor(node->input(0));
  int64_t rank = context.rank_of(node->input(0));
  int64_t keepdim = context.constant(node->input(2)).toBool();
  int64_t dim = 0;
  bool flattened = context.is_none(node->input(1));
  if (flattened) {
    x = b.reshape(x, b.i64({-1}));
  } else {
    dim = normalize_dim(context.constant_int(node->input(1)), rank);
  }
  std::string result = b.op(is_max ? "ArgMax" : "ArgMin", {x}, {{"axis", dim}, {"keepdims", keepdim}});
  if (flattened && keepdim) {
    // torch keeps every dim of x as size 1, not only the flattened one.
    result = b.reshape(result, b.i64(std::vector<int64_t>(rank, 1)));
  }
  context.set(node->output(), result);
}

// all / any: min / max over the values as int64, then > 0. Over zero
// elements ReduceMin yields INT64_MAX and ReduceMax INT64_MIN, so the
// comparison gives torch's all() = true and any() = false, where a Cast to
// bool would turn both into true.
void lower_all_any(LoweringContext& context, const Node* node, bool is_all) {
  auto& b = context.b();
  std::string x = b.cast(context.tensor_as(node->input(0), DataType::kBool), DataType::kInt64);
  int64_t rank = context.rank_of(node->input(0));
  std::vector<int64_t> axes;
  int64_t keepdim = 0;
  if (node->inputs().size() >= 3) {
    axes.push_back(normalize_dim(context.constant_int(node->input(1)), rank));
    keepdim = context.constant(node->input(2)).toBool();
  } else {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  std::string reduced = b.op(is_all ? "ReduceMin" : "ReduceMax", {x, b.i64(axes)}, {{"keepdims", keepdim}});
  context.set(node->output(), b.op("Greater", {reduced, b.i64_scalar(0)}));
}

}  // namespace

void add_reduction_lowerings(Registry& registry) {
  for (const auto& entry : kReductions) {
    std::string op = entry.onnx_op;
    registry.add(entry.kind, [op](LoweringContext& c, const Node* n) { lower_reduction(c, n, op); });
  }
  registry.add("aten::max", [](LoweringContext& c, const Node* n) { lower_max_min(c, n, true); });
  registry.add("aten::min", [](LoweringContext& c, const Node* n) { lower_max_min(c, n, false); });
  registry.add("aten::argmax", [](LoweringContext& c, const Node* n) { lower_argmax(c, n, true); });
  registry.add("aten::argmin", [](LoweringContext& c, const Node* n) { lower_argmax(c, n, false); });
  registry.add("aten::all", [](LoweringContext& c, const Node* n) { lower_all_any(c, n, true); });
  registry.add("aten::any", [](LoweringContext& c, const Node* n) { lower_all_any(c, n, false); });
}

}  // namespace qwen2vl::lower
