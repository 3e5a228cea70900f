#include "qwen2vl/onnx/graph.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace qwen2vl::onnx {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "TensorProto.raw_data is little-endian; this code copies host bytes as they are");

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t count = 1;
  for (int64_t dim : dims) {
    if (dim < 0) {
      throw std::invalid_argument("tensor dimension " + std::to_string(dim) + " is negative");
    }
    count *= dim;
  }
  return count;
}

void check_count(size_t value_count, const std::vector<int64_t>& dims) {
  int64_t expected = element_count(dims);
  if (static_cast<int64_t>(value_count) != expected) {
    throw std::invalid_argument("tensor dims give " + std::to_string(expected) + " elements but " +
                                std::to_string(value_count) + " values were given");
  }
}

template <typename T>
void append_bytes(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// IEEE 754 binary32 -> binary16, rounding to nearest with ties to even.
uint16_t float_to_half(float value) {
  uint32_t bits = float_bits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t exponent = (bits >> 23) & 0xffu;
  uint32_t mantissa = bits & 0x7fffffu;

  if (exponent == 0xff) {  // Inf or NaN; keep NaN quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7c00u | (mantissa != 0 ? 0x200u | (mantissa >> 13) : 0u));
  }

  // Unbiased exponent, rebiased for binary16 (bias 15 instead of 127).
  int32_t half_exponent = static_cast<int32_t>(exponent) - 127 + 15;
  if (half_exponent >= 0x1f) {
    return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to Inf
  }

  if (half_exponent <= 0) {
    // Subnormal half (or zero). Shift the mantissa with its implicit leading 1
    // right so that it counts units of 2^-24, then round.
    if (half_exponent < -10) {
      return sign;  // below half the smallest subnormal: rounds to zero
    }
    uint32_t full_mantissa = mantissa | 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - half_exponent);
    uint32_t result = full_mantissa >> shift;
    uint32_t remainder = full_mantissa & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (result & 1u))) {
      ++result;  // may carry into the exponent field, which is still correct
    }
    return static_cast<uint16_t>(sign | result);
  }

  uint32_t result = (static_cast<uint32_t>(half_exponent) << 10) | (mantissa >> 13);
  uint32_t remainder = mantissa & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) {
    ++result;  // a carry out of the mantissa rounds up to the next binade or to Inf
  }
  return static_cast<uint16_t>(sign | result);
}

// binary32 -> bfloat16: the upper 16 bits, rounded to nearest with ties to even.
uint16_t float_to_bfloat16(float value) {
  uint32_t bits = float_bits(value);
  if (std::isnan(value)) {
    return static_cast<uint16_t>((bits >> 16) | 0x40u);  // keep it a quiet NaN
  }
  uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

}  // namespace

size_t element_size(DataType type) {
  switch (type) {
    case DataType::kFloat:
    case DataType::kInt32:
      return 4;
    case DataType::kUint8:
    case DataType::kInt8:
    case DataType::kBool:
      return 1;
    case DataType::kInt16:
    case DataType::kFloat16:
    case DataType::kBfloat16:
      return 2;
    case DataType::kInt64:
    case DataType::kDouble:
      return 8;
    case DataType::kUndefined:
      return 0;
  }
  return 0;
}

const char* data_type_name(DataType type) {
  switch (type) {
    case DataType::kFloat:
      return "float";
    case DataType::kUint8:
      return "uint8";
    case DataType::kInt8:
      return "int8";
    case DataType::kInt16:
      return "int16";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt64:
      return "int64";
    case DataType::kBool:
      return "bool";
    case DataType::kFloat16:
      return "float16";
    case DataType::kDouble:
      return "double";
    case DataType::kBfloat16:
      return "bfloat16";
    case DataType::kUndefined:
      return "undefined";
  }
  return "unknown";
}

TensorValue TensorValue::int64s(const std::vector<int64_t>& values, std::vector<int64_t> dims) {
  check_count(values.size(), dims);
  TensorValue tensor;
  tensor.type = DataType::kInt64;
  tensor.dims = std::move(dims);
  tensor.raw.reserve(values.size() * sizeof(int64_t));
  for (int64_t value : values) {
    append_bytes(tensor.raw, value);
  }
  return tensor;
}

TensorValue TensorValue::floats(const std::vector<float>& values, std::vector<int64_t> dims) {
  check_count(values.size(), dims);
  TensorValue tensor;
  tensor.type = DataType::kFloat;
  tensor.dims = std::move(dims);
  tensor.raw.reserve(values.size() * sizeof(float));
  for (float value : values) {
    append_bytes(tensor.raw, value);
  }
  return tensor;
}

TensorValue TensorValue::int64_scalar(int64_t value) { return int64s({value}, {}); }

TensorValue TensorValue::float_scalar(float value, DataType type) {
  TensorValue tensor;
  tensor.type = type;
  switch (type) {
    case DataType::kFloat:
      append_bytes(tensor.raw, value);
      break;
    case DataType::kDouble:
      append_bytes(tensor.raw, static_cast<double>(value));
      break;
    case DataType::kFloat16:
      append_bytes(tensor.raw, float_to_half(value));
      break;
    case DataType::kBfloat16:
      append_bytes(tensor.raw, float_to_bfloat16(value));
      break;
    default:
      throw std::invalid_argument(std::string("float_scalar cannot make a tensor of type ") + data_type_name(type) +
                                  "; use float, float16, bfloat16 or double");
  }
  return tensor;
}

TensorValue TensorValue::bool_scalar(bool value) {
  TensorValue tensor;
  tensor.type = DataType::kBool;
  tensor.raw.push_back(value ? '\1' : '\0');
  return tensor;
}

}  // namespace qwen2vl::onnx
