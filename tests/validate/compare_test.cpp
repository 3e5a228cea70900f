#include "qwen2vl/validate/compare.h"

#include <cmath>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace qwen2vl::validate {
namespace {

constexpr double kAtol = 1e-4;
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

ComparisonRow compare_single(const torch::Tensor& expected, const torch::Tensor& actual) {
  std::vector<ComparisonRow> rows = compare_outputs({{"out", expected}}, {{"out", actual}}, kAtol);
  EXPECT_EQ(rows.size(), 1u);
  return rows.at(0);
}

torch::Tensor floats(std::vector<float> values) { return torch::tensor(values, torch::kFloat32); }

TEST(Compare, EqualTensorsPass) {
  torch::Tensor a = torch::arange(12, torch::kFloat32).reshape({3, 4});
  ComparisonRow row = compare_single(a, a.clone());
  EXPECT_TRUE(row.passed);
  EXPECT_EQ(row.failure, "");
  EXPECT_EQ(row.max_abs_diff, 0.0);
  EXPECT_EQ(row.mean_abs_diff, 0.0);
  EXPECT_EQ(row.expected_shape, (std::vector<int64_t>{3, 4}));
}

TEST(Compare, WithinAtolPasses) {
  ComparisonRow row = compare_single(floats({1.0f, 2.0f}), floats({1.0f + 5e-5f, 2.0f}));
  EXPECT_TRUE(row.passed) << row.failure;
  EXPECT_NEAR(row.max_abs_diff, 5e-5, 1e-7);
  EXPECT_NEAR(row.mean_abs_diff, 2.5e-5, 1e-7);
}

TEST(Compare, OverAtolFails) {
  ComparisonRow row = compare_single(floats({1.0f, 2.0f, 3.0f}), floats({1.0f, 2.5f, 3.0f}));
  EXPECT_FALSE(row.passed);
  EXPECT_DOUBLE_EQ(row.max_abs_diff, 0.5);
  EXPECT_NEAR(row.mean_abs_diff, 0.5 / 3, 1e-12);
  EXPECT_NE(row.failure.find("max abs diff 5.000e-01 > atol 1.000e-04"), std::string::npos) << row.failure;
}

TEST(Compare, NanOnBothSidesPasses) {
  ComparisonRow row = compare_single(floats({kNan, 1.0f}), floats({kNan, 1.0f}));
  EXPECT_TRUE(row.passed) << row.failure;
  EXPECT_EQ(row.nan_mismatches, 0);
  EXPECT_EQ(row.max_abs_diff, 0.0);
}

TEST(Compare, NanOnOneSideFails) {
  ComparisonRow row = compare_single(floats({1.0f, 2.0f, 3.0f}), floats({1.0f, kNan, 3.0f}));
  EXPECT_FALSE(row.passed);
  EXPECT_EQ(row.nan_mismatches, 1);
  EXPECT_EQ(row.max_abs_diff, 0.0);  // the lone NaN is counted apart from the differences
  EXPECT_NE(row.failure.find("NaN on one side"), std::string::npos) << row.failure;

  ComparisonRow reversed = compare_single(floats({kNan}), floats({0.0f}));
  EXPECT_FALSE(reversed.passed);
  EXPECT_EQ(reversed.nan_mismatches, 1);
}

TEST(Compare, SameInfinityPasses) {
  ComparisonRow row = compare_single(floats({kInf, -kInf, 1.0f}), floats({kInf, -kInf, 1.0f}));
  EXPECT_TRUE(row.passed) << row.failure;
  EXPECT_EQ(row.max_abs_diff, 0.0);
}

TEST(Compare, InfinityMismatchFails) {
  ComparisonRow finite = compare_single(floats({kInf}), floats({1e30f}));
  EXPECT_FALSE(finite.passed);
  EXPECT_TRUE(std::isinf(finite.max_abs_diff));

  ComparisonRow sign = compare_single(floats({kInf}), floats({-kInf}));
  EXPECT_FALSE(sign.passed);
  EXPECT_TRUE(std::isinf(sign.max_abs_diff));
}

TEST(Compare, ShapeMismatchFails) {
  ComparisonRow row = compare_single(torch::zeros({2, 3}), torch::zeros({3, 2}));
  EXPECT_FALSE(row.passed);
  EXPECT_TRUE(std::isnan(row.max_abs_diff));
  EXPECT_EQ(row.failure, "shape [3, 2], expected [2, 3]");
}

TEST(Compare, DtypeMismatchFails) {
  ComparisonRow row = compare_single(torch::zeros({2}, torch::kInt64), torch::zeros({2}, torch::kInt32));
  EXPECT_FALSE(row.passed);
  EXPECT_EQ(row.max_abs_diff, 0.0);
  EXPECT_NE(row.failure.find("dtype"), std::string::npos) << row.failure;
}

TEST(Compare, IntegerAndBoolOutputs) {
  EXPECT_TRUE(compare_single(torch::tensor({1, 2, 3}, torch::kInt64), torch::tensor({1, 2, 3}, torch::kInt64)).passed);
  ComparisonRow ints = compare_single(torch::tensor({1, 2, 3}, torch::kInt64), torch::tensor({1, 2, 4}, torch::kInt64));
  EXPECT_FALSE(ints.passed);
  EXPECT_EQ(ints.max_abs_diff, 1.0);
  torch::Tensor flags = torch::tensor({true, false});
  EXPECT_TRUE(compare_single(flags, flags.clone()).passed);
  EXPECT_FALSE(compare_single(flags, flags.logical_not()).passed);
}

TEST(Compare, EmptyTensorsPass) {
  ComparisonRow row = compare_single(torch::zeros({0, 4}), torch::zeros({0, 4}));
  EXPECT_TRUE(row.passed) << row.failure;
  EXPECT_EQ(row.max_abs_diff, 0.0);
}

TEST(Compare, MissingAndExtraOutputsFail) {
  NamedTensors expected = {{"logits", torch::zeros({2})}, {"present.0.key", torch::zeros({1})}};
  NamedTensors actual = {{"extra", torch::zeros({1})}, {"logits", torch::zeros({2})}};
  std::vector<ComparisonRow> rows = compare_outputs(expected, actual, kAtol);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "logits");
  EXPECT_TRUE(rows[0].passed);
  EXPECT_EQ(rows[1].name, "present.0.key");
  EXPECT_FALSE(rows[1].passed);
  EXPECT_FALSE(rows[1].has_actual);
  EXPECT_EQ(rows[1].failure, "missing from the ONNX Runtime outputs");
  EXPECT_EQ(rows[2].name, "extra");
  EXPECT_FALSE(rows[2].passed);
  EXPECT_FALSE(rows[2].has_expected);
  EXPECT_FALSE(all_passed(rows));
  EXPECT_TRUE(all_passed({rows[0]}));
}

TEST(Compare, TableListsEveryOutput) {
  NamedTensors expected = {{"logits", floats({1.0f, 2.0f})}, {"past_key_values.0.key", floats({1.0f})}};
  NamedTensors actual = {{"logits", floats({1.0f, 2.0f})}, {"past_key_values.0.key", floats({3.0f})}};
  std::string table = format_comparison_table(compare_outputs(expected, actual, kAtol), kAtol);

  std::vector<std::string> lines;
  std::stringstream stream(table);
  for (std::string line; std::getline(stream, line);) {
    lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 4u) << table;
  EXPECT_EQ(lines[0].rfind("output", 0), 0u) << table;
  EXPECT_NE(lines[0].find("max abs diff"), std::string::npos) << table;
  EXPECT_EQ(lines[1].rfind("logits", 0), 0u) << table;
  EXPECT_NE(lines[1].find(" ok"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("past_key_values.0.key  [1]"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("2.000e+00"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("FAIL: max abs diff"), std::string::npos) << table;
  EXPECT_EQ(lines[3], "1 of 2 outputs within atol 1.000e-04");
  // Columns line up: "shape" starts where each row's shape does.
  size_t shape_column = lines[0].find("shape");
  EXPECT_EQ(lines[1].find('['), shape_column) << table;
  EXPECT_EQ(lines[2].find('['), shape_column) << table;
}

}  // namespace
}  // namespace qwen2vl::validate
