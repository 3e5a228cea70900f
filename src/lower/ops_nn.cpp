// Neural-network ops: linear layers, matrix products, softmax,
// normalization, embeddings, convolution and attention.
#include <cmath>

#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

int64_t normalize_dim(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

// ConstantOfShape's value attribute: a 1-D tensor of one element (the ONNX
// checker rejects a 0-d one).
onnx::TensorValue fill_value(float value, DataType type) {
  onnx::TensorValue fill = onnx::TensorValue::float_scalar(value, type);
  fill.dims = {1};
  return fill;
}

// linear(x, W, b) = x W^T + b. Gemm with transB=1 reads W as stored, so the
// runtime never keeps a transposed copy of the weight:
//   y = Reshape(Gemm(Reshape(x, [-1, in]), W, b, transB=1), shape(x)[:-1] ++ [out])
void lower_linear(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  std::string x = context.tensor_as(node->input(0), type);
  std::string weight = context.tensor_as(node->input(1), type);
  int64_t rank = context.rank_of(node->input(0));
  bool has_bias = node->inputs().size() > 2 && !context.is_none(node->input(2));

  std::vector<std::string> inputs;
  std::string flat = x;
  if (rank != 2) {
    std::string in_features = b.dim(weight, 1);
    flat = b.op("Reshape", {x, b.concat({b.i64({-1}), in_features})}, {{"allowzero", int64_t(0)}});
  }
  inputs = {flat, weight};
  if (has_bias) inputs.push_back(context.tensor_as(node->input(2), type));
  std::string product = b.op("Gemm", inputs, {{"transB", int64_t(1)}});
  if (rank == 2) {
    context.set(node->output(), product);
    return;
  }
  std::string leading = b.op("Slice", {b.shape(x), b.i64({0}), b.i64({rank - 1})});
  std::string out_features = b.dim(weight, 0);
  context.set(node->output(), b.op("Reshape", {product, b.concat({leading, out_features})}, {{"allowzero", int64_t(1)}}));
}

void lower_matmul(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  std::string a = context.tensor_as(node->input(0), type);
  std::string c = context.tensor_as(node->input(1), type);
  context.set(node->output(), context.b().op("MatMul", {a, c}));
}

// addmm(bias, a, b, beta, alpha) = Gemm(a, b, bias, alpha, beta)
void lower_addmm(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->output());
  float beta = node->inputs().size() > 3 ? static_cast<float>(context.constant_double(node->input(3))) : 1.0f;
  float alpha = node->inputs().size() > 4 ? static_cast<float>(context.constant_double(node->input(4))) : 1.0f;
  context.set(node->output(), context.b().op("Gemm", {context.tensor_as(node->input(1), type),
                                                     context.tensor_as(node->input(2), type),
                                                     context.tensor_as(node->input(0), type)},
                                             {{"alpha", alpha}, {"beta", beta}}));
}

// softmax / log_softmax(x, dim, dtype): computed in the output dtype.
void lower_softmax(LoweringContext& context, const Node* node, const char* onnx_op) {
  DataType type = context.type_of(node->output());
  int64_t dim = normalize_dim(context.constant_int(node->input(1)), context.rank_of(node->input(0)));
  context.set(node->output(), context.b().op(onnx_op, {context.tensor_as(node->input(0), type)}, {{"axis", dim}}));
}

// layer_norm(x, normalized_shape, weight, bias, eps, cudnn_enable)
void lower_layer_norm(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  auto normalized = context.constant_int_list(node->input(1));
  if (!normalized) throw UnsupportedNode("layer_norm with a dynamic normalized_shape");
  int64_t count = static_cast<int64_t>(normalized->size());
  std::string x = context.tensor_as(node->input(0), type);
  std::string scale = context.is_none(node->input(2))
                          ? b.op("ConstantOfShape", {b.i64(*normalized)}, {{"value", fill_value(1.0f, type)}})
                          : context.tensor_as(node->input(2), type);
  std::vector<std::string> inputs = {x, scale};
  if (!context.is_none(node->input(3))) inputs.push_back(context.tensor_as(node->input(3), type));
  float epsilon = static_cast<float>(context.constant_double(node->input(4)));
  context.set(node->output(), b.op("LayerNormalization", inputs, {{"axis", -count}, {"epsilon", epsilon}}));
}

// embedding(weight, indices, ...) = Gather(weight, indices)
void lower_embedding(LoweringContext& context, const Node* node) {
  std::string indices = context.tensor_as(node->input(1), DataType::kInt64);
  context.set(node->output(), context.b().op("Gather", {context.tensor(node->input(0)), indices}, {{"axis", int64_t(0)}}));
}

std::vector<int64_t> repeated(std::vector<int64_t> values, size_t count) {
  if (values.size() == 1 && count > 1) values.assign(count, values.front());
  return values;
}

// _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups, ...)
// and conv1d/2d/3d(x, w, b, stride, padding, dilation, groups).
void lower_convolution(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  std::string kind = node->kind().toQualString();
  bool full_form = kind == "aten::_convolution" || kind == "aten::convolution";
  if (full_form && context.constant(node->input(6)).toBool()) throw UnsupportedNode("transposed convolution");
  if (!full_form && node->input(4)->type()->kind() == c10::TypeKind::StringType) {
    throw UnsupportedNode("convolution with string padding");
  }
  size_t spatial = static_cast<size_t>(context.rank_of(node->input(1)) - 2);
  auto stride = context.constant_int_list(node->input(3));
  auto padding = context.constant_int_list(node->input(4));
  auto dilation = context.constant_int_list(node->input(5));
  int64_t groups = context.constant_int(node->input(full_form ? 8 : 6));
  if (!stride || !padding || !dilation) throw UnsupportedNode("convolution with dynamic parameters");
  auto pads = repeated(*padding, spatial);
  pads.insert(pads.end(), pads.begin(), pads.end());

  std::vector<std::string> inputs = {context.tensor_as(node->input(0), type), context.tensor_as(node->input(1), type)};
  if (!context.is_none(node->input(2))) inputs.push_back(context.tensor_as(node->input(2), type));
  context.set(node->output(), b.op("Conv", inputs,
                                   {{"strides", repeated(*stride, spatial)},
                                    {"pads", pads},
                                    {"dilations", repeated(*dilation, spatial)},
                                    {"group", groups}}));
}

// scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa):
//   softmax(q k^T * scale + mask) v, with a boolean mask applied as -inf where false.
void lower_sdpa(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = context.type_of(node->output());
  std::string query = context.tensor_as(node->input(0), type);
  std::string key = context.tensor_as(node->input(1), type);
  std::string value = context.tensor_as(node->input(2), type);
  int64_t rank = context.rank_of(node->input(0));

  if (node->inputs().size() > 7 && context.constant(node->input(7)).toBool()) {
    // enable_gqa: repeat each key/value head for its group of query heads.
    const auto& q_info = context.info(node->input(0));
    const auto& k_info = context.info(node->input(1));
    int64_t q_heads = q_info.sizes.front().at(rank - 3);
    int64_t kv_heads = k_info.sizes.front().at(rank - 3);
    if (q_heads != kv_heads) {
      int64_t groups = q_heads / kv_heads;
      auto repeat = [&](const std::string& x) {
        std::string shape = b.shape(x);
        std::string expanded = b.op("Expand", {b.unsqueeze(x, {rank - 2}),
                                               b.concat({b.op("Slice", {shape, b.i64({0}), b.i64({rank - 2})}),
                                                         b.i64({groups}),
                                                         b.op("Slice", {shape, b.i64({rank - 2}), b.i64({rank})})})});
        std::string merged = b.concat({b.op("Slice", {shape, b.i64({0}), b.i64({rank - 3})}), b.i64({q_heads}),
                                       b.op("Slice", {shape, b.i64({rank - 2}), b.i64({rank})})});
        return b.reshape(expanded, merged);
      };
      key = repeat(key);
      value = repeat(value);
    }
  }

  double scale = 0;
  if (node->inputs().size() > 6 && !context.is_none(node->input(6))) {
    scale = context.constant_double(node->input(6));
  } else {
    int64_t head_dim = context.info(node->input(0)).sizes.front().back();
    scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  }
  std::vector<int64_t> perm(rank);
  for (int64_t i = 0; i < rank; ++i) perm[i] = i;
  std::swap(perm[rank - 1], perm[rank - 2]);
  std::string scores = b.op("MatMul", {query, b.op("Transpose", {key}, {{"perm", perm}})});
  scores = b.op("Mul", {scores, b.scalar(scale, type)});

  if (!context.is_none(node->input(3))) {
    const Value* mask = node->input(3);
    if (context.type_of(mask) == DataType::kBool) {
      scores = b.op("Where", {context.tensor(mask), scores, b.scalar(-INFINITY, type)});
    } else {
      scores = b.op("Add", {scores, context.tensor_as(mask, type)});
    }
  }
  if (context.constant(node->input(5)).toBool()) {
    // is_causal: query i attends to keys 0..i (top-left aligned, as torch does).
    std::string ones = b.op("ConstantOfShape", {b.op("Slice", {b.shape(scores), b.i64({rank - 2}), b.i64({rank})})},
                            {{"value", fill_value(1.0f, DataType::kFloat)}});
    std::string lower = b.cast(b.op("Trilu", {ones}, {{"upper", int64_t(0)}}), DataType::kBool);
    scores = b.op("Where", {lower, scores, b.scalar(-INFINITY, type)});
  }
  std::string weights = b.op("Softmax", {scores}, {{"axis", int64_t(-1)}});
  context.set(node->output(), b.op("MatMul", {weights, value}));
}

}  // namespace

void add_nn_lowerings(Registry& registry) {
  registry.add("aten::linear", lower_linear);
  for (const char* kind : {"aten::matmul", "aten::bmm", "aten::mm"}) registry.add(kind, lower_matmul);
  registry.add("aten::addmm", lower_addmm);
  registry.add("aten::softmax", [](LoweringContext& c, const Node* n) { lower_softmax(c, n, "Softmax"); });
  registry.add("aten::log_softmax", [](LoweringContext& c, const Node* n) { lower_softmax(c, n, "LogSoftmax"); });
  registry.add("aten::layer_norm", lower_layer_norm);
  registry.add("aten::embedding", lower_embedding);
  for (const char* kind : {"aten::_convolution", "aten::convolution", "aten::conv1d", "aten::conv2d", "aten::conv3d"}) {
    registry.add(kind, lower_convolution);
  }
  registry.add("aten::scaled_dot_product_attention", lower_sdpa);
}

}  // namespace qwen2vl::lower
