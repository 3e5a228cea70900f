// Turn one traced method of a TorchScript module into a flat graph the
// profiler and the lowering can walk node by node.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include <torch/script.h>

namespace qwen2vl {

// A module attribute that a prepared graph reads: a parameter or buffer.
struct ModuleTensor {
  std::string name;  // qualified name, e.g. "model.language_model.norm.weight"
  torch::Tensor tensor;
};

struct PreparedMethod {
  std::string method;
  std::shared_ptr<torch::jit::Graph> graph;  // input 0 is the module (`self`)
  // prim::GetAttr outputs that are tensors, with their qualified names.
  std::unordered_map<const torch::jit::Value*, ModuleTensor> module_tensors;
};

// Copy the graph of `method`, inline every call, lower simple tuples, bypass
// no-op nodes (dropout in eval, detach, contiguous, clone, alias) and remove
// dead code. Throws qwen2vl::Error (kInvalidInput) when the method is missing.
PreparedMethod prepare_method(const torch::jit::Module& module, const std::string& method);

// "file.py:123" of the Python line recorded for `node` in the trace, or "" when none.
std::string python_source_line(const torch::jit::Node* node);

// The node as TorchScript prints it, without the trailing source comment.
std::string node_text(const torch::jit::Node* node);

}  // namespace qwen2vl
