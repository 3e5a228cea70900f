// Tensors keyed by graph input or output name, in graph order.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace qwen2vl::validate {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

}  // namespace qwen2vl::validate
