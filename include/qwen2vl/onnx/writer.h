// Serialize an onnx::Model to <name>.onnx with its weights streamed to
// external data files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "qwen2vl/onnx/graph.h"

namespace qwen2vl::onnx {

struct WriteOptions {
  // Every initializer starts at a multiple of this many bytes in its data file;
  // the gaps are zero bytes. 0 and 1 both mean no padding.
  uint64_t alignment = 4096;
  // A data file never grows past this many bytes; the next initializer starts
  // <name>.onnx_data_1, then _2, ... Browsers cannot map one buffer over 2 GiB.
  // The one exception is an initializer larger than the limit: it gets a file
  // of its own, with a warning. 0 means no limit (one file).
  uint64_t max_chunk_bytes = 0;
  // Called after each initializer is written, with bytes written so far and in total.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct WrittenFile {
  std::filesystem::path path;
  uint64_t bytes = 0;
};

struct WriteResult {
  std::filesystem::path model_path;
  std::vector<WrittenFile> data_files;  // in chunk order
  uint64_t model_bytes = 0;
  uint64_t weight_bytes = 0;  // payload, without alignment padding
};

// Writes `model` to `onnx_path` (e.g. out/model.onnx) and streams its
// initializers to `onnx_path` + "_data" (model.onnx_data, model.onnx_data_1,
// ...), each entry recorded with location, offset and length. Initializers of
// zero bytes stay inline. The output is byte-identical for identical models.
//
// Every file is written under a ".partial" name, flushed with fsync and then
// renamed, the .onnx last, so a complete model.onnx never points at missing data.
//
// Throws qwen2vl::Error with ExitCode::kIo, naming the path and the OS error,
// when an open, write, fsync, close or rename fails. Before it throws, it
// removes the files that this call created. Throws ExitCode::kInternal for an inconsistent
// model (an initializer's byte_size not matching its dims, a duplicate
// initializer name, a node domain missing from Model::domain_opsets).
WriteResult write_model(const Model& model, const std::filesystem::path& onnx_path, const WriteOptions& options = {});

}  // namespace qwen2vl::onnx
