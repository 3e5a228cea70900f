// A plain C++ ONNX graph: what the lowering builds and the writer serializes.
//
// This header includes neither LibTorch nor protobuf. Initializers reference
// their bytes through a pointer kept alive by an owner handle, so a weight
// goes from the loaded module to the external data file without a copy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace qwen2vl::onnx {

// TensorProto.DataType values from onnx.proto.
enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kBfloat16 = 16,
};

// Bytes per element: 4 for kFloat, 2 for kFloat16, 1 for kBool, ... and 0 for
// kUndefined or a value outside the enum.
size_t element_size(DataType type);
// The lower-case ONNX name, as onnxruntime prints it inside "tensor(...)":
// "float", "float16", "int64", "bool", ... "undefined" for kUndefined and
// "unknown" for a value outside the enum.
const char* data_type_name(DataType type);

// One dimension of a graph input or output: a fixed size or a named
// dynamic axis (dim_param).
struct Dim {
  int64_t value = -1;  // used when param is empty
  std::string param;

  static Dim fixed(int64_t size) { return Dim{size, ""}; }
  static Dim dynamic(std::string name) { return Dim{-1, std::move(name)}; }
  bool is_dynamic() const { return !param.empty(); }
};

struct ValueInfo {
  std::string name;
  DataType type = DataType::kFloat;
  std::optional<std::vector<Dim>> shape;  // nullopt: rank unknown
};

// A tensor small enough to live inside the .onnx file (Constant values,
// shape vectors). Bytes are little-endian, as in TensorProto.raw_data.
struct TensorValue {
  DataType type = DataType::kFloat;
  std::vector<int64_t> dims;
  std::string raw;

  // The factories throw std::invalid_argument when the element count of
  // `dims` differs from values.size().
  static TensorValue int64s(const std::vector<int64_t>& values, std::vector<int64_t> dims);
  static TensorValue floats(const std::vector<float>& values, std::vector<int64_t> dims);
  static TensorValue int64_scalar(int64_t value);
  // `type` is kFloat, kFloat16, kBfloat16 or kDouble. The value is rounded to
  // the nearest representable one (ties to even).
  static TensorValue float_scalar(float value, DataType type = DataType::kFloat);
  static TensorValue bool_scalar(bool value);
};

struct Attribute {
  using Value = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                             std::vector<std::string>, TensorValue>;
  std::string name;
  Value value;
};

struct Node {
  std::string op_type;
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;
  std::string name;
  std::string domain;      // "" for the default ONNX domain
  std::string doc_string;  // source location of the TorchScript node it came from
};

// A weight stored in external data. `data` stays valid while `owner` lives.
struct Initializer {
  std::string name;
  DataType type = DataType::kFloat;
  std::vector<int64_t> dims;
  const void* data = nullptr;
  size_t byte_size = 0;
  std::shared_ptr<const void> owner;
};

struct Graph {
  std::string name;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;    // written to external data
  std::map<std::string, TensorValue> inline_initializers;  // small, kept in the .onnx file
};

struct Model {
  Graph graph;
  int64_t opset = 18;
  int64_t ir_version = 8;
  std::string producer_name = "qwen2vl-export";
  std::string producer_version;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in this order
  // opset_import versions of the non-default domains that nodes use, e.g.
  // {"com.microsoft", 1}. The writer rejects a node whose domain is missing here.
  std::map<std::string, int64_t> domain_opsets;
};

}  // namespace qwen2vl::onnx
