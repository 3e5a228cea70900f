// State shared by the lowerings of one method: the ONNX value each
// TorchScript value became, the profile, and accessors that turn constants
// and dynamic integers into ONNX inputs on demand.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <torch/script.h>

#include "qwen2vl/lower/builder.h"
#include "qwen2vl/torchscript/prepare.h"
#include "qwen2vl/torchscript/profile.h"

namespace qwen2vl::lower {

using torch::jit::Node;
using torch::jit::Value;

DataType to_onnx_type(c10::ScalarType type);
c10::ScalarType to_torch_type(DataType type);

// A static integer or the name of a 0-d int64 ONNX value.
using IntValue = std::variant<int64_t, std::string>;

class LoweringContext {
 public:
  LoweringContext(GraphBuilder& builder, const PreparedMethod& prepared, const Profile& profile);

  GraphBuilder& b() { return builder_; }
  const Profile& profile() const { return profile_; }
  const ValueProfile& info(const Value* value) const { return profile_.at(value); }

  // True when the value is a constant the lowering may fold: a prim::Constant,
  // or a profiled value that does not change with the inputs.
  bool is_constant(const Value* value) const;
  c10::IValue constant(const Value* value) const;
  int64_t constant_int(const Value* value) const;
  double constant_double(const Value* value) const;
  bool is_none(const Value* value) const;

  // The ONNX name holding a tensor value, materializing constants and
  // module weights. Scalars become 0-d tensors of `scalar_type` (default:
  // int64 for ints, float for floats, bool for bools).
  std::string tensor(const Value* value, std::optional<DataType> scalar_type = std::nullopt);
  // tensor() cast to `type` when it has another dtype.
  std::string tensor_as(const Value* value, DataType type);

  // An integer input: static when constant, else a 0-d int64 ONNX value.
  IntValue int_value(const Value* value);
  // An int[] input as a 1-D int64 ONNX value (Concat of its dynamic elements).
  std::string int_list(const Value* value);
  // An int[] input when every element is constant.
  std::optional<std::vector<int64_t>> constant_int_list(const Value* value) const;
  // The tensors of a Tensor[] input (prim::ListConstruct or a constant list).
  std::vector<const Value*> list_elements(const Value* value) const;

  DataType type_of(const Value* value) const;  // dtype of a profiled tensor
  int64_t rank_of(const Value* value) const;   // rank of a profiled tensor

  // Record the ONNX name of a TorchScript value.
  void set(const Value* value, const std::string& name);
  bool has(const Value* value) const { return names_.count(value) > 0; }
  // Record a Python-side list or tuple whose elements are other values.
  void set_elements(const Value* value, std::vector<const Value*> elements);

  // A Tensor[] (or tuple) value whose elements exist only as ONNX names,
  // such as the result of aten::split.
  void set_list(const Value* value, std::vector<std::string> names) { list_names_[value] = std::move(names); }
  const std::vector<std::string>* list_names(const Value* value) const {
    auto found = list_names_.find(value);
    return found == list_names_.end() ? nullptr : &found->second;
  }
  // ONNX names of the tensors in a Tensor[] input, from either form.
  std::vector<std::string> tensor_list(const Value* value);

  // 1-D [1] int64 form of an IntValue, for shape vectors.
  std::string int_as_1d(const IntValue& value);
  // 0-d int64 form of an IntValue.
  std::string int_as_scalar(const IntValue& value);

 private:
  std::string materialize_constant(const Value* value, std::optional<DataType> scalar_type);
  std::string weight(const Value* value);

  GraphBuilder& builder_;
  const PreparedMethod& prepared_;
  const Profile& profile_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, std::vector<const Value*>> elements_;
  std::unordered_map<const Value*, std::vector<std::string>> list_names_;
  std::unordered_map<std::string, std::string> weights_by_storage_;  // storage key -> initializer name
};

// Thrown by a lowering that cannot handle a node's form; the exporter
// collects these and reports every unsupported node at once.
struct UnsupportedNode : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace qwen2vl::lower
