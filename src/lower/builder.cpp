#include "qwen2vl/lower/builder.h"

#include <cstring>

namespace qwen2vl::lower {

std::string GraphBuilder::fresh(const std::string& hint) {
  std::string base = hint.empty() ? "v" : hint;
  size_t count = name_counts_[base]++;
  return count == 0 ? base : base + "_" + std::to_string(count);
}

std::vector<std::string> GraphBuilder::node(const std::string& op_type, std::vector<std::string> inputs,
                                            std::vector<Attribute> attributes, size_t outputs) {
  onnx::Node added;
  added.op_type = op_type;
  added.inputs = std::move(inputs);
  added.attributes = std::move(attributes);
  added.name = fresh(op_type);
  added.doc_string = origin_;
  for (size_t i = 0; i < outputs; ++i) added.outputs.push_back(fresh(added.name + "_out"));
  graph_.nodes.push_back(added);
  return graph_.nodes.back().outputs;
}

std::string GraphBuilder::op(const std::string& op_type, std::vector<std::string> inputs,
                             std::vector<Attribute> attributes) {
  return node(op_type, std::move(inputs), std::move(attributes), 1).front();
}

std::string GraphBuilder::constant(const onnx::TensorValue& value) {
  std::string key = std::to_string(int(value.type)) + "|";
  for (int64_t d : value.dims) key += std::to_string(d) + ",";
  key += "|" + value.raw;
  auto found = constants_.find(key);
  if (found != constants_.end()) return found->second;

  std::string name = fresh("const");
  graph_.inline_initializers[name] = value;
  constants_[key] = name;
  return name;
}

std::string GraphBuilder::i64(const std::vector<int64_t>& values) {
  return constant(onnx::TensorValue::int64s(values, {static_cast<int64_t>(values.size())}));
}

std::string GraphBuilder::i64_scalar(int64_t value) { return constant(onnx::TensorValue::int64_scalar(value)); }

std::string GraphBuilder::scalar(double value, DataType type) {
  onnx::TensorValue tensor;
  tensor.type = type;
  auto store = [&](auto typed) {
    tensor.raw.assign(reinterpret_cast<const char*>(&typed), sizeof(typed));
  };
  switch (type) {
    case DataType::kFloat: store(static_cast<float>(value)); break;
    case DataType::kDouble: store(value); break;
    case DataType::kInt64: store(static_cast<int64_t>(value)); break;
    case DataType::kInt32: store(static_cast<int32_t>(value)); break;
    case DataType::kInt8: store(static_cast<int8_t>(value)); break;
    case DataType::kUint8: store(static_cast<uint8_t>(value)); break;
    case DataType::kBool: store(static_cast<uint8_t>(value != 0)); break;
    default: {
      // Half-precision types: emit float and cast, so rounding follows ONNX Runtime's Cast.
      return cast(scalar(value, DataType::kFloat), type);
    }
  }
  return constant(tensor);
}

std::string GraphBuilder::shape(const std::string& x) {
  auto found = shapes_.find(x);
  if (found != shapes_.end()) return found->second;
  std::string result = op("Shape", {x});
  shapes_[x] = result;
  return result;
}

std::string GraphBuilder::dim(const std::string& x, int64_t axis) {
  return op("Gather", {shape(x), i64({axis})}, {{"axis", int64_t(0)}});
}

std::string GraphBuilder::concat(const std::vector<std::string>& parts, int64_t axis) {
  if (parts.size() == 1) return parts.front();
  return op("Concat", parts, {{"axis", axis}});
}

}  // namespace qwen2vl::lower
