// Harness for the lowering tests: script a small module, lower one method
// to ONNX exactly as the exporter does (prepare, profile, lower, write) and
// compare ONNX Runtime's outputs with the module's own.
#pragma once

#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "qwen2vl/error.h"
#include "qwen2vl/lower/context.h"
#include "qwen2vl/lower/lower_method.h"
#include "qwen2vl/onnx/graph.h"
#include "qwen2vl/onnx/writer.h"
#include "qwen2vl/torchscript/prepare.h"
#include "qwen2vl/torchscript/profile.h"
#include "qwen2vl/validate/compare.h"
#include "qwen2vl/validate/onnxruntime.h"
#include "validate/test_support.h"

namespace qwen2vl::lower::testing {

using Inputs = std::vector<torch::Tensor>;

struct LoweringCase {
  // At least two input sets whose sizes differ, so that the profile marks
  // the dims that follow the inputs as dynamic.
  std::vector<Inputs> profile_sets;
  // Input sets that ONNX Runtime and LibTorch both run, at sizes the profile
  // did not see. A dim the profile saw as static must keep its size.
  std::vector<Inputs> check_sets;
  // One name per output, used in failure messages.
  std::vector<std::string> labels;
  // Integer and bool outputs differ by at least 1 when wrong, so this
  // tolerance is exact for them.
  double atol = 1e-5;
};

// Scripts `source` (TorchScript with a `forward` method) into a module that
// owns `parameters`.
inline torch::jit::Module script_module(const std::string& source,
                                        const std::vector<std::pair<std::string, torch::Tensor>>& parameters = {}) {
  torch::jit::Module module("m");
  for (const auto& [name, tensor] : parameters) module.register_parameter(name, tensor, /*is_buffer=*/false);
  module.define(source);
  module.eval();
  return module;
}

inline std::vector<c10::IValue> as_ivalues(const Inputs& inputs) { return {inputs.begin(), inputs.end()}; }

// The method's result as a flat list of tensors.
inline std::vector<torch::Tensor> run_reference(torch::jit::Module& module, const std::string& method,
                                                const Inputs& inputs) {
  torch::NoGradGuard no_grad;
  c10::IValue result = module.get_method(method)(as_ivalues(inputs));
  std::vector<torch::Tensor> tensors;
  if (result.isTuple()) {
    for (const auto& element : result.toTupleRef().elements()) tensors.push_back(element.toTensor());
  } else {
    tensors.push_back(result.toTensor());
  }
  return tensors;
}

inline std::string format_unsupported(const std::vector<UnsupportedOp>& unsupported) {
  std::ostringstream out;
  for (const auto& op : unsupported) {
    out << "\n  " << op.kind << ": " << op.reason << "\n    node: " << op.node;
  }
  return out.str();
}

// Value infos whose dims are fixed where every run has the same size and
// dynamic ("<name>_d<dim>") elsewhere.
inline onnx::ValueInfo value_info(const std::string& name, const std::vector<torch::Tensor>& runs) {
  onnx::ValueInfo info;
  info.name = name;
  info.type = to_onnx_type(runs.front().scalar_type());
  std::vector<onnx::Dim> dims;
  for (int64_t d = 0; d < runs.front().dim(); ++d) {
    bool same = true;
    for (const auto& run : runs) same = same && run.size(d) == runs.front().size(d);
    dims.push_back(same ? onnx::Dim::fixed(runs.front().size(d)) : onnx::Dim::dynamic(name + "_d" + std::to_string(d)));
  }
  info.shape = dims;
  return info;
}

// Lowers `method` of `module` and expects ONNX Runtime to reproduce the
// module's outputs on every check set. onnx.checker runs on the first one.
inline void expect_lowering_matches(torch::jit::Module& module, const LoweringCase& test_case,
                                    const std::string& method = "forward") {
  QWEN2VL_REQUIRE_PYTHON();
  ASSERT_GE(test_case.profile_sets.size(), 2u) << "the profile needs two input sets of different sizes";
  ASSERT_FALSE(test_case.check_sets.empty());

  PreparedMethod prepared = prepare_method(module, method);
  std::vector<std::vector<c10::IValue>> profile_inputs;
  for (const auto& inputs : test_case.profile_sets) profile_inputs.push_back(as_ivalues(inputs));
  Profile profile = profile_method(prepared, module, profile_inputs);

  size_t input_count = test_case.profile_sets.front().size();
  // NOTE: tools/ort_run.py passes arrays through np.ascontiguousarray, which
  // turns 0-d inputs and outputs into shape [1], so they are rejected here.
  for (const auto& inputs : test_case.check_sets) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      ASSERT_GT(inputs[i].dim(), 0) << "input " << i << " is 0-d; select a 0-d value inside the graph instead";
    }
  }
  std::vector<std::string> input_names;
  for (size_t i = 0; i < input_count; ++i) input_names.push_back("in" + std::to_string(i));

  std::vector<std::vector<torch::Tensor>> profile_outputs;
  for (const auto& inputs : test_case.profile_sets) profile_outputs.push_back(run_reference(module, method, inputs));
  std::vector<std::vector<torch::Tensor>> expected_outputs;
  for (const auto& inputs : test_case.check_sets) expected_outputs.push_back(run_reference(module, method, inputs));
  size_t output_count = profile_outputs.front().size();
  for (size_t i = 0; i < output_count; ++i) {
    ASSERT_GT(profile_outputs.front()[i].dim(), 0) << "output " << i << " is 0-d; unsqueeze it in the module";
  }
  ASSERT_EQ(test_case.labels.size(), output_count) << "one label per output";
  std::vector<std::string> output_names;
  for (size_t i = 0; i < output_count; ++i) output_names.push_back("out" + std::to_string(i));

  LoweringResult lowered = lower_method(prepared, profile, input_names, output_names);
  ASSERT_TRUE(lowered.unsupported.empty()) << "unsupported nodes:" << format_unsupported(lowered.unsupported);

  onnx::Model model;
  model.graph = std::move(lowered.graph);
  model.opset = 18;
  for (size_t i = 0; i < input_count; ++i) {
    std::vector<torch::Tensor> profile_runs;
    for (const auto& inputs : test_case.profile_sets) profile_runs.push_back(inputs[i]);
    onnx::ValueInfo info = value_info(input_names[i], profile_runs);
    for (const auto& inputs : test_case.check_sets) {
      for (size_t d = 0; d < info.shape->size(); ++d) {
        const onnx::Dim& dim = (*info.shape)[d];
        ASSERT_TRUE(dim.is_dynamic() || inputs[i].size(d) == dim.value)
            << "check set resizes dim " << d << " of " << input_names[i] << ", which the profile saw as static";
      }
    }
    model.graph.inputs.push_back(info);
  }
  for (size_t i = 0; i < output_count; ++i) {
    std::vector<torch::Tensor> runs;
    for (const auto& outputs : profile_outputs) runs.push_back(outputs[i]);
    for (const auto& outputs : expected_outputs) runs.push_back(outputs[i]);
    model.graph.outputs.push_back(value_info(output_names[i], runs));
  }

  validate::testing::TempDir folder;
  std::filesystem::path model_path = folder.path() / "model.onnx";
  onnx::write_model(model, model_path);

  for (size_t set = 0; set < test_case.check_sets.size(); ++set) {
    SCOPED_TRACE("check set " + std::to_string(set));
    validate::NamedTensors inputs;
    for (size_t i = 0; i < input_count; ++i) inputs.emplace_back(input_names[i], test_case.check_sets[set][i]);
    validate::NamedTensors expected;
    for (size_t i = 0; i < output_count; ++i) expected.emplace_back(output_names[i], expected_outputs[set][i]);

    validate::OrtRunOptions options;
    options.check_model = set == 0;
    options.temp_root = folder.path();
    validate::NamedTensors actual;
    try {
      actual = validate::run_onnxruntime(model_path, inputs, options);
    } catch (const Error& error) {
      ADD_FAILURE() << "ONNX Runtime failed: " << error.what();
      continue;
    }
    auto rows = validate::compare_outputs(expected, actual, test_case.atol);
    ASSERT_EQ(rows.size(), output_count) << validate::format_comparison_table(rows, test_case.atol);
    for (size_t i = 0; i < output_count; ++i) {
      EXPECT_TRUE(rows[i].passed) << test_case.labels[i] << " (" << output_names[i] << "): " << rows[i].failure
                                  << "\nexpected: " << expected_outputs[set][i]
                                  << "\nactual: " << (i < actual.size() ? actual[i].second : torch::Tensor());
    }
  }
}

}  // namespace qwen2vl::lower::testing
