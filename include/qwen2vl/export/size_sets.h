// The dummy-input size sets an export profiles and validates at, and the
// named input tensors each graph takes for a set.
#pragma once

#include <string>
#include <vector>

#include "qwen2vl/export/options.h"
#include "qwen2vl/export/task.h"
#include "qwen2vl/validate/named_tensors.h"

namespace qwen2vl {

struct SizeSet {
  std::string label;  // e.g. "batch 3, sequence 37, past 0, 3 images"
  DummyInputSpec spec;
};

// Two profiling sets: the first from the options (the seed's shapes by
// default), the second with every dynamic size changed, including the number
// and size of images, so no dim keeps its size by chance.
std::vector<SizeSet> profiling_size_sets(const ExportOptions& options, const GraphSpec& graph);

// Validation sets, all different from the profiling sets. The first is a
// decode step (batch 1, sequence 1, past 29, no image). The second is a
// prefill of three images of different sizes (batch 3, sequence 37). The
// third is a left-padded batch with one image and a short past.
std::vector<SizeSet> validation_size_sets(const GraphSpec& graph);

// The graph's inputs, in the order of `graph.inputs`, built from dummy inputs.
validate::NamedTensors make_graph_inputs(const GraphSpec& graph, const ModelConfig& config, const SizeSet& sizes);

std::string describe(const DummyInputSpec& spec, const GraphSpec& graph);

}  // namespace qwen2vl
