#include <gtest/gtest.h>

#include <torch/script.h>

#include "qwen2vl/error.h"
#include "qwen2vl/lower/lower_method.h"
#include "qwen2vl/torchscript/prepare.h"
#include "qwen2vl/torchscript/profile.h"

namespace qwen2vl {
namespace {

using torch::jit::Node;
using torch::jit::Value;

torch::jit::Module make_module(const std::string& source) {
  torch::jit::Module module("test_module");
  module.register_parameter("weight", torch::ones({4, 4}), false);
  module.define(source);
  module.eval();
  return module;
}

const Node* find_node(const torch::jit::Graph& graph, const std::string& kind) {
  for (const Node* node : graph.nodes()) {
    if (node->kind().toQualString() == kind) return node;
  }
  return nullptr;
}

TEST(Prepare, BypassesNoOpNodes) {
  auto module = make_module(R"(
def forward(self, x):
    y = torch.dropout(x, 0.5, False)
    return y.contiguous().detach() + self.weight
)");
  auto prepared = prepare_method(module, "forward");

  EXPECT_EQ(find_node(*prepared.graph, "aten::dropout"), nullptr);
  EXPECT_EQ(find_node(*prepared.graph, "aten::contiguous"), nullptr);
  EXPECT_EQ(find_node(*prepared.graph, "aten::detach"), nullptr);
}

TEST(Prepare, NamesModuleTensors) {
  auto module = make_module("def forward(self, x):\n    return x + self.weight\n");
  auto prepared = prepare_method(module, "forward");

  ASSERT_EQ(prepared.module_tensors.size(), 1u);
  EXPECT_EQ(prepared.module_tensors.begin()->second.name, "weight");
}

TEST(Prepare, MissingMethodIsInvalidInput) {
  auto module = make_module("def forward(self, x):\n    return x\n");
  try {
    prepare_method(module, "vision_encoder");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
    EXPECT_NE(std::string(error.what()).find("vision_encoder"), std::string::npos);
  }
}

TEST(Profile, MarksChangedDimsDynamic) {
  auto module = make_module(R"(
def forward(self, x):
    rows = x.size(0)
    cols = x.size(1)
    return x.view(rows * cols), cols + 1
)");
  auto prepared = prepare_method(module, "forward");
  std::vector<std::vector<c10::IValue>> inputs = {{torch::ones({2, 4})}, {torch::ones({5, 4})}};
  Profile profile = profile_method(prepared, module, inputs);

  const Value* x = prepared.graph->inputs().at(1);
  EXPECT_TRUE(profile.at(x).dim_is_dynamic(0));
  EXPECT_FALSE(profile.at(x).dim_is_dynamic(1));

  const Node* view = find_node(*prepared.graph, "aten::view");
  ASSERT_NE(view, nullptr);
  EXPECT_TRUE(profile.at(view->output()).dim_is_dynamic(0));
}

TEST(Profile, StaticSizeFoldsDynamicSizeDoesNot) {
  auto module = make_module(R"(
def forward(self, x):
    return x.size(0) + 1, x.size(1) + 1
)");
  auto prepared = prepare_method(module, "forward");
  std::vector<std::vector<c10::IValue>> inputs = {{torch::ones({2, 4})}, {torch::ones({5, 4})}};
  Profile profile = profile_method(prepared, module, inputs);

  std::vector<const Value*> sums;
  for (const Node* node : prepared.graph->nodes()) {
    if (node->kind() == c10::aten::add) sums.push_back(node->output());
  }
  ASSERT_EQ(sums.size(), 2u);
  EXPECT_TRUE(profile.at(sums[0]).dynamic);
  EXPECT_FALSE(profile.at(sums[1]).dynamic);
  EXPECT_EQ(profile.at(sums[1]).values.front().toInt(), 5);
}

TEST(Profile, DataDependentNumberIsDynamic) {
  // The sum of x's elements changes with its values although its shape does not.
  auto module = make_module("def forward(self, x):\n    return int(x.sum()) + 1\n");
  auto prepared = prepare_method(module, "forward");
  std::vector<std::vector<c10::IValue>> inputs = {{torch::ones({3})}, {torch::full({3}, 2.0)}};
  Profile profile = profile_method(prepared, module, inputs);

  const Value* result = prepared.graph->outputs().at(0);
  EXPECT_TRUE(profile.at(result).dynamic);
}

TEST(Profile, FailingSecondRunNamesTheNode) {
  auto module = make_module("def forward(self, x):\n    return x.view(2, 2)\n");
  auto prepared = prepare_method(module, "forward");
  std::vector<std::vector<c10::IValue>> inputs = {{torch::ones({4})}, {torch::ones({6})}};
  ProfileFailure failure;
  try {
    profile_method(prepared, module, inputs, &failure);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(failure.run, 1);
    EXPECT_NE(failure.node.find("aten::view"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("size set 2"), std::string::npos);
  }
}

TEST(Lowering, ReportsEveryUnsupportedOp) {
  auto module = make_module(R"(
def forward(self, x):
    y = torch.logcumsumexp(x, 0)
    z = torch.logit(x)
    return y + z
)");
  auto prepared = prepare_method(module, "forward");
  std::vector<std::vector<c10::IValue>> inputs = {{torch::rand({3})}, {torch::rand({5})}};
  Profile profile = profile_method(prepared, module, inputs);
  auto result = lower::lower_method(prepared, profile, {"x"}, {"out"});

  ASSERT_EQ(result.unsupported.size(), 2u);
  EXPECT_EQ(result.unsupported[0].kind, "aten::logcumsumexp");
  EXPECT_EQ(result.unsupported[1].kind, "aten::logit");
  EXPECT_NE(result.unsupported[0].schema.find("logcumsumexp"), std::string::npos);
  EXPECT_FALSE(result.unsupported[0].reason.empty());
}

}  // namespace
}  // namespace qwen2vl
