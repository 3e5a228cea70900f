#include "qwen2vl/onnx/writer.h"

#include <climits>
#include <string>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <spdlog/spdlog.h>

#include "file_output.h"
#include "layout.h"
#include "proto_builder.h"
#include "qwen2vl/error.h"

namespace qwen2vl::onnx {
namespace {

// Serializes with deterministic field and map order, so identical models give
// identical bytes across runs.
std::string serialize_model(const ::onnx::ModelProto& proto, const std::filesystem::path& onnx_path) {
  size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    throw Error(ExitCode::kInternal, onnx_path.string() + " would be " + std::to_string(size) +
                                         " bytes, over protobuf's 2 GiB message limit; large tensors must go to "
                                         "external data. This is a bug in qwen2vl-export");
  }
  std::string bytes;
  bytes.reserve(size);
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!proto.SerializeToCodedStream(&coded)) {
      throw Error(ExitCode::kInternal, "protobuf could not serialize the model for " + onnx_path.string());
    }
  }
  return bytes;
}

void write_data_file(const detail::DataLayout& layout, size_t file_index, const std::filesystem::path& temporary,
                     size_t& next_placement, uint64_t& bytes_done, const WriteOptions& options) {
  detail::OutputFile file(temporary);
  while (next_placement < layout.placements.size() && layout.placements[next_placement].file_index == file_index) {
    const detail::DataPlacement& placement = layout.placements[next_placement];
    const Initializer& initializer = *placement.initializer;
    file.write_zeros(placement.offset - file.position());
    file.write(initializer.data, initializer.byte_size);
    bytes_done += initializer.byte_size;
    ++next_placement;
    if (options.progress) {
      options.progress(bytes_done, layout.payload_bytes);
    }
  }
  file.sync_and_close();
}

}  // namespace

WriteResult write_model(const Model& model, const std::filesystem::path& onnx_path, const WriteOptions& options) {
  const std::string model_file_name = onnx_path.filename().string();
  if (model_file_name.empty() || model_file_name == "." || model_file_name == "..") {
    throw invalid_input("ONNX output path '" + onnx_path.string() + "' names no file; pass a path like out/model.onnx");
  }

  detail::DataLayout layout = detail::plan_data_layout(model.graph, model_file_name, options);
  const std::string model_bytes = serialize_model(detail::build_model_proto(model, layout), onnx_path);
  const std::filesystem::path directory = onnx_path.parent_path();

  WriteResult result;
  result.model_path = onnx_path;
  result.weight_bytes = layout.payload_bytes;

  detail::StagedFiles staged;
  size_t next_placement = 0;
  uint64_t bytes_done = 0;
  for (size_t file_index = 0; file_index < layout.locations.size(); ++file_index) {
    std::filesystem::path final_path = directory / layout.locations[file_index];
    spdlog::debug("Writing {} ({} bytes)", final_path.string(), layout.file_sizes[file_index]);
    write_data_file(layout, file_index, staged.stage(final_path), next_placement, bytes_done, options);
    result.data_files.push_back(WrittenFile{final_path, layout.file_sizes[file_index]});
  }

  {
    detail::OutputFile file(staged.stage(onnx_path));
    file.write(model_bytes.data(), model_bytes.size());
    file.sync_and_close();
  }
  staged.commit();

  result.model_bytes = model_bytes.size();
  spdlog::debug("Wrote {} ({} bytes) with {} bytes of weights in {} data file(s)", onnx_path.string(),
                result.model_bytes, result.weight_bytes, result.data_files.size());
  return result;
}

}  // namespace qwen2vl::onnx
