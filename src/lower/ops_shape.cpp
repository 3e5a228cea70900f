// Views and shape manipulation: reshape, transpose, slicing, concatenation,
// splitting and broadcasting. Shape vectors are int64 tensors, built from
// constants where the profile shows a size is static and from Shape/Gather
// where it is dynamic.
#include <limits>

#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

int64_t normalize_dim(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

// Sizes of `value` along `dim` in every profile run, or nullopt when it changes.
std::optional<int64_t> static_size(LoweringContext& context, const Value* value, int64_t dim) {
  const auto& info = context.info(value);
  if (!info.is_tensor || info.dim_is_dynamic(dim)) return std::nullopt;
  return info.sizes.front().at(dim);
}

// view / reshape(x, int[] shape). allowzero=1: torch never uses 0 to mean
// "copy this dim", and empty tensors (zero images) must keep their 0 dims.
void lower_reshape(LoweringContext& context, const Node* node) {
  std::string x = context.tensor(node->input(0));
  std::string shape = context.int_list(node->input(1));
  context.set(node->output(), context.b().op("Reshape", {x, shape}, {{"allowzero", int64_t(1)}}));
}

void lower_reshape_as(LoweringContext& context, const Node* node) {
  std::string x = context.tensor(node->input(0));
  std::string shape = context.b().shape(context.tensor(node->input(1)));
  context.set(node->output(), context.b().op("Reshape", {x, shape}, {{"allowzero", int64_t(1)}}));
}

// flatten(x, start, end): the dims start..end become their product.
void lower_flatten(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  std::string x = context.tensor(node->input(0));
  int64_t rank = context.rank_of(node->input(0));
  int64_t start = normalize_dim(context.constant_int(node->input(1)), std::max<int64_t>(rank, 1));
  int64_t end = normalize_dim(context.constant_int(node->input(2)), std::max<int64_t>(rank, 1));
  if (rank == 0) {
    context.set(node->output(), b.reshape(x, b.i64({1})));
    return;
  }
  std::string shape = b.shape(x);
  std::vector<std::string> parts;
  if (start > 0) parts.push_back(b.op("Slice", {shape, b.i64({0}), b.i64({start})}));
  std::string middle = b.op("Slice", {shape, b.i64({start}), b.i64({end + 1})});
  parts.push_back(b.op("ReduceProd", {middle}, {{"keepdims", int64_t(1)}}));
  if (end + 1 < rank) parts.push_back(b.op("Slice", {shape, b.i64({end + 1}), b.i64({rank})}));
  context.set(node->output(), b.op("Reshape", {x, b.concat(parts)}, {{"allowzero", int64_t(1)}}));
}

void lower_unsqueeze(LoweringContext& context, const Node* node) {
  int64_t rank = context.rank_of(node->input(0));
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank + 1);
  context.set(node->output(), context.b().unsqueeze(context.tensor(node->input(0)), {dim}));
}

// squeeze(x[, dim]): only dims the profile saw as size 1 in every run.
void lower_squeeze(LoweringContext& context, const Node* node) {
  const Value* input = node->input(0);
  int64_t rank = context.rank_of(input);
  std::vector<int64_t> candidates;
  if (node->inputs().size() == 1) {
    for (int64_t d = 0; d < rank; ++d) candidates.push_back(d);
  } else if (auto dims = context.constant_int_list(node->input(1))) {
    for (int64_t d : *dims) candidates.push_back(normalize_dim(d, rank));
  } else {
    candidates.push_back(normalize_dim(context.constant_int(node->input(1)), rank));
  }
  std::vector<int64_t> axes;
  for (int64_t d : candidates) {
    if (static_size(context, input, d) == std::optional<int64_t>(1)) axes.push_back(d);
  }
  std::string x = context.tensor(input);
  context.set(node->output(), axes.empty() ? x : context.b().squeeze(x, axes));
}

void lower_transpose(LoweringContext& context, const Node* node) {
  int64_t rank = context.rank_of(node->input(0));
  std::vector<int64_t> perm(rank);
  for (int64_t i = 0; i < rank; ++i) perm[i] = i;
  if (node->kind().toQualString() == std::string("aten::t")) {
    if (rank == 2) std::swap(perm[0], perm[1]);
  } else {
    int64_t a = normalize_dim(context.constant_int(node->input(1)), rank);
    int64_t c = normalize_dim(context.constant_int(node->input(2)), rank);
    std::swap(perm[a], perm[c]);
  }
  context.set(node->output(), context.b().op("Transpose", {context.tensor(node->input(0))}, {{"perm", perm}}));
}

void lower_permute(LoweringContext& context, const Node* node) {
  int64_t rank = context.rank_of(node->input(0));
  auto dims = context.constant_int_list(node->input(1));
  if (!dims) throw UnsupportedNode("permute with dynamic dims");
  for (auto& d : *dims) d = normalize_dim(d, rank);
  context.set(node->output(), context.b().op("Transpose", {context.tensor(node->input(0))}, {{"perm", *dims}}));
}

// expand(x, sizes): ONNX Expand broadcasts, so a -1 ("keep this dim") becomes 1.
void lower_expand(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  std::string shape;
  if (auto sizes = context.constant_int_list(node->input(1))) {
    for (auto& s : *sizes) s = s == -1 ? 1 : s;
    shape = b.i64(*sizes);
  } else {
    std::vector<std::string> parts;
    for (const Value* element : context.list_elements(node->input(1))) {
      IntValue size = context.int_value(element);
      if (std::holds_alternative<int64_t>(size) && std::get<int64_t>(size) == -1) size = int64_t(1);
      parts.push_back(context.int_as_1d(size));
    }
    if (parts.empty()) throw UnsupportedNode("expand with an opaque size list");
    shape = b.concat(parts);
  }
  context.set(node->output(), b.op("Expand", {context.tensor(node->input(0)), shape}));
}

void lower_expand_as(LoweringContext& context, const Node* node) {
  std::string shape = context.b().shape(context.tensor(node->input(1)));
  context.set(node->output(), context.b().op("Expand", {context.tensor(node->input(0)), shape}));
}

// repeat(x, sizes) = Tile, after unsqueezing x to len(sizes) dims.
void lower_repeat(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  std::string x = context.tensor(node->input(0));
  int64_t rank = context.rank_of(node->input(0));
  std::string repeats = context.int_list(node->input(1));
  auto constant = context.constant_int_list(node->input(1));
  int64_t count = constant ? static_cast<int64_t>(constant->size())
                           : static_cast<int64_t>(context.list_elements(node->input(1)).size());
  if (count > rank) {
    std::vector<int64_t> axes;
    for (int64_t i = 0; i < count - rank; ++i) axes.push_back(i);
    x = b.unsqueeze(x, axes);
  }
  context.set(node->output(), b.op("Tile", {x, repeats}));
}

// slice(x, dim, start, end, step)
void lower_slice(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  int64_t rank = context.rank_of(node->input(0));
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  IntValue start = context.is_none(node->input(2)) ? IntValue(int64_t(0)) : context.int_value(node->input(2));
  IntValue end = context.is_none(node->input(3)) ? IntValue(std::numeric_limits<int64_t>::max())
                                                  : context.int_value(node->input(3));
  int64_t step = node->inputs().size() > 4 ? context.constant_int(node->input(4)) : 1;
  // A full slice is a no-op.
  if (std::holds_alternative<int64_t>(start) && std::get<int64_t>(start) == 0 && std::holds_alternative<int64_t>(end) &&
      std::get<int64_t>(end) == std::numeric_limits<int64_t>::max() && step == 1) {
    context.set(node->output(), context.tensor(node->input(0)));
    return;
  }
  std::string x = context.tensor(node->input(0));
  context.set(node->output(), b.op("Slice", {x, context.int_as_1d(start), context.int_as_1d(end), b.i64({dim}),
                                             b.i64({step})}));
}

// narrow(x, dim, start, length) = x[start:start + length] along dim. A
// negative constant start counts from the end, so it becomes start + size
// first: Slice would read start + length = 0 as an empty range.
void lower_narrow(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  int64_t rank = context.rank_of(node->input(0));
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  std::string x = context.tensor(node->input(0));
  IntValue start_value = context.int_value(node->input(2));
  std::string start = context.int_as_1d(start_value);
  if (std::holds_alternative<int64_t>(start_value) && std::get<int64_t>(start_value) < 0) {
    start = b.op("Add", {start, b.dim(x, dim)});
  }
  std::string length = context.int_as_1d(context.int_value(node->input(3)));
  std::string end = b.op("Add", {start, length});
  context.set(node->output(), b.op("Slice", {x, start, end, b.i64({dim})}));
}

// select(x, dim, index) = Gather with a scalar index, which drops the dim.
void lower_select(LoweringContext& context, const Node* node) {
  int64_t rank = context.rank_of(node->input(0));
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  std::string index = context.int_as_scalar(context.int_value(node->input(2)));
  context.set(node->output(), context.b().op("Gather", {context.tensor(node->input(0)), index}, {{"axis", dim}}));
}

// True for the 1-D empty tensor torch.cat skips (a cache started as torch.tensor([])).
bool is_legacy_empty(LoweringContext& context, const Value* value, int64_t output_rank) {
  if (output_rank == 1 || !value->type()->isSubtypeOf(*c10::TensorType::get())) return false;
  const auto& info = context.info(value);
  if (!info.is_tensor || info.rank() != 1) return false;
  for (const auto& sizes : info.sizes) {
    if (sizes.at(0) != 0) return false;
  }
  return true;
}

void lower_cat(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  int64_t rank = context.rank_of(node->output());
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  std::vector<std::string> parts;
  if (const auto* names = context.list_names(node->input(0))) {
    parts = *names;
  } else {
    for (const Value* element : context.list_elements(node->input(0))) {
      if (is_legacy_empty(context, element, rank)) continue;
      parts.push_back(context.tensor_as(element, type));
    }
  }
  if (parts.empty()) throw UnsupportedNode("cat of an opaque or empty list");
  context.set(node->output(), parts.size() == 1 ? context.b().op("Identity", {parts[0]})
                                                : context.b().op("Concat", parts, {{"axis", dim}}));
}

void lower_stack(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  int64_t rank = context.rank_of(node->output());
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  std::vector<std::string> parts;
  for (const Value* element : context.list_elements(node->input(0))) {
    parts.push_back(context.b().unsqueeze(context.tensor_as(element, type), {dim}));
  }
  if (parts.empty()) throw UnsupportedNode("stack of an opaque list");
  context.set(node->output(), parts.size() == 1 ? parts[0] : context.b().op("Concat", parts, {{"axis", dim}}));
}

// The ListUnpack that reads a split's result, giving the piece count and profiles.
const Node* unpack_of(const Value* list) {
  for (const auto& use : list->uses()) {
    if (use.user->kind() == c10::prim::ListUnpack) return use.user;
  }
  return nullptr;
}

void finish_split(LoweringContext& context, const Node* node, const std::string& x, const std::string& sizes,
                  int64_t dim, size_t pieces) {
  auto outputs = context.b().node("Split", {x, sizes}, {{"axis", dim}}, pieces);
  context.set_list(node->output(), outputs);
}

// split(x, int size, dim), split_with_sizes(x, int[] sizes, dim), chunk(x, n, dim)
void lower_split(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  const Value* input = node->input(0);
  std::string x = context.tensor(input);
  int64_t rank = context.rank_of(input);
  int64_t dim = normalize_dim(context.constant_int(node->input(2)), rank);
  std::string kind = node->kind().toQualString();
  const Node* unpack = unpack_of(node->output());
  if (!unpack) throw UnsupportedNode(kind + " whose result is not unpacked into tensors");
  size_t pieces = unpack->outputs().size();

  if (kind == "aten::split_with_sizes" || (kind == "aten::split" && !node->input(1)->type()->cast<c10::IntType>())) {
    finish_split(context, node, x, context.int_list(node->input(1)), dim, pieces);
    return;
  }
  // Equal pieces: use the profiled piece sizes when static, else compute them.
  std::vector<int64_t> sizes;
  bool all_static = true;
  for (const Value* piece : unpack->outputs()) {
    auto size = static_size(context, piece, dim);
    if (!size) all_static = false;
    else sizes.push_back(*size);
  }
  if (all_static) {
    finish_split(context, node, x, b.i64(sizes), dim, pieces);
    return;
  }
  std::string total = b.dim(x, dim);
  std::string piece;
  if (kind == "aten::chunk") {
    // ceil(total / n)
    std::string n = b.i64({static_cast<int64_t>(pieces)});
    piece = b.op("Div", {b.op("Sub", {b.op("Add", {total, n}), b.i64({1})}), n});
  } else {
    piece = context.int_as_1d(context.int_value(node->input(1)));
  }
  std::vector<std::string> parts(pieces - 1, piece);
  std::string used = b.op("Mul", {piece, b.i64({static_cast<int64_t>(pieces - 1)})});
  parts.push_back(b.op("Sub", {total, used}));
  finish_split(context, node, x, b.concat(parts), dim, pieces);
}

// unbind(x, dim): Split into size-1 pieces, then Squeeze each.
void lower_unbind(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  const Value* input = node->input(0);
  int64_t rank = context.rank_of(input);
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), rank);
  auto count = static_size(context, input, dim);
  if (!count) throw UnsupportedNode("unbind along a dynamic dim");
  auto pieces = b.node("Split", {context.tensor(input), b.i64(std::vector<int64_t>(*count, 1))}, {{"axis", dim}}, *count);
  for (auto& piece : pieces) piece = b.squeeze(piece, {dim});
  context.set_list(node->output(), pieces);
}

void lower_flip(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  int64_t rank = context.rank_of(node->input(0));
  auto dims = context.constant_int_list(node->input(1));
  if (!dims) throw UnsupportedNode("flip with dynamic dims");
  std::string x = context.tensor(node->input(0));
  for (int64_t d : *dims) {
    int64_t axis = normalize_dim(d, rank);
    x = b.op("Slice", {x, b.i64({-1}), b.i64({std::numeric_limits<int64_t>::min()}), b.i64({axis}), b.i64({-1})});
  }
  context.set(node->output(), x);
}

}  // namespace

void add_shape_lowerings(Registry& registry) {
  for (const char* kind : {"aten::view", "aten::reshape", "aten::_unsafe_view", "aten::_reshape_alias"}) {
    registry.add(kind, lower_reshape);
  }
  registry.add("aten::view_as", lower_reshape_as);
  registry.add("aten::reshape_as", lower_reshape_as);
  registry.add("aten::flatten", lower_flatten);
  registry.add("aten::unsqueeze", lower_unsqueeze);
  registry.add("aten::squeeze", lower_squeeze);
  registry.add("aten::transpose", lower_transpose);
  registry.add("aten::t", lower_transpose);
  registry.add("aten::permute", lower_permute);
  registry.add("aten::expand", lower_expand);
  registry.add("aten::expand_as", lower_expand_as);
  registry.add("aten::repeat", lower_repeat);
  registry.add("aten::slice", lower_slice);
  registry.add("aten::narrow", lower_narrow);
  registry.add("aten::select", lower_select);
  registry.add("aten::cat", lower_cat);
  registry.add("aten::concat", lower_cat);
  registry.add("aten::stack", lower_stack);
  registry.add("aten::split", lower_split);
  registry.add("aten::split_with_sizes", lower_split);
  registry.add("aten::chunk", lower_split);
  registry.add("aten::unbind", lower_unbind);
  registry.add("aten::flip", lower_flip);
}

}  // namespace qwen2vl::lower
