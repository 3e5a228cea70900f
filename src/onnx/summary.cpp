#include "qwen2vl/onnx/summary.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "onnx/onnx.pb.h"
#include "qwen2vl/error.h"

namespace qwen2vl::onnx {
namespace {

uint64_t inline_bytes(const ::onnx::TensorProto& tensor) {
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL) {
    return 0;
  }
  uint64_t bytes = tensor.raw_data().size();
  bytes += static_cast<uint64_t>(tensor.float_data_size()) * 4;
  bytes += static_cast<uint64_t>(tensor.int32_data_size()) * 4;
  bytes += static_cast<uint64_t>(tensor.int64_data_size()) * 8;
  bytes += static_cast<uint64_t>(tensor.double_data_size()) * 8;
  bytes += static_cast<uint64_t>(tensor.uint64_data_size()) * 8;
  for (const std::string& item : tensor.string_data()) {
    bytes += item.size();
  }
  return bytes;
}

uint64_t parse_number(const std::string& text, const std::string& key, const std::string& tensor_name) {
  try {
    size_t used = 0;
    unsigned long long value = std::stoull(text, &used);
    if (used == text.size()) {
      return value;
    }
  } catch (const std::exception&) {
  }
  throw invalid_input("external data entry '" + key + "' of tensor '" + tensor_name + "' is '" + text +
                      "', not a byte count");
}

class Summarizer {
 public:
  explicit Summarizer(ModelSummary& summary) : summary_(summary) {}

  void add_tensor(const ::onnx::TensorProto& tensor, const std::string& label) {
    uint64_t bytes = inline_bytes(tensor);
    summary_.inline_tensor_bytes += bytes;
    if (bytes > summary_.largest_inline_tensor_bytes) {
      summary_.largest_inline_tensor_bytes = bytes;
      summary_.largest_inline_tensor = label;
    }
  }

  void add_graph(const ::onnx::GraphProto& graph) {
    for (const ::onnx::TensorProto& tensor : graph.initializer()) {
      add_tensor(tensor, tensor.name());
    }
    for (const ::onnx::NodeProto& node : graph.node()) {
      std::string node_label = node.name().empty() ? node.op_type() + " node" : "node " + node.name();
      for (const ::onnx::AttributeProto& attribute : node.attribute()) {
        std::string label = node_label + ", attribute " + attribute.name();
        if (attribute.has_t()) {
          add_tensor(attribute.t(), label);
        }
        for (const ::onnx::TensorProto& tensor : attribute.tensors()) {
          add_tensor(tensor, label);
        }
        if (attribute.has_g()) {
          add_graph(attribute.g());
        }
        for (const ::onnx::GraphProto& subgraph : attribute.graphs()) {
          add_graph(subgraph);
        }
      }
    }
  }

 private:
  ModelSummary& summary_;
};

}  // namespace

ModelSummary summarize_model(const std::filesystem::path& onnx_path) {
  std::ifstream file(onnx_path, std::ios::binary);
  if (!file) {
    throw io_error("reading " + onnx_path.string() + " failed: " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    throw io_error("reading " + onnx_path.string() + " failed: " + std::strerror(errno));
  }

  ::onnx::ModelProto proto;
  if (!proto.ParseFromString(contents.str())) {
    throw invalid_input(onnx_path.string() + " is not a valid ONNX ModelProto (protobuf parsing failed)");
  }

  ModelSummary summary;
  summary.ir_version = proto.ir_version();
  summary.producer_name = proto.producer_name();
  summary.producer_version = proto.producer_version();
  for (const ::onnx::OperatorSetIdProto& opset : proto.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") {
      summary.opset = opset.version();
    }
  }

  const ::onnx::GraphProto& graph = proto.graph();
  for (const ::onnx::ValueInfoProto& input : graph.input()) {
    summary.input_names.push_back(input.name());
  }
  for (const ::onnx::ValueInfoProto& output : graph.output()) {
    summary.output_names.push_back(output.name());
  }
  summary.node_count = static_cast<size_t>(graph.node_size());

  for (const ::onnx::TensorProto& tensor : graph.initializer()) {
    if (tensor.data_location() != ::onnx::TensorProto::EXTERNAL) {
      continue;
    }
    ExternalDataEntry entry;
    entry.tensor_name = tensor.name();
    for (const ::onnx::StringStringEntryProto& item : tensor.external_data()) {
      if (item.key() == "location") {
        entry.location = item.value();
      } else if (item.key() == "offset") {
        entry.offset = parse_number(item.value(), item.key(), tensor.name());
      } else if (item.key() == "length") {
        entry.length = parse_number(item.value(), item.key(), tensor.name());
      }
    }
    summary.external_data.push_back(entry);
  }

  Summarizer(summary).add_graph(graph);
  return summary;
}

}  // namespace qwen2vl::onnx
