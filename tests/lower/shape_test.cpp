// Shape lowerings (view, reshape, transpose, expand, slicing, joining,
// splitting) and tensor factories, with sizes computed from x.size(i) so
// that the lowering must build them at run time.
#include "lower_test_support.h"

namespace qwen2vl::lower::testing {
namespace {

TEST(LowerShape, ViewTransposeExpand) {
  torch::manual_seed(10);
  // x: [B, S, H] with B and S dynamic, S even; z: [B, 1, H]; w: [H, 2].
  auto module = script_module(R"JIT(
def forward(self, x, z, w):
    return (x.view(x.size(0) * x.size(1), -1),
            x.reshape(x.size(0), x.size(1) // 2, 2 * x.size(2)),
            x.reshape(x.size(0) + x.size(1) - x.size(1), -1),
            x.view(-1), x.reshape(-1, x.size(-2) * x.size(-1)), x.reshape(x.numel() // x.size(0), -1),
            x.flatten(), x.flatten(1), x.flatten(0, 1), x.flatten(-2, -1),
            x.unsqueeze(0), x.unsqueeze(-1), z.squeeze(1), z.squeeze(-2), z.squeeze(), x.unsqueeze(2).squeeze(2),
            x.transpose(0, 1), x.transpose(-1, -2), x.permute(2, 0, 1), x.permute(-1, 0, 1), w.t(),
            z.expand(-1, 3, -1), z.expand(x.size(0), x.size(1), -1), z.expand(2, -1, -1, -1),
            x.repeat(1, 2, 1), x.repeat(2, 1, 1, 1), w.repeat(x.size(0), 1),
            x.flip(0), x.flip([1, -1]), z.expand_as(x), (x > 0).type_as(x))
)JIT");
  auto make_inputs = [](int64_t batch, int64_t length) {
    return Inputs{torch::randn({batch, length, 3}), torch::randn({batch, 1, 3}), torch::randn({3, 2})};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(2, 4), make_inputs(3, 6)};
  test_case.check_sets = {make_inputs(5, 2)};
  test_case.labels = {"view product", "reshape floordiv", "reshape plus minus", "view -1", "reshape negative size",
                      "reshape numel", "flatten",
                      "flatten 1", "flatten 0 1", "flatten negative", "unsqueeze 0", "unsqueeze -1", "squeeze 1",
                      "squeeze -2", "squeeze all", "unsqueeze squeeze", "transpose", "transpose negative",
                      "permute", "permute negative", "t", "expand -1", "expand dynamic", "expand new dim",
                      "repeat", "repeat new dim", "repeat dynamic", "flip 0", "flip two dims", "expand_as",
                      "type_as"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerShape, SliceSelectNarrow) {
  torch::manual_seed(11);
  // x: [N, M, 4] with N and M dynamic and at least 3.
  auto module = script_module(R"JIT(
def forward(self, x):
    return (x[1:], x[:-1], x[1:-1], x[::2], x[-3:], x[:, 1:x.size(1) - 1], x[:, ::3], x[:, x.size(1) // 2:],
            x[..., 1:3], x[:, -2:, 1::2], x[1:100],
            x.narrow(0, 1, 2), x.narrow(1, -2, 2), x.narrow(1, 0, x.size(1) // 2),
            x[0], x[-1], x.select(1, -2), x[:, 0], x.select(2, x.size(2) - 1), x.select(1, x.size(1) - 1))
)JIT");
  LoweringCase test_case;
  test_case.profile_sets = {{torch::randn({3, 4, 4})}, {torch::randn({5, 7, 4})}};
  test_case.check_sets = {{torch::randn({6, 9, 4})}};
  test_case.labels = {"from 1", "to -1", "1 to -1", "step 2", "last 3", "dynamic end", "step 3", "dynamic start",
                      "ellipsis", "negative start with step", "end past size", "narrow", "narrow negative start",
                      "narrow dynamic length", "select 0", "select -1", "select negative dim 1", "select dim 1",
                      "select static dynamic index", "select dynamic index"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerShape, JoinAndSplit) {
  torch::manual_seed(12);
  // x, y: [N, M, 4] with M even. e: [0, M, 4]. c: [N, K] with K dynamic and
  // odd in the check set. legacy: [0], the 1-D empty tensor torch.cat skips.
  auto module = script_module(R"JIT(
def forward(self, x, y, e, c, legacy):
    a, b = x.split([1, x.size(1) - 1], 1)
    f, g = x.split(2, 2)
    h, i = x.split(x.size(1) // 2, 1)
    j, k = x.chunk(2, 1)
    l, m = x.chunk(2, -1)
    n, o, p, q = x.unbind(2)
    r, s = torch.split(c, [2, c.size(1) - 2], 1)
    t, u = c.chunk(2, 1)
    rows, columns = c.shape
    return (c.reshape(columns, rows), c.reshape(c.shape[1], -1), torch.cat([legacy, x], 0), torch.cat([x, (x > 0).long()], 1), torch.cat([x, y], 1), torch.cat([x, e], 0), torch.cat([e, x, y], 0), torch.cat([x, y], -1),
            torch.stack([x, y], 0), torch.stack([x, y], -1), torch.stack([x[:, 0], y[:, 1]], 1),
            a, b, f, g, h, i, j, k, l, m, n, q, r, s, t, u)
)JIT");
  auto make_inputs = [](int64_t rows, int64_t length, int64_t columns) {
    return Inputs{torch::randn({rows, length, 4}), torch::randn({rows, length, 4}), torch::randn({0, length, 4}),
                  torch::randn({rows, columns}), torch::randn({0})};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(2, 4, 4), make_inputs(3, 6, 6)};
  test_case.check_sets = {make_inputs(4, 8, 7)};
  test_case.labels = {"reshape from unpacked shape", "reshape from shape item", "cat legacy empty", "cat mixed dtypes", "cat dim 1", "cat empty operand last", "cat empty operand first", "cat dim -1",
                      "stack 0", "stack -1", "stack selected", "split_with_sizes dynamic 0",
                      "split_with_sizes dynamic 1", "split static 0", "split static 1", "split dynamic 0",
                      "split dynamic 1", "chunk dynamic 0", "chunk dynamic 1", "chunk static 0", "chunk static 1",
                      "unbind 0", "unbind 3", "split odd 0", "split odd 1", "chunk odd 0", "chunk odd 1"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerCreation, Factories) {
  torch::manual_seed(13);
  // x: [N, M] float with N and M dynamic; i: [N] int64. Module.define
  // resolves no dtype names, so dtypes are c10::ScalarType codes: 6 is
  // float32 and 4 is int64.
  auto module = script_module(R"JIT(
def forward(self, x, i):
    n = x.size(0)
    return (torch.arange(n), torch.arange(1, n + 1), torch.arange(0, 2 * n, 2), torch.arange(x.size(1) - 1, -1, -1),
            torch.arange(n, dtype=6), torch.arange(0.5, n, 0.25), torch.arange(n) * 1.5 + i,
            torch.zeros([n, 3]), torch.ones([n, x.size(1)], dtype=4), torch.full([2, n], 1.5),
            torch.full([n], n), torch.full([n, 2], True),
            torch.zeros_like(x), torch.ones_like(x, dtype=4), torch.full_like(x, 7), torch.ones_like(i),
            x.new_zeros([n, 2]), x.new_ones([n]), x.new_full([n, x.size(1) // 2], 3.0), i.new_zeros([2, n]),
            torch.arange(0, n * 0.5, 0.5), torch.zeros([n, 0]))
)JIT");
  auto make_inputs = [](int64_t rows, int64_t columns) {
    return Inputs{torch::randn({rows, columns}), torch::randint(-9, 9, {rows}, torch::kLong)};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(2, 3), make_inputs(4, 5)};
  test_case.check_sets = {make_inputs(7, 6)};
  test_case.labels = {"arange end", "arange start end", "arange step", "arange negative step",
                      "arange float dtype", "arange float start", "arange arithmetic", "zeros", "ones int64",
                      "full float", "full dynamic int", "full bool", "zeros_like", "ones_like long", "full_like",
                      "ones_like int", "new_zeros", "new_ones", "new_full", "new_zeros int",
                      "arange float end", "zeros empty"};
  expect_lowering_matches(module, test_case);
}

}  // namespace
}  // namespace qwen2vl::lower::testing
