// Load a TorchScript archive traced by tools/trace_model.py (or any script
// that follows docs/torchscript-contract.md).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/script.h>

namespace qwen2vl {

struct LoadedModule {
  torch::jit::Module module;
  std::filesystem::path path;
  nlohmann::json metadata;           // qwen2vl_export.json; empty object when absent
  std::vector<std::string> methods;  // traced methods, in the order of the contract table
  uint64_t file_bytes = 0;
};

// Throw qwen2vl::Error (kInvalidInput) unless `path` names a regular file,
// with a message that names what to pass instead. load_torchscript calls it
// first; the export calls it before reading config.json, so that a wrong
// --model is reported as such.
void check_model_path(const std::filesystem::path& path);

// Load `path` on the CPU in eval mode. Throws qwen2vl::Error with
// ExitCode::kInvalidInput for a missing, empty, truncated or non-TorchScript
// file, naming the path and what to do.
LoadedModule load_torchscript(const std::filesystem::path& path);

}  // namespace qwen2vl
