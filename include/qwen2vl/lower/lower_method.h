// Lower one prepared, profiled TorchScript method to an ONNX graph.
#pragma once

#include <string>
#include <vector>

#include "qwen2vl/onnx/graph.h"
#include "qwen2vl/torchscript/prepare.h"
#include "qwen2vl/torchscript/profile.h"

namespace qwen2vl::lower {

// One node the registry could not lower.
struct UnsupportedOp {
  std::string kind;         // e.g. "aten::stft"
  std::string schema;       // the operator schema, when LibTorch has one
  std::string node;         // the node as TorchScript prints it
  std::string source_line;  // Python line recorded in the trace
  std::string reason;
};

struct LoweringResult {
  onnx::Graph graph;
  std::vector<UnsupportedOp> unsupported;  // empty on success
};

// Lower `prepared` into a graph whose inputs and outputs carry the given
// names (the method's arguments after `self`, and its outputs flattened from
// a tuple). Value infos of inputs and outputs are left for the caller.
LoweringResult lower_method(const PreparedMethod& prepared, const Profile& profile,
                            const std::vector<std::string>& input_names, const std::vector<std::string>& output_names);

}  // namespace qwen2vl::lower
