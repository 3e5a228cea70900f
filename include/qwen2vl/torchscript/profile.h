// Run a prepared graph node by node on several input sets and record the
// dtype and shape of every tensor and the value of every non-tensor.
//
// Dims that differ between runs are dynamic. Integers computed from dynamic
// dims are dynamic too ("tainted"); every other integer, list or small
// tensor is a constant the lowering can fold.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/script.h>

#include "qwen2vl/torchscript/prepare.h"

namespace qwen2vl {

struct ValueProfile {
  bool is_tensor = false;
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  std::vector<std::vector<int64_t>> sizes;  // per run, tensors only
  std::vector<c10::IValue> values;          // per run: non-tensors, and tensors of at most kFoldableElements
  // The value (for a tensor: its elements) can change with the inputs: it is
  // computed from input data or from a dynamic dim. Not dynamic means the
  // lowering may fold it to the recorded constant.
  bool dynamic = false;

  bool dim_is_dynamic(size_t dim) const;
  int64_t rank() const { return sizes.empty() ? -1 : static_cast<int64_t>(sizes.front().size()); }
};

inline constexpr int64_t kFoldableElements = 64;

struct Profile {
  int runs = 0;
  std::unordered_map<const torch::jit::Value*, ValueProfile> values;

  const ValueProfile& at(const torch::jit::Value* value) const;
};

// Thrown when a run fails; carries the failing node for diagnostics.
struct ProfileFailure {
  int run = 0;
  std::string node;         // node_text of the failing node
  std::string source_line;  // python_source_line of the failing node
  std::string message;      // the first line of LibTorch's error
};

// Each input set contains the method's arguments after `self`. Throws
// qwen2vl::Error when a run fails, naming the node and the Python line, and
// fills `failure` if it is not null.
Profile profile_method(const PreparedMethod& prepared, const torch::jit::Module& module,
                       const std::vector<std::vector<c10::IValue>>& input_sets, ProfileFailure* failure = nullptr);

}  // namespace qwen2vl
