// Conversion of the plain C++ graph (graph.h) to onnx::ModelProto.
#pragma once

#include "layout.h"
#include "onnx/onnx.pb.h"
#include "qwen2vl/onnx/graph.h"

namespace qwen2vl::onnx::detail {

// Builds the ModelProto for `model`. Initializers listed in `layout` get
// data_location EXTERNAL and their location, offset and length; all others
// (inline initializers and zero-byte ones) carry raw_data. Throws
// qwen2vl::Error(kInternal) for an inconsistent model: duplicate initializer
// names, inline tensors whose bytes do not match their dims, node domains
// missing from Model::domain_opsets.
::onnx::ModelProto build_model_proto(const Model& model, const DataLayout& layout);

}  // namespace qwen2vl::onnx::detail
