// Elementwise ops: unary and binary families registered from tables, plus
// dtype conversions. Operands are cast to the dtype LibTorch computed in,
// read from the profile, so scalars and mixed dtypes follow torch's type
// promotion exactly.
#include <ATen/ATen.h>

#include "qwen2vl/lower/registry.h"

namespace qwen2vl::lower {
namespace {

bool is_tensor_value(const Value* value) { return value->type()->isSubtypeOf(*c10::TensorType::get()); }

// The dtype torch computes a binary op of inputs 0 and 1 in
// (at::result_type, with its rules for 0-d tensors and Python numbers).
DataType promoted_type(LoweringContext& context, const Node* node) {
  auto sample = [&](const Value* value) -> std::variant<at::Tensor, at::Scalar> {
    DataType type = context.type_of(value);
    if (is_tensor_value(value)) {
      auto options = at::TensorOptions().dtype(to_torch_type(type));
      return context.rank_of(value) == 0 ? at::zeros({}, options) : at::zeros({1}, options);
    }
    if (type == DataType::kFloat) return at::Scalar(0.5);
    if (type == DataType::kBool) return at::Scalar(true);
    return at::Scalar(int64_t(1));
  };
  auto lhs = sample(node->input(0));
  auto rhs = sample(node->input(1));
  c10::ScalarType result;
  if (std::holds_alternative<at::Tensor>(lhs) && std::holds_alternative<at::Tensor>(rhs)) {
    result = at::result_type(std::get<at::Tensor>(lhs), std::get<at::Tensor>(rhs));
  } else if (std::holds_alternative<at::Tensor>(lhs)) {
    result = at::result_type(std::get<at::Tensor>(lhs), std::get<at::Scalar>(rhs));
  } else if (std::holds_alternative<at::Tensor>(rhs)) {
    result = at::result_type(std::get<at::Tensor>(rhs), std::get<at::Scalar>(lhs));
  } else {
    result = at::result_type(at::scalar_tensor(std::get<at::Scalar>(lhs)), std::get<at::Scalar>(rhs));
  }
  return to_onnx_type(result);
}

DataType output_type(LoweringContext& context, const Node* node) { return context.type_of(node->output()); }

bool is_float_type(DataType type) {
  return type == DataType::kFloat || type == DataType::kDouble || type == DataType::kFloat16 ||
         type == DataType::kBfloat16;
}

// ---- Unary ----------------------------------------------------------------

struct UnaryEntry {
  const char* kind;
  const char* onnx_op;
};

// x -> Op(x), computed in the output dtype.
const UnaryEntry kUnary[] = {
    {"aten::neg", "Neg"},         {"aten::cos", "Cos"},       {"aten::sin", "Sin"},
    {"aten::exp", "Exp"},         {"aten::log", "Log"},       {"aten::sqrt", "Sqrt"},
    {"aten::abs", "Abs"},         {"aten::sigmoid", "Sigmoid"}, {"aten::tanh", "Tanh"},
    {"aten::relu", "Relu"},       {"aten::erf", "Erf"},       {"aten::floor", "Floor"},
    {"aten::ceil", "Ceil"},       {"aten::round", "Round"},   {"aten::reciprocal", "Reciprocal"},
    {"aten::sign", "Sign"},       {"aten::isnan", "IsNaN"},   {"aten::tan", "Tan"},
    {"aten::atan", "Atan"},
};

void lower_unary(LoweringContext& context, const Node* node, const std::string& onnx_op) {
  DataType type = output_type(context, node);
  std::string x = onnx_op == "IsNaN" ? context.tensor(node->input(0)) : context.tensor_as(node->input(0), type);
  context.set(node->output(), context.b().op(onnx_op, {x}));
}

// rsqrt(x) = 1 / sqrt(x)
void lower_rsqrt(LoweringContext& context, const Node* node) {
  std::string x = context.tensor_as(node->input(0), output_type(context, node));
  context.set(node->output(), context.b().op("Reciprocal", {context.b().op("Sqrt", {x})}));
}

// silu(x) = x * sigmoid(x)
void lower_silu(LoweringContext& context, const Node* node) {
  std::string x = context.tensor_as(node->input(0), output_type(context, node));
  context.set(node->output(), context.b().op("Mul", {x, context.b().op("Sigmoid", {x})}));
}

// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
void lower_gelu(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string x = context.tensor_as(node->input(0), type);
  std::string approximate = "none";
  if (node->inputs().size() > 1) approximate = context.constant(node->input(1)).toStringRef();
  std::string inner;
  if (approximate == "tanh") {
    std::string cube = b.op("Mul", {b.op("Mul", {x, x}), x});
    std::string sum = b.op("Add", {x, b.op("Mul", {cube, b.scalar(0.044715, type)})});
    inner = b.op("Tanh", {b.op("Mul", {sum, b.scalar(0.7978845608028654, type)})});
  } else {
    inner = b.op("Erf", {b.op("Mul", {x, b.scalar(0.7071067811865476, type)})});
  }
  std::string half_x = b.op("Mul", {x, b.scalar(0.5, type)});
  context.set(node->output(), b.op("Mul", {half_x, b.op("Add", {inner, b.scalar(1.0, type)})}));
}

// bitwise_not / logical_not: Not on bool, BitwiseNot on integers.
void lower_not(LoweringContext& context, const Node* node) {
  DataType type = context.type_of(node->input(0));
  std::string x = context.tensor(node->input(0));
  if (node->kind().toQualString() == std::string("aten::logical_not") && type != DataType::kBool) {
    x = context.b().cast(x, DataType::kBool);
    type = DataType::kBool;
  }
  context.set(node->output(), context.b().op(type == DataType::kBool ? "Not" : "BitwiseNot", {x}));
}

// ---- Binary ----------------------------------------------------------------

struct BinaryEntry {
  const char* kind;
  const char* onnx_op;
  bool compare;  // operands in the promoted dtype, result bool
};

const BinaryEntry kBinary[] = {
    {"aten::mul", "Mul", false},     {"aten::pow", "Pow", false},     {"aten::maximum", "Max", false},
    {"aten::minimum", "Min", false},
    {"aten::eq", "Equal", true},     {"aten::lt", "Less", true},      {"aten::le", "LessOrEqual", true},
    {"aten::gt", "Greater", true},   {"aten::ge", "GreaterOrEqual", true},
};

void lower_binary(LoweringContext& context, const Node* node, const BinaryEntry& entry) {
  DataType type = entry.compare ? promoted_type(context, node) : output_type(context, node);
  std::string a = context.tensor_as(node->input(0), type);
  std::string b = context.tensor_as(node->input(1), type);
  context.set(node->output(), context.b().op(entry.onnx_op, {a, b}));
}

void lower_not_equal(LoweringContext& context, const Node* node) {
  DataType type = promoted_type(context, node);
  std::string equal = context.b().op("Equal", {context.tensor_as(node->input(0), type), context.tensor_as(node->input(1), type)});
  context.set(node->output(), context.b().op("Not", {equal}));
}

// add / sub with alpha: a + alpha * b, a - alpha * b. rsub: b - alpha * a.
void lower_add_sub(LoweringContext& context, const Node* node, const char* onnx_op, bool reversed) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string lhs = context.tensor_as(node->input(0), type);
  std::string rhs = context.tensor_as(node->input(1), type);
  if (reversed) std::swap(lhs, rhs);
  if (node->inputs().size() > 2 && !context.is_none(node->input(2))) {
    double alpha = context.constant_double(node->input(2));
    if (alpha != 1.0) rhs = b.op("Mul", {rhs, b.scalar(alpha, type)});
  }
  context.set(node->output(), b.op(onnx_op, {lhs, rhs}));
}

// floor(a / b) for integers: (a - mod(a, b)) / b, exact with Python's sign rule.
std::string integer_floor_divide(GraphBuilder& b, const std::string& a, const std::string& d) {
  std::string remainder = b.op("Mod", {a, d}, {{"fmod", int64_t(0)}});
  return b.op("Div", {b.op("Sub", {a, remainder}), d});
}

// div(a, b, rounding_mode=None|"trunc"|"floor")
void lower_div(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string mode;
  if (node->inputs().size() > 2 && !context.is_none(node->input(2))) mode = context.constant(node->input(2)).toStringRef();
  std::string lhs = context.tensor_as(node->input(0), type);
  std::string rhs = context.tensor_as(node->input(1), type);
  if (!is_float_type(type)) {
    // Integer result: only trunc and floor modes produce one.
    context.set(node->output(), mode == "floor" ? integer_floor_divide(b, lhs, rhs) : b.op("Div", {lhs, rhs}));
    return;
  }
  std::string quotient = b.op("Div", {lhs, rhs});
  if (mode == "floor") quotient = b.op("Floor", {quotient});
  if (mode == "trunc") {
    // trunc(q) = sign(q) * floor(|q|)
    quotient = b.op("Mul", {b.op("Sign", {quotient}), b.op("Floor", {b.op("Abs", {quotient})})});
  }
  context.set(node->output(), quotient);
}

void lower_floor_divide(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string lhs = context.tensor_as(node->input(0), type);
  std::string rhs = context.tensor_as(node->input(1), type);
  if (is_float_type(type)) {
    context.set(node->output(), b.op("Floor", {b.op("Div", {lhs, rhs})}));
  } else {
    context.set(node->output(), integer_floor_divide(b, lhs, rhs));
  }
}

// remainder(a, b) takes the sign of b, as in Python.
void lower_remainder(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string lhs = context.tensor_as(node->input(0), type);
  std::string rhs = context.tensor_as(node->input(1), type);
  if (is_float_type(type)) {
    std::string floor = b.op("Floor", {b.op("Div", {lhs, rhs})});
    context.set(node->output(), b.op("Sub", {lhs, b.op("Mul", {floor, rhs})}));
  } else {
    context.set(node->output(), b.op("Mod", {lhs, rhs}, {{"fmod", int64_t(0)}}));
  }
}

// and / or / xor: logical on bool, bitwise on integers.
void lower_logical(LoweringContext& context, const Node* node, const char* logical_op, const char* bitwise_op) {
  DataType type = promoted_type(context, node);
  std::string kind = node->kind().toQualString();
  bool logical = kind.rfind("aten::logical_", 0) == 0;
  if (logical) type = DataType::kBool;
  std::string a = context.tensor_as(node->input(0), type);
  std::string b = context.tensor_as(node->input(1), type);
  context.set(node->output(), context.b().op(type == DataType::kBool ? logical_op : bitwise_op, {a, b}));
}

// clamp(x, min, max) with optional bounds.
void lower_clamp(LoweringContext& context, const Node* node) {
  auto& b = context.b();
  DataType type = output_type(context, node);
  std::string x = context.tensor_as(node->input(0), type);
  std::string kind = node->kind().toQualString();
  const Value* low = nullptr;
  const Value* high = nullptr;
  if (kind == "aten::clamp_min") low = node->input(1);
  else if (kind == "aten::clamp_max") high = node->input(1);
  else {
    if (!context.is_none(node->input(1))) low = node->input(1);
    if (node->inputs().size() > 2 && !context.is_none(node->input(2))) high = node->input(2);
  }
  if (low) x = b.op("Max", {x, context.tensor_as(low, type)});
  if (high) x = b.op("Min", {x, context.tensor_as(high, type)});
  context.set(node->output(), x);
}

// aten::to, type_as, float(), long(), ...: Cast to the dtype LibTorch produced.
void lower_cast(LoweringContext& context, const Node* node) {
  context.set(node->output(), context.tensor_as(node->input(0), output_type(context, node)));
}

}  // namespace

void add_elementwise_lowerings(Registry& registry) {
  for (const auto& entry : kUnary) {
    std::string op = entry.onnx_op;
    registry.add(entry.kind, [op](LoweringContext& context, const Node* node) { lower_unary(context, node, op); });
  }
  for (const auto& entry : kBinary) {
    registry.add(entry.kind, [entry](LoweringContext& context, const Node* node) {
      lower_binary(context, node, entry);
    });
  }

  registry.add("aten::rsqrt", lower_rsqrt);
  registry.add("aten::silu", lower_silu);
  registry.add("aten::gelu", lower_gelu);
  registry.add("aten::bitwise_not", lower_not);
  registry.add("aten::logical_not", lower_not);
  registry.add("aten::ne", lower_not_equal);

  registry.add("aten::add", [](LoweringContext& c, const Node* n) { lower_add_sub(c, n, "Add", false); });
  registry.add("aten::sub", [](LoweringContext& c, const Node* n) { lower_add_sub(c, n, "Sub", false); });
  registry.add("aten::rsub", [](LoweringContext& c, const Node* n) { lower_add_sub(c, n, "Sub", true); });
  registry.add("aten::div", lower_div);
  registry.add("aten::floor_divide", lower_floor_divide);
  registry.add("aten::floordiv", lower_floor_divide);
  registry.add("aten::remainder", lower_remainder);

  for (const char* kind : {"aten::__and__", "aten::bitwise_and", "aten::logical_and"}) {
    registry.add(kind, [](LoweringContext& c, const Node* n) { lower_logical(c, n, "And", "BitwiseAnd"); });
  }
  for (const char* kind : {"aten::__or__", "aten::bitwise_or", "aten::logical_or"}) {
    registry.add(kind, [](LoweringContext& c, const Node* n) { lower_logical(c, n, "Or", "BitwiseOr"); });
  }
  for (const char* kind : {"aten::__xor__", "aten::bitwise_xor", "aten::logical_xor"}) {
    registry.add(kind, [](LoweringContext& c, const Node* n) { lower_logical(c, n, "Xor", "BitwiseXor"); });
  }

  for (const char* kind : {"aten::clamp", "aten::clamp_min", "aten::clamp_max", "aten::clip"}) {
    registry.add(kind, lower_clamp);
  }

  for (const char* kind : {"aten::to", "aten::type_as", "aten::float", "aten::long", "aten::int", "aten::bool",
                           "aten::half", "aten::bfloat16", "aten::double", "aten::_to_copy"}) {
    registry.add(kind, lower_cast);
  }
}

}  // namespace qwen2vl::lower
