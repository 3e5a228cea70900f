// Indexing and selection: advanced indexing, gathers, masked updates,
// where, cumulative sums and triangular masks.
#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

int64_t normalize_dim(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

// aten::index(x, Tensor?[] indices), the forms traces of transformers use:
//   one index tensor at dim k, the others None:  long -> Gather(axis=k);
//                                                 bool -> Compress over the masked dims
//   long tensors on dims 0..m-1:                  broadcast, stack, GatherND
void lower_index(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  const Value* source = node->input(0);
  std::string x = context.tensor(source);
  int64_t rank = context.rank_of(source);
  auto indices = context.list_elements(node->input(1));
  if (indices.empty()) throw UnsupportedNode("index with an opaque index list");

  std::vector<size_t> present;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (!context.is_none(indices[i])) present.push_back(i);
  }
  if (present.size() == 1) {
    const Value* index = indices[present[0]];
    int64_t axis = static_cast<int64_t>(present[0]);
    if (context.type_of(index) == DataType::kBool) {
      int64_t mask_rank = context.rank_of(index);
      if (mask_rank == 1) {
        context.set(node->output(), b.op("Compress", {x, context.tensor(index)}, {{"axis", axis}}));
        return;
      }
      // Flatten the masked dims of x and of the mask, then Compress.
      std::string shape = b.shape(x);
      std::vector<std::string> parts;
      if (axis > 0) parts.push_back(b.op("Slice", {shape, b.i64({0}), b.i64({axis})}));
      parts.push_back(b.i64({-1}));
      if (axis + mask_rank < rank) parts.push_back(b.op("Slice", {shape, b.i64({axis + mask_rank}), b.i64({rank})}));
      std::string flat = b.reshape(x, b.concat(parts));
      std::string flat_mask = b.reshape(context.tensor(index), b.i64({-1}));
      context.set(node->output(), b.op("Compress", {flat, flat_mask}, {{"axis", axis}}));
      return;
    }
    std::string positions = context.tensor_as(index, DataType::kInt64);
    context.set(node->output(), b.op("Gather", {x, positions}, {{"axis", axis}}));
    return;
  }
  for (size_t i = 0; i < present.size(); ++i) {
    if (present[i] != i) throw UnsupportedNode("index with tensors on non-leading dims");
    if (context.type_of(indices[i]) == DataType::kBool) throw UnsupportedNode("index with several boolean masks");
  }
  // Broadcast all index tensors to one shape: adding zeros broadcasts.
  std::vector<std::string> positions;
  std::string zero_sum;
  for (size_t i : present) {
    std::string index = context.tensor_as(indices[i], DataType::kInt64);
    positions.push_back(index);
    std::string zeros = b.op("Mul", {index, b.i64_scalar(0)});
    zero_sum = zero_sum.empty() ? zeros : b.op("Add", {zero_sum, zeros});
  }
  std::vector<std::string> stacked;
  for (const auto& index : positions) stacked.push_back(b.unsqueeze(b.op("Add", {index, zero_sum}), {-1}));
  context.set(node->output(), b.op("GatherND", {x, b.concat(stacked, -1)}));
}

void lower_index_select(LoweringContext& context, const Node* node) {
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), context.rank_of(node->input(0)));
  std::string index = context.tensor_as(node->input(2), DataType::kInt64);
  context.set(node->output(), context.b().op("Gather", {context.tensor(node->input(0)), index}, {{"axis", dim}}));
}

// gather(x, dim, index) = GatherElements
void lower_gather(LoweringContext& context, const Node* node) {
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), context.rank_of(node->input(0)));
  std::string index = context.tensor_as(node->input(2), DataType::kInt64);
  context.set(node->output(), context.b().op("GatherElements", {context.tensor(node->input(0)), index}, {{"axis", dim}}));
}

// masked_fill(x, mask, value) = Where(mask, value, x)
void lower_masked_fill(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  std::string x = context.tensor_as(node->input(0), type);
  std::string mask = context.tensor_as(node->input(1), DataType::kBool);
  std::string value = context.tensor_as(node->input(2), type);
  context.set(node->output(), context.b().op("Where", {mask, value, x}));
}

// where(condition, a, b)
void lower_where(LoweringContext& context, const Node* node) {
  if (node->inputs().size() != 3) throw UnsupportedNode("where with one argument (nonzero) is not lowered");
  DataType type = context.type_of(node->output());
  std::string condition = context.tensor_as(node->input(0), DataType::kBool);
  std::string a = context.tensor_as(node->input(1), type);
  std::string c = context.tensor_as(node->input(2), type);
  context.set(node->output(), context.b().op("Where", {condition, a, c}));
}

// masked_scatter(x, mask, source): the k-th true element of the broadcast
// mask (in row-major order) takes the k-th element of source.
//   position = CumSum(mask) - 1
//   result   = Where(mask, Gather(concat(flat(source), [0]), max(position, 0)), x)
// The extra 0 keeps Gather valid when source is empty (no images).
void lower_masked_scatter(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  std::string x = context.tensor_as(node->input(0), type);
  std::string shape = b.shape(x);
  std::string mask = b.op("Expand", {context.tensor_as(node->input(1), DataType::kBool), shape});
  std::string flat_mask = b.reshape(b.cast(mask, DataType::kInt64), b.i64({-1}));
  std::string position = b.op("Sub", {b.op("CumSum", {flat_mask, b.i64_scalar(0)}), b.i64_scalar(1)});
  position = b.op("Max", {position, b.i64_scalar(0)});
  std::string source = b.reshape(context.tensor_as(node->input(2), type), b.i64({-1}));
  std::string padded = b.op("Concat", {source, b.reshape(b.scalar(0, type), b.i64({1}))}, {{"axis", int64_t(0)}});
  std::string picked = b.reshape(b.op("Gather", {padded, position}, {{"axis", int64_t(0)}}), shape);
  context.set(node->output(), b.op("Where", {mask, picked, x}));
}

// cumsum(x, dim, dtype)
void lower_cumsum(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), context.rank_of(node->input(0)));
  std::string x = context.tensor_as(node->input(0), type);
  context.set(node->output(), context.b().op("CumSum", {x, context.b().i64_scalar(dim)}));
}

// triu / tril(x, diagonal) = Trilu
void lower_trilu(LoweringContext& context, const Node* node, bool upper) {
  std::string k = context.int_as_scalar(context.int_value(node->input(1)));
  context.set(node->output(), context.b().op("Trilu", {context.tensor(node->input(0)), k}, {{"upper", int64_t(upper)}}));
}

// nonzero(x) = Transpose(NonZero(x)): torch returns [count, rank].
void lower_nonzero(LoweringContext& context, const Node* node) {
  std::string indices = context.b().op("NonZero", {context.tensor(node->input(0))});
  context.set(node->output(), context.b().op("Transpose", {indices}, {{"perm", std::vector<int64_t>{1, 0}}}));
}

}  // namespace

void add_index_lowerings(Registry& registry) {
  registry.add("aten::index", lower_index);
  registry.add("aten::index_select", lower_index_select);
  registry.add("aten::gather", lower_gather);
  registry.add("aten::masked_fill", lower_masked_fill);
  registry.add("aten::where", lower_where);
  registry.add("aten::masked_scatter", lower_masked_scatter);
  registry.add("aten::cumsum", lower_cumsum);
  registry.add("aten::triu", [](LoweringContext& c, const Node* n) { lower_trilu(c, n, true); });
  registry.add("aten::tril", [](LoweringContext& c, const Node* n) { lower_trilu(c, n, false); });
  registry.add("aten::nonzero", lower_nonzero);
}

}  // namespace qwen2vl::lower
