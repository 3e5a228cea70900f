// Emits ONNX nodes into an onnx::Graph with short calls, so lowerings read
// like the math they encode: reshape(x, concat({dim(x, 0), i64({-1})})).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qwen2vl/onnx/graph.h"

namespace qwen2vl::lower {

using onnx::Attribute;
using onnx::DataType;

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::Graph& graph) : graph_(graph) {}

  // Add a node with `outputs` results and return their names.
  std::vector<std::string> node(const std::string& op_type, std::vector<std::string> inputs,
                                std::vector<Attribute> attributes, size_t outputs);
  // Add a node with one result and return its name.
  std::string op(const std::string& op_type, std::vector<std::string> inputs, std::vector<Attribute> attributes = {});

  // Constants live in the .onnx file as small initializers; identical ones are shared.
  std::string constant(const onnx::TensorValue& value);
  std::string i64(const std::vector<int64_t>& values);  // 1-D int64
  std::string i64_scalar(int64_t value);                // 0-d int64
  std::string scalar(double value, DataType type);      // 0-d of `type`

  std::string cast(const std::string& x, DataType to) { return op("Cast", {x}, {{"to", int64_t(to)}}); }
  std::string shape(const std::string& x);                    // 1-D int64 shape of x (cached)
  std::string dim(const std::string& x, int64_t axis);        // 1-D int64 [1] holding x.shape[axis]
  std::string concat(const std::vector<std::string>& parts, int64_t axis = 0);
  std::string reshape(const std::string& x, const std::string& shape) { return op("Reshape", {x, shape}); }
  std::string unsqueeze(const std::string& x, const std::vector<int64_t>& axes) { return op("Unsqueeze", {x, i64(axes)}); }
  std::string squeeze(const std::string& x, const std::vector<int64_t>& axes) { return op("Squeeze", {x, i64(axes)}); }

  // A fresh value name based on `hint`.
  std::string fresh(const std::string& hint);
  // doc_string for the nodes added next: where they came from in the trace.
  void set_origin(std::string origin) { origin_ = std::move(origin); }

  onnx::Graph& graph() { return graph_; }

 private:
  onnx::Graph& graph_;
  std::string origin_;
  std::map<std::string, std::string> constants_;  // key: dtype, dims and raw bytes
  std::map<std::string, std::string> shapes_;
  std::map<std::string, size_t> name_counts_;
};

}  // namespace qwen2vl::lower
