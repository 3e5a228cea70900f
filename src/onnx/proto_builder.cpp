#include "proto_builder.h"

#include <set>
#include <type_traits>

#include "qwen2vl/error.h"

namespace qwen2vl::onnx::detail {
namespace {

Error model_bug(const std::string& message) {
  return Error(ExitCode::kInternal, message + "; this is a bug in qwen2vl-export");
}

void fill_tensor(const TensorValue& value, const std::string& name, ::onnx::TensorProto* proto) {
  const std::string what = "inline tensor '" + name + "'";
  uint64_t expected = checked_element_count(value.dims, what) * element_size(value.type);
  if (element_size(value.type) == 0 || expected != value.raw.size()) {
    throw model_bug(what + " of type " + data_type_name(value.type) + " has " + std::to_string(value.raw.size()) +
                    " bytes, expected " + std::to_string(expected));
  }
  if (!name.empty()) {
    proto->set_name(name);
  }
  proto->set_data_type(static_cast<int32_t>(value.type));
  for (int64_t dim : value.dims) {
    proto->add_dims(dim);
  }
  proto->set_raw_data(value.raw);
}

void fill_external_tensor(const DataPlacement& placement, const DataLayout& layout, ::onnx::TensorProto* proto) {
  const Initializer& initializer = *placement.initializer;
  proto->set_name(initializer.name);
  proto->set_data_type(static_cast<int32_t>(initializer.type));
  for (int64_t dim : initializer.dims) {
    proto->add_dims(dim);
  }
  proto->set_data_location(::onnx::TensorProto::EXTERNAL);
  auto add_entry = [proto](const std::string& key, const std::string& value) {
    ::onnx::StringStringEntryProto* entry = proto->add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  };
  add_entry("location", layout.locations.at(placement.file_index));
  add_entry("offset", std::to_string(placement.offset));
  add_entry("length", std::to_string(initializer.byte_size));
}

// A zero-byte initializer: dims with a 0 and no data, kept in the .onnx.
void fill_empty_tensor(const Initializer& initializer, ::onnx::TensorProto* proto) {
  if (initializer.byte_size != 0) {
    throw model_bug("initializer '" + initializer.name + "' has " + std::to_string(initializer.byte_size) +
                    " bytes but no place in the external data layout");
  }
  proto->set_name(initializer.name);
  proto->set_data_type(static_cast<int32_t>(initializer.type));
  for (int64_t dim : initializer.dims) {
    proto->add_dims(dim);
  }
  proto->set_raw_data("");
}

void fill_value_info(const ValueInfo& info, ::onnx::ValueInfoProto* proto) {
  proto->set_name(info.name);
  ::onnx::TypeProto_Tensor* tensor_type = proto->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(static_cast<int32_t>(info.type));
  if (!info.shape) {
    return;  // rank unknown: no shape field at all
  }
  ::onnx::TensorShapeProto* shape = tensor_type->mutable_shape();  // present even for rank 0
  for (const Dim& dim : *info.shape) {
    ::onnx::TensorShapeProto_Dimension* out = shape->add_dim();
    if (dim.is_dynamic()) {
      out->set_dim_param(dim.param);
    } else if (dim.value >= 0) {
      out->set_dim_value(dim.value);
    }
    // A negative value without a name stays an unknown, unnamed dimension.
  }
}

void fill_attribute(const Attribute& attribute, const Node& node, ::onnx::AttributeProto* proto) {
  proto->set_name(attribute.name);
  std::visit(
      [&](const auto& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          proto->set_type(::onnx::AttributeProto::INT);
          proto->set_i(value);
        } else if constexpr (std::is_same_v<T, float>) {
          proto->set_type(::onnx::AttributeProto::FLOAT);
          proto->set_f(value);
        } else if constexpr (std::is_same_v<T, std::string>) {
          proto->set_type(::onnx::AttributeProto::STRING);
          proto->set_s(value);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          proto->set_type(::onnx::AttributeProto::INTS);
          for (int64_t item : value) {
            proto->add_ints(item);
          }
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          proto->set_type(::onnx::AttributeProto::FLOATS);
          for (float item : value) {
            proto->add_floats(item);
          }
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          proto->set_type(::onnx::AttributeProto::STRINGS);
          for (const std::string& item : value) {
            proto->add_strings(item);
          }
        } else {
          static_assert(std::is_same_v<T, TensorValue>, "unhandled Attribute::Value alternative");
          proto->set_type(::onnx::AttributeProto::TENSOR);
          // The tensor has no name of its own; the error message names the node.
          try {
            fill_tensor(value, "", proto->mutable_t());
          } catch (const Error&) {
            throw model_bug("attribute '" + attribute.name + "' of node '" + node.name + "' (" + node.op_type +
                            ") contains a tensor whose byte count does not match its type and dims");
          }
        }
      },
      attribute.value);
}

void fill_node(const Node& node, ::onnx::NodeProto* proto) {
  proto->set_op_type(node.op_type);
  if (!node.name.empty()) {
    proto->set_name(node.name);
  }
  if (!node.domain.empty()) {
    proto->set_domain(node.domain);
  }
  if (!node.doc_string.empty()) {
    proto->set_doc_string(node.doc_string);
  }
  for (const std::string& input : node.inputs) {
    proto->add_input(input);
  }
  for (const std::string& output : node.outputs) {
    proto->add_output(output);
  }
  for (const Attribute& attribute : node.attributes) {
    fill_attribute(attribute, node, proto->add_attribute());
  }
}

void check_domains(const Model& model) {
  for (const Node& node : model.graph.nodes) {
    if (node.domain.empty() || node.domain == "ai.onnx") {
      continue;
    }
    if (model.domain_opsets.count(node.domain) == 0) {
      throw model_bug("node '" + node.name + "' (" + node.op_type + ") uses domain '" + node.domain +
                      "', which has no entry in Model::domain_opsets");
    }
  }
}

void check_unique_initializer_names(const Graph& graph) {
  std::set<std::string> names;
  for (const Initializer& initializer : graph.initializers) {
    if (!names.insert(initializer.name).second) {
      throw model_bug("initializer name '" + initializer.name + "' is used twice");
    }
  }
  for (const auto& [name, value] : graph.inline_initializers) {
    if (!names.insert(name).second) {
      throw model_bug("initializer name '" + name + "' is used by an external and an inline initializer");
    }
  }
}

}  // namespace

::onnx::ModelProto build_model_proto(const Model& model, const DataLayout& layout) {
  check_domains(model);
  check_unique_initializer_names(model.graph);

  ::onnx::ModelProto proto;
  proto.set_ir_version(model.ir_version);
  proto.set_producer_name(model.producer_name);
  if (!model.producer_version.empty()) {
    proto.set_producer_version(model.producer_version);
  }
  ::onnx::OperatorSetIdProto* default_opset = proto.add_opset_import();
  default_opset->set_domain("");
  default_opset->set_version(model.opset);
  for (const auto& [domain, version] : model.domain_opsets) {  // std::map: sorted, so stable
    ::onnx::OperatorSetIdProto* opset = proto.add_opset_import();
    opset->set_domain(domain);
    opset->set_version(version);
  }
  for (const auto& [key, value] : model.metadata) {
    ::onnx::StringStringEntryProto* entry = proto.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }

  const Graph& graph = model.graph;
  ::onnx::GraphProto* graph_proto = proto.mutable_graph();
  graph_proto->set_name(graph.name.empty() ? "main_graph" : graph.name);
  for (const ValueInfo& input : graph.inputs) {
    fill_value_info(input, graph_proto->add_input());
  }
  for (const ValueInfo& output : graph.outputs) {
    fill_value_info(output, graph_proto->add_output());
  }
  for (const Node& node : graph.nodes) {
    fill_node(node, graph_proto->add_node());
  }

  // External initializers first, in graph order, then the inline ones sorted by name.
  size_t next_placement = 0;
  for (const Initializer& initializer : graph.initializers) {
    ::onnx::TensorProto* tensor = graph_proto->add_initializer();
    if (next_placement < layout.placements.size() && layout.placements[next_placement].initializer == &initializer) {
      fill_external_tensor(layout.placements[next_placement], layout, tensor);
      ++next_placement;
    } else {
      fill_empty_tensor(initializer, tensor);
    }
  }
  for (const auto& [name, value] : graph.inline_initializers) {
    fill_tensor(value, name, graph_proto->add_initializer());
  }
  return proto;
}

}  // namespace qwen2vl::onnx::detail
