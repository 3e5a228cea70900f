#include "qwen2vl/validate/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include <torch/torch.h>

namespace qwen2vl::validate {
namespace {

constexpr double kNotComputed = std::numeric_limits<double>::quiet_NaN();

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + "]";
}

std::string number_text(double value) {
  if (std::isnan(value)) {
    return "-";
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3e", value);
  return buffer;
}

// Fills the difference fields of a row whose two tensors have the same shape.
void measure(const torch::Tensor& expected, const torch::Tensor& actual, ComparisonRow& row) {
  torch::Tensor a = expected.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor b = actual.detach().to(torch::kCPU, torch::kFloat64);
  if (a.numel() == 0) {
    row.max_abs_diff = 0.0;
    row.mean_abs_diff = 0.0;
    return;
  }

  torch::Tensor nan_a = torch::isnan(a);
  torch::Tensor nan_b = torch::isnan(b);
  torch::Tensor lone_nan = torch::logical_xor(nan_a, nan_b);
  row.nan_mismatches = lone_nan.sum().item<int64_t>();

  // NaN on both sides and equal infinities match exactly; inf - inf would be NaN.
  torch::Tensor same = torch::logical_and(nan_a, nan_b).logical_or_(torch::logical_and(torch::isinf(a), a == b));
  torch::Tensor diff = (a - b).abs_().masked_fill_(same, 0.0);
  torch::Tensor counted = diff.masked_select(lone_nan.logical_not());
  if (counted.numel() == 0) {
    row.max_abs_diff = kNotComputed;
    row.mean_abs_diff = kNotComputed;
    return;
  }
  row.max_abs_diff = counted.max().item<double>();
  row.mean_abs_diff = counted.mean().item<double>();
}

ComparisonRow compare_one(const std::string& name, const torch::Tensor* expected, const torch::Tensor* actual,
                          double atol) {
  ComparisonRow row;
  row.name = name;
  row.max_abs_diff = kNotComputed;
  row.mean_abs_diff = kNotComputed;
  if (expected != nullptr) {
    row.has_expected = true;
    row.expected_shape = expected->sizes().vec();
    row.expected_dtype = c10::toString(expected->scalar_type());
  }
  if (actual != nullptr) {
    row.has_actual = true;
    row.actual_shape = actual->sizes().vec();
    row.actual_dtype = c10::toString(actual->scalar_type());
  }

  if (!row.has_actual) {
    row.failure = "missing from the ONNX Runtime outputs";
    return row;
  }
  if (!row.has_expected) {
    row.failure = "not among the reference outputs";
    return row;
  }
  if (row.expected_shape != row.actual_shape) {
    row.failure = "shape " + shape_text(row.actual_shape) + ", expected " + shape_text(row.expected_shape);
    return row;
  }

  measure(*expected, *actual, row);
  if (row.expected_dtype != row.actual_dtype) {
    row.failure = "dtype " + row.actual_dtype + ", expected " + row.expected_dtype;
  } else if (row.nan_mismatches > 0) {
    row.failure = std::to_string(row.nan_mismatches) + " element(s) NaN on one side only";
  } else if (!(row.max_abs_diff <= atol)) {  // also true for an infinite difference
    row.failure = "max abs diff " + number_text(row.max_abs_diff) + " > atol " + number_text(atol);
  }
  row.passed = row.failure.empty();
  return row;
}

}  // namespace

std::vector<ComparisonRow> compare_outputs(const NamedTensors& expected, const NamedTensors& actual, double atol) {
  std::map<std::string, const torch::Tensor*> actual_by_name;
  for (const auto& [name, tensor] : actual) {
    actual_by_name.emplace(name, &tensor);
  }

  std::vector<ComparisonRow> rows;
  std::map<std::string, bool> reported;
  for (const auto& [name, tensor] : expected) {
    auto found = actual_by_name.find(name);
    rows.push_back(compare_one(name, &tensor, found == actual_by_name.end() ? nullptr : found->second, atol));
    reported[name] = true;
  }
  for (const auto& [name, tensor] : actual) {
    if (!reported[name]) {
      rows.push_back(compare_one(name, nullptr, &tensor, atol));
      reported[name] = true;
    }
  }
  return rows;
}

bool all_passed(const std::vector<ComparisonRow>& rows) {
  return std::all_of(rows.begin(), rows.end(), [](const ComparisonRow& row) { return row.passed; });
}

std::string format_comparison_table(const std::vector<ComparisonRow>& rows, double atol) {
  std::vector<std::vector<std::string>> cells = {{"output", "shape", "max abs diff", "mean abs diff", "result"}};
  size_t passed = 0;
  for (const ComparisonRow& row : rows) {
    const std::vector<int64_t>& shape = row.has_expected ? row.expected_shape : row.actual_shape;
    cells.push_back({row.name, shape_text(shape), number_text(row.max_abs_diff), number_text(row.mean_abs_diff),
                     row.passed ? "ok" : "FAIL: " + row.failure});
    passed += row.passed ? 1 : 0;
  }

  std::vector<size_t> widths(cells.front().size(), 0);
  for (const auto& line : cells) {
    for (size_t column = 0; column < line.size(); ++column) {
      widths[column] = std::max(widths[column], line[column].size());
    }
  }

  std::ostringstream table;
  for (const auto& line : cells) {
    std::string text;
    for (size_t column = 0; column < line.size(); ++column) {
      bool last = column + 1 == line.size();
      text += line[column];
      if (!last) {
        text += std::string(widths[column] - line[column].size() + 2, ' ');
      }
    }
    table << text << '\n';
  }
  table << passed << " of " << rows.size() << " outputs within atol " << number_text(atol) << '\n';
  return table.str();
}

}  // namespace qwen2vl::validate
