#include "qwen2vl/lower/registry.h"

#include <algorithm>

namespace qwen2vl::lower {

Registry& Registry::instance() {
  static Registry* registry = [] {
    auto* created = new Registry();
    add_prim_lowerings(*created);
    add_elementwise_lowerings(*created);
    add_shape_lowerings(*created);
    add_creation_lowerings(*created);
    add_index_lowerings(*created);
    add_reduction_lowerings(*created);
    add_nn_lowerings(*created);
    return created;
  }();
  return *registry;
}

void Registry::add(const std::string& kind, Lowering lowering) { lowerings_[kind] = std::move(lowering); }

const Lowering* Registry::find(c10::Symbol kind) const {
  auto found = lowerings_.find(kind.toQualString());
  return found == lowerings_.end() ? nullptr : &found->second;
}

std::vector<std::string> Registry::kinds() const {
  std::vector<std::string> result;
  for (const auto& entry : lowerings_) result.push_back(entry.first);
  std::sort(result.begin(), result.end());
  return result;
}

}  // namespace qwen2vl::lower
