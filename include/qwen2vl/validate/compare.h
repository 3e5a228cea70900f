// Output-by-output comparison of a reference (LibTorch) with ONNX Runtime.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qwen2vl/validate/named_tensors.h"

namespace qwen2vl::validate {

// One output's comparison: one row of the table that format_comparison_table prints.
struct ComparisonRow {
  std::string name;
  std::vector<int64_t> expected_shape;  // empty with has_expected false
  std::vector<int64_t> actual_shape;
  std::string expected_dtype;  // as c10::toString names it: "Float", "Long", "Bool", ...
  std::string actual_dtype;
  bool has_expected = false;  // the reference produced this output
  bool has_actual = false;    // ONNX Runtime produced this output
  // Over elements where neither side is a lone NaN. A NaN on both sides and
  // an infinity of the same sign on both sides count as a difference of 0.
  // NaN when not computed (missing output, shape mismatch).
  double max_abs_diff = 0.0;
  double mean_abs_diff = 0.0;
  int64_t nan_mismatches = 0;  // elements that are NaN on exactly one side
  bool passed = false;
  std::string failure;  // why it failed; empty when passed
};

// Compares every output of `expected` with the output of the same name in
// `actual`. Rows follow `expected`'s order, then outputs only `actual` has.
// An output passes when both sides have it, with the same shape and dtype,
// no NaN mismatch and max_abs_diff <= atol. Values are compared in float64.
std::vector<ComparisonRow> compare_outputs(const NamedTensors& expected, const NamedTensors& actual, double atol);

bool all_passed(const std::vector<ComparisonRow>& rows);

// Formats the rows as an aligned text table with a header line and a
// closing line "N of M outputs within atol X".
std::string format_comparison_table(const std::vector<ComparisonRow>& rows, double atol);

}  // namespace qwen2vl::validate
