// The table from TorchScript node kinds to lowerings.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "qwen2vl/lower/context.h"

namespace qwen2vl::lower {

using Lowering = std::function<void(LoweringContext&, const Node*)>;

class Registry {
 public:
  static Registry& instance();
  void add(const std::string& kind, Lowering lowering);
  const Lowering* find(c10::Symbol kind) const;
  std::vector<std::string> kinds() const;

 private:
  std::unordered_map<std::string, Lowering> lowerings_;
};

// Each family file adds its lowerings; Registry::instance() calls them all.
void add_prim_lowerings(Registry& registry);
void add_elementwise_lowerings(Registry& registry);
void add_shape_lowerings(Registry& registry);
void add_creation_lowerings(Registry& registry);
void add_index_lowerings(Registry& registry);
void add_reduction_lowerings(Registry& registry);
void add_nn_lowerings(Registry& registry);

}  // namespace qwen2vl::lower
