#include "qwen2vl/lower/context.h"

#include <sstream>

namespace qwen2vl::lower {

DataType to_onnx_type(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float: return DataType::kFloat;
    case c10::ScalarType::Double: return DataType::kDouble;
    case c10::ScalarType::Half: return DataType::kFloat16;
    case c10::ScalarType::BFloat16: return DataType::kBfloat16;
    case c10::ScalarType::Long: return DataType::kInt64;
    case c10::ScalarType::Int: return DataType::kInt32;
    case c10::ScalarType::Short: return DataType::kInt16;
    case c10::ScalarType::Char: return DataType::kInt8;
    case c10::ScalarType::Byte: return DataType::kUint8;
    case c10::ScalarType::Bool: return DataType::kBool;
    default: throw UnsupportedNode(std::string("tensor dtype ") + c10::toString(type) + " has no ONNX equivalent here");
  }
}

c10::ScalarType to_torch_type(DataType type) {
  switch (type) {
    case DataType::kFloat: return c10::ScalarType::Float;
    case DataType::kDouble: return c10::ScalarType::Double;
    case DataType::kFloat16: return c10::ScalarType::Half;
    case DataType::kBfloat16: return c10::ScalarType::BFloat16;
    case DataType::kInt64: return c10::ScalarType::Long;
    case DataType::kInt32: return c10::ScalarType::Int;
    case DataType::kInt16: return c10::ScalarType::Short;
    case DataType::kInt8: return c10::ScalarType::Char;
    case DataType::kUint8: return c10::ScalarType::Byte;
    case DataType::kBool: return c10::ScalarType::Bool;
    default: throw UnsupportedNode("ONNX dtype " + std::to_string(int(type)) + " has no LibTorch equivalent here");
  }
}

namespace {

onnx::TensorValue tensor_value(const torch::Tensor& tensor) {
  auto contiguous = tensor.contiguous().cpu();
  onnx::TensorValue value;
  value.type = to_onnx_type(contiguous.scalar_type());
  value.dims = contiguous.sizes().vec();
  value.raw.assign(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes());
  return value;
}

std::string describe(const Value* value) {
  std::ostringstream out;
  out << "%" << value->debugName() << " : " << *value->type();
  return out.str();
}

}  // namespace

LoweringContext::LoweringContext(GraphBuilder& builder, const PreparedMethod& prepared, const Profile& profile)
    : builder_(builder), prepared_(prepared), profile_(profile) {}

bool LoweringContext::is_constant(const Value* value) const {
  if (value->node()->kind() == c10::prim::Constant) return true;
  if (prepared_.module_tensors.count(value)) return false;
  auto found = profile_.values.find(value);
  if (found == profile_.values.end()) return false;
  const auto& profile = found->second;
  return !profile.dynamic && static_cast<int>(profile.values.size()) == profile_.runs && profile_.runs > 0;
}

c10::IValue LoweringContext::constant(const Value* value) const {
  if (value->node()->kind() == c10::prim::Constant) return torch::jit::toIValue(value).value();
  if (!is_constant(value)) throw UnsupportedNode("expected a constant, got dynamic " + describe(value));
  return profile_.at(value).values.front();
}

int64_t LoweringContext::constant_int(const Value* value) const {
  auto result = constant(value);
  if (result.isInt()) return result.toInt();
  if (result.isTensor() && result.toTensor().numel() == 1) return result.toTensor().item<int64_t>();
  if (result.isDouble()) return static_cast<int64_t>(result.toDouble());
  if (result.isBool()) return result.toBool();
  throw UnsupportedNode("expected a constant integer, got " + describe(value));
}

double LoweringContext::constant_double(const Value* value) const {
  auto result = constant(value);
  if (result.isDouble()) return result.toDouble();
  if (result.isInt()) return static_cast<double>(result.toInt());
  if (result.isBool()) return result.toBool();
  if (result.isTensor() && result.toTensor().numel() == 1) return result.toTensor().item<double>();
  throw UnsupportedNode("expected a constant number, got " + describe(value));
}

bool LoweringContext::is_none(const Value* value) const {
  return value->type()->kind() == c10::TypeKind::NoneType ||
         (value->node()->kind() == c10::prim::Constant && torch::jit::toIValue(value)->isNone());
}

std::string LoweringContext::tensor(const Value* value, std::optional<DataType> scalar_type) {
  auto found = names_.find(value);
  if (found != names_.end()) {
    if (scalar_type && !value->type()->isSubtypeOf(*c10::TensorType::get())) {
      // A dynamic Python number: its ONNX form is int64 or float; cast on request.
      return builder_.cast(found->second, *scalar_type);
    }
    return found->second;
  }
  if (prepared_.module_tensors.count(value)) return weight(value);
  if (is_constant(value)) return materialize_constant(value, scalar_type);
  throw UnsupportedNode("no ONNX value for " + describe(value) + " (produced by " +
                        value->node()->kind().toQualString() + ")");
}

std::string LoweringContext::tensor_as(const Value* value, DataType type) {
  std::string name = tensor(value, type);
  bool is_tensor = value->type()->isSubtypeOf(*c10::TensorType::get());
  DataType current = type;
  if (is_tensor) {
    current = type_of(value);
  } else if (!is_constant(value)) {
    return name;  // tensor() already cast the dynamic number
  }
  return current == type ? name : builder_.cast(name, type);
}

std::string LoweringContext::materialize_constant(const Value* value, std::optional<DataType> scalar_type) {
  c10::IValue folded = constant(value);
  if (folded.isTensor()) {
    std::string name = builder_.constant(tensor_value(folded.toTensor()));
    names_[value] = name;
    return name;
  }
  if (folded.isInt()) return builder_.scalar(static_cast<double>(folded.toInt()), scalar_type.value_or(DataType::kInt64));
  if (folded.isDouble()) return builder_.scalar(folded.toDouble(), scalar_type.value_or(DataType::kFloat));
  if (folded.isBool()) return builder_.scalar(folded.toBool() ? 1 : 0, scalar_type.value_or(DataType::kBool));
  if (folded.isIntList()) {
    auto list = folded.toIntVector();
    return builder_.i64(list);
  }
  throw UnsupportedNode("cannot turn constant " + describe(value) + " into a tensor");
}

std::string LoweringContext::weight(const Value* value) {
  const ModuleTensor& source = prepared_.module_tensors.at(value);
  torch::Tensor tensor = source.tensor.detach();
  std::ostringstream key;
  key << tensor.storage().data() << ":" << tensor.storage_offset() << ":" << tensor.scalar_type() << ":"
      << tensor.sizes() << ":" << tensor.strides();
  auto found = weights_by_storage_.find(key.str());
  if (found != weights_by_storage_.end()) {
    names_[value] = found->second;
    return found->second;
  }

  if (!tensor.is_contiguous()) tensor = tensor.contiguous();
  onnx::Initializer initializer;
  initializer.name = source.name;
  initializer.type = to_onnx_type(tensor.scalar_type());
  initializer.dims = tensor.sizes().vec();
  initializer.data = tensor.data_ptr();
  initializer.byte_size = tensor.nbytes();
  auto* holder = new torch::Tensor(tensor);
  initializer.owner = std::shared_ptr<const void>(holder, [](const void* held) {
    delete static_cast<const torch::Tensor*>(held);
  });
  builder_.graph().initializers.push_back(std::move(initializer));

  weights_by_storage_[key.str()] = source.name;
  names_[value] = source.name;
  return source.name;
}

IntValue LoweringContext::int_value(const Value* value) {
  if (is_constant(value)) return constant_int(value);
  std::string name = tensor(value);
  bool is_tensor = value->type()->isSubtypeOf(*c10::TensorType::get());
  if (is_tensor && type_of(value) != DataType::kInt64) name = builder_.cast(name, DataType::kInt64);
  if (is_tensor && rank_of(value) == 1) name = builder_.squeeze(name, {0});
  return name;
}

std::string LoweringContext::int_as_1d(const IntValue& value) {
  if (std::holds_alternative<int64_t>(value)) return builder_.i64({std::get<int64_t>(value)});
  return builder_.unsqueeze(std::get<std::string>(value), {0});
}

std::string LoweringContext::int_as_scalar(const IntValue& value) {
  if (std::holds_alternative<int64_t>(value)) return builder_.i64_scalar(std::get<int64_t>(value));
  return std::get<std::string>(value);
}

std::optional<std::vector<int64_t>> LoweringContext::constant_int_list(const Value* value) const {
  if (is_constant(value)) {
    auto folded = constant(value);
    if (folded.isIntList()) return folded.toIntVector();
    if (folded.isInt()) return std::vector<int64_t>{folded.toInt()};
  }
  auto elements = list_elements(value);
  if (elements.empty() && value->node()->kind() != c10::prim::ListConstruct) return std::nullopt;
  std::vector<int64_t> result;
  for (const Value* element : elements) {
    if (!is_constant(element)) return std::nullopt;
    result.push_back(constant_int(element));
  }
  return result;
}

std::string LoweringContext::int_list(const Value* value) {
  if (auto folded = constant_int_list(value)) return builder_.i64(*folded);
  auto found = names_.find(value);
  if (found != names_.end()) return found->second;
  std::vector<std::string> parts;
  for (const Value* element : list_elements(value)) parts.push_back(int_as_1d(int_value(element)));
  if (parts.empty()) throw UnsupportedNode("cannot read int[] " + describe(value));
  return builder_.concat(parts);
}

std::vector<const Value*> LoweringContext::list_elements(const Value* value) const {
  auto found = elements_.find(value);
  if (found != elements_.end()) return found->second;
  const Node* producer = value->node();
  if (producer->kind() == c10::prim::ListConstruct || producer->kind() == c10::prim::TupleConstruct) {
    return std::vector<const Value*>(producer->inputs().begin(), producer->inputs().end());
  }
  return {};
}

std::vector<std::string> LoweringContext::tensor_list(const Value* value) {
  if (const auto* names = list_names(value)) return *names;
  std::vector<std::string> result;
  for (const Value* element : list_elements(value)) result.push_back(tensor(element));
  return result;
}

DataType LoweringContext::type_of(const Value* value) const {
  if (prepared_.module_tensors.count(value)) return to_onnx_type(prepared_.module_tensors.at(value).tensor.scalar_type());
  const auto& profile = info(value);
  if (profile.is_tensor) return to_onnx_type(profile.dtype);
  if (!profile.values.empty()) {
    const auto& folded = profile.values.front();
    if (folded.isInt()) return DataType::kInt64;
    if (folded.isDouble()) return DataType::kFloat;
    if (folded.isBool()) return DataType::kBool;
  }
  throw UnsupportedNode("no dtype recorded for " + describe(value));
}

int64_t LoweringContext::rank_of(const Value* value) const {
  if (prepared_.module_tensors.count(value)) return prepared_.module_tensors.at(value).tensor.dim();
  const auto& profile = info(value);
  if (profile.is_tensor) return profile.rank();
  return 0;
}

void LoweringContext::set(const Value* value, const std::string& name) { names_[value] = name; }

void LoweringContext::set_elements(const Value* value, std::vector<const Value*> elements) {
  elements_[value] = std::move(elements);
}

}  // namespace qwen2vl::lower
