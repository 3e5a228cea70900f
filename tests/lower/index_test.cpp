// Indexing lowerings (advanced indexing, gathers, masked updates, cumsum,
// triangular masks) and reductions.
#include "lower_test_support.h"

namespace qwen2vl::lower::testing {
namespace {

// Inputs of LowerIndex.GatherScatter for `rows` rows: x [rows, 4], indices
// into x (some negative), a row mask with `selected` true entries and
// masked_scatter's source with one row per true entry.
Inputs index_inputs(int64_t rows, int64_t selected) {
  torch::Tensor x = torch::randn({rows, 4});
  torch::Tensor positions = torch::randint(-rows, rows, {5}, torch::kLong);
  torch::Tensor mask = torch::zeros({rows}, torch::kBool);
  mask.index_put_({torch::randperm(rows).slice(0, 0, selected)}, true);
  torch::Tensor row_ids = torch::randint(0, rows, {3}, torch::kLong);
  torch::Tensor column_ids = torch::randint(-4, 4, {3}, torch::kLong);
  torch::Tensor gather_ids = torch::randint(0, 4, {rows, 2}, torch::kLong);
  torch::Tensor element_mask = torch::rand({rows, 4}) < 0.4;
  torch::Tensor source = torch::randn({selected, 4});
  torch::Tensor square = torch::randn({rows, rows});
  return {x, positions, mask, row_ids, column_ids, gather_ids, element_mask, source, square};
}

TEST(LowerIndex, GatherScatter) {
  torch::manual_seed(20);
  // The last outputs follow the rope-index pattern: positions from the
  // cumulative sum of a mask, clamped and gathered.
  auto module = script_module(R"JIT(
def forward(self, x, positions, mask, row_ids, column_ids, gather_ids, element_mask, source, square):
    cumulative = torch.cumsum(mask, 0)
    position = (cumulative - 1).clamp(min=0)
    count = int(mask.sum())
    return (x[:count], x[count:].sum(0), x[positions], x[gather_ids], x[mask], x[row_ids, column_ids], x[:, column_ids], x[element_mask],
            x.index_select(0, row_ids), x.index_select(1, column_ids % 4), torch.gather(x, 1, gather_ids),
            torch.gather(x, -1, gather_ids), x.masked_fill(mask.unsqueeze(1), -1.0),
            x.masked_fill(element_mask, 2.5),
            torch.where(mask.unsqueeze(1), x, 0.0), torch.where(x > 0, x, x * 0.1),
            torch.where(element_mask, 1, 0), x.masked_scatter(mask.unsqueeze(-1), source),
            cumulative, torch.cumsum(x, -1), torch.cumsum(element_mask.long(), 0),
            torch.triu(square), torch.tril(square, -1), torch.triu(x, 1), torch.tril(element_mask),
            position, torch.gather(x[:, 0], 0, position), x[position] * mask.unsqueeze(-1))
)JIT");
  LoweringCase test_case;
  test_case.profile_sets = {index_inputs(4, 2), index_inputs(6, 3)};
  test_case.check_sets = {index_inputs(9, 4), index_inputs(5, 0)};
  test_case.labels = {"slice to int of sum", "slice from int of sum", "index long", "index 2-d long", "index bool", "index two long", "index dim 1", "index bool 2-d",
                      "index_select 0", "index_select 1", "gather", "gather -1", "masked_fill row mask",
                      "masked_fill element mask", "where scalar", "where tensors", "where int scalars",
                      "masked_scatter", "cumsum bool", "cumsum float", "cumsum long", "triu", "tril -1", "triu 1",
                      "tril bool", "cumsum minus 1 clamped", "gather positions", "index positions times mask"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerReduction, Reductions) {
  torch::manual_seed(21);
  // x: [N, M, 5] float; m: [N, M] bool. 0-d results are unsqueezed because
  // tools/ort_run.py returns 0-d outputs as shape [1].
  auto module = script_module(R"JIT(
def forward(self, x, m):
    values, indices = x.max(1)
    kept_values, kept_indices = x.max(-1, keepdim=True)
    return (x.mean(-1, keepdim=True), x.mean([0, 2]), x.mean().unsqueeze(0), x.sum(1), x.sum([-1], keepdim=True),
            x.sum().unsqueeze(0), m.sum().unsqueeze(0), m.sum(1), m.sum(-1, keepdim=True), x.amax(-1),
            x.amax([0, 1], keepdim=True), values, indices, kept_values, kept_indices, x.max().unsqueeze(0),
            x.min(0)[0], torch.max(x, x.flip(0)), x.argmax(-1), x.argmax().unsqueeze(0), x.argmax(1, keepdim=True),
            x.argmax(keepdim=True), x.argmin(0), m.all().unsqueeze(0), m.any().unsqueeze(0), m.all(1),
            m.any(-1, keepdim=True), (x > 0).all(-1), x.prod(-1))
)JIT");
  auto make_inputs = [](int64_t rows, int64_t columns) {
    return Inputs{torch::randn({rows, columns, 5}), torch::rand({rows, columns}) < 0.8};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(2, 3), make_inputs(4, 2)};
  test_case.check_sets = {make_inputs(3, 6)};
  test_case.labels = {"mean -1 keepdim", "mean two dims", "mean all", "sum 1", "sum -1 keepdim", "sum all",
                      "bool sum all", "bool sum 1", "bool sum keepdim", "amax -1", "amax keepdim",
                      "max values", "max indices", "max keepdim values", "max keepdim indices", "max all",
                      "min 0 values", "max of two tensors", "argmax -1", "argmax all", "argmax keepdim",
                      "argmax all keepdim", "argmin 0", "all", "any", "all 1", "any keepdim", "all of comparison", "prod"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerReduction, EmptyInputs) {
  torch::manual_seed(22);
  // Reductions over a dim of size 0, with 0-d results unsqueezed as in
  // LowerReduction.Reductions.
  auto module = script_module(R"JIT(
def forward(self, x, m):
    return (m.any().unsqueeze(0), m.all().unsqueeze(0), m.any(0), m.all(0), m.sum().unsqueeze(0), m.sum(0),
            x.sum(0), x.mean(1), x.amax(1), x.prod(0))
)JIT");
  LoweringCase test_case;
  test_case.profile_sets = {{torch::randn({2, 3}), torch::rand({2, 3}) < 0.5},
                            {torch::randn({4, 3}), torch::rand({4, 3}) < 0.5}};
  test_case.check_sets = {{torch::randn({0, 3}), torch::zeros({0, 3}, torch::kBool)}};
  test_case.labels = {"any", "all", "any 0", "all 0", "bool sum", "bool sum 0", "sum 0", "mean 1", "amax 1",
                      "prod 0"};
  expect_lowering_matches(module, test_case);
}

}  // namespace
}  // namespace qwen2vl::lower::testing
