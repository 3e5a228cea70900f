// Elementwise lowerings: unary and binary tables, integer division and
// remainder with Python's sign rules, comparisons, logical ops, casts,
// broadcasting, 0-d tensors and empty tensors.
#include "lower_test_support.h"

namespace qwen2vl::lower::testing {
namespace {

// Floats with both signs whose magnitude is at least 0.5, so divisions stay finite.
torch::Tensor away_from_zero(int64_t count) {
  torch::Tensor sign = torch::where(torch::rand({count}) < 0.5, -1.0, 1.0).to(torch::kFloat);
  return sign * (0.5 + torch::rand({count}));
}

// Dividends and divisors whose first elements hit the sign cases of floor
// and trunc: -7 / 2, 7 / -2, -7 / -2, ... followed by `count` random pairs.
std::pair<torch::Tensor, torch::Tensor> float_operands(int64_t count) {
  torch::Tensor x = torch::cat({torch::tensor({-7.0f, 7.0f, -7.0f, 7.0f, -2.5f, 2.5f}), torch::randn({count}) * 3});
  torch::Tensor y = torch::cat({torch::tensor({2.0f, -2.0f, -2.0f, 2.0f, 1.0f, -1.0f}), away_from_zero(count)});
  return {x, y};
}

// Integer operands: the sign cases first, then `count` random pairs with nonzero divisors.
std::pair<torch::Tensor, torch::Tensor> integer_operands(int64_t count) {
  torch::Tensor a = torch::cat({torch::tensor({-7, 7, -7, 7, -6, 0, 5}, torch::kLong),
                                torch::randint(-20, 20, {count}, torch::kLong)});
  torch::Tensor magnitude = torch::randint(1, 7, {count}, torch::kLong);
  torch::Tensor sign = torch::where(torch::rand({count}) < 0.5, -1, 1).to(torch::kLong);
  torch::Tensor b = torch::cat({torch::tensor({2, -2, -2, 2, 3, -3, -5}, torch::kLong), magnitude * sign});
  return {a, b};
}

TEST(LowerElementwise, UnaryFloat) {
  torch::manual_seed(0);
  auto module = script_module(R"JIT(
def forward(self, x):
    positive = x.abs() + 0.5
    return (torch.neg(x), torch.cos(x), torch.sin(x), torch.exp(x), torch.sqrt(positive),
            torch.rsqrt(positive), torch.sigmoid(x), torch.silu(x), torch.gelu(x),
            torch.gelu(x, approximate='tanh'), torch.abs(x), torch.tanh(x), torch.log(positive))
)JIT");
  LoweringCase test_case;
  test_case.profile_sets = {{torch::randn({2, 3})}, {torch::randn({4, 5})}};
  test_case.check_sets = {{torch::randn({3, 7})}};
  test_case.labels = {"neg", "cos", "sin", "exp", "sqrt", "rsqrt", "sigmoid", "silu", "gelu", "gelu tanh", "abs",
                      "tanh", "log"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerElementwise, BinaryFloat) {
  torch::manual_seed(1);
  auto module = script_module(R"JIT(
def forward(self, x, y):
    return (x * y, torch.add(x, y, alpha=2), torch.sub(x, y, alpha=3), torch.rsub(x, y, alpha=2), 1.5 - x,
            x / y, torch.div(x, y, rounding_mode='floor'), torch.div(x, y, rounding_mode='trunc'),
            torch.floor_divide(x, y), torch.remainder(x, y), x % -1.5,
            torch.pow(x.abs(), y), x ** 2, 2.0 ** y,
            torch.clamp(x, -0.5, 0.5), x.clamp(min=0.1), torch.clamp(x, max=y), torch.maximum(x, y))
)JIT");
  auto [x0, y0] = float_operands(4);
  auto [x1, y1] = float_operands(9);
  auto [x2, y2] = float_operands(13);
  LoweringCase test_case;
  test_case.profile_sets = {{x0, y0}, {x1, y1}};
  test_case.check_sets = {{x2, y2}};
  test_case.labels = {"mul", "add alpha", "sub alpha", "rsub alpha", "scalar minus tensor", "true div", "div floor",
                      "div trunc", "floor_divide", "remainder", "remainder by negative scalar", "pow tensor",
                      "pow int exponent", "scalar pow tensor", "clamp both", "clamp min", "clamp max tensor",
                      "maximum"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerElementwise, IntegerAndBool) {
  torch::manual_seed(2);
  // Module.define resolves no dtype names such as torch.int32, so dtypes
  // are c10::ScalarType codes: 3 is int32 and 11 is bool.
  auto module = script_module(R"JIT(
def forward(self, a, b, x, p, q):
    return (torch.floor_divide(a, b), a // b, torch.remainder(a, b), a % b, torch.remainder(a, -3),
            torch.div(a, b, rounding_mode='floor'), torch.div(a, b, rounding_mode='trunc'), a / b,
            a * 3 - b, a + x, a > 0.5, a <= -2, a == b, a != b, x < a, a.ge(x),
            p & q, p | q, ~p, p ^ q, torch.logical_and(p, q), torch.logical_or(p, q), torch.logical_not(a),
            a & b, x.to(3), x.long(), a.float(), p.float(), a.to(11), x.double(), p.long() + a,
            a.clamp(-3, 4), a ** 2, a / 2)
)JIT");
  auto make_inputs = [](int64_t count) {
    auto [a, b] = integer_operands(count);
    int64_t length = a.size(0);
    return Inputs{a, b, torch::randn({length}) * 10, torch::rand({length}) < 0.5, torch::rand({length}) < 0.5};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(3), make_inputs(8)};
  test_case.check_sets = {make_inputs(17)};
  test_case.labels = {"floor_divide", "floor div operator", "remainder", "mod operator", "remainder by -3",
                      "div floor", "div trunc", "true div of ints", "int mul sub", "int plus float",
                      "int gt float scalar", "int le int scalar", "eq", "ne", "float lt int", "int ge float",
                      "bool and", "bool or", "bool not", "bool xor", "logical_and", "logical_or",
                      "logical_not of int", "int bitwise and", "to int32", "long", "int to float", "bool to float",
                      "int to bool", "double", "bool to long plus int", "int clamp", "int pow",
                      "int div by scalar"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerElementwise, BroadcastZeroDimEmpty) {
  torch::manual_seed(3);
  // tools/ort_run.py turns 0-d inputs and outputs into shape [1], so the
  // 0-d operands s and n are selected from 1-D inputs inside the graph, and
  // 0-d results are unsqueezed: one that the lowering made 1-D shows as [1, 1].
  auto module = script_module(R"JIT(
def forward(self, x, y, s_values, n_values, e, r):
    s = s_values[0]
    n = n_values[-1]
    return (x + y, x * y, x > y, x * s, (s + 1).unsqueeze(0), s.exp().unsqueeze(0), x * n, (n + n).unsqueeze(0),
            (n * 2.5).unsqueeze(0), (s * n).unsqueeze(0), y.long() * s, e + r, e * 2, e.sigmoid(), e > 0, e - s)
)JIT");
  auto make_inputs = [](int64_t x0, int64_t x2, int64_t y0, int64_t e0, int64_t e1) {
    return Inputs{torch::randn({x0, 1, x2}), torch::randn({y0, 1}) * 3, torch::randn({2}),
                  torch::randint(-5, 5, {3}, torch::kLong), torch::randn({e0, e1}), torch::randn({e1})};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(3, 4, 2, 2, 4), make_inputs(2, 5, 3, 3, 5)};
  test_case.check_sets = {make_inputs(4, 3, 5, 0, 4), make_inputs(1, 6, 1, 2, 0)};
  test_case.labels = {"broadcast add", "broadcast mul", "broadcast gt", "times 0-d float", "0-d plus 1", "0-d exp",
                      "times 0-d int", "0-d int sum", "0-d int times float", "0-d float times 0-d int",
                      "long times 0-d float", "empty plus row", "empty times 2", "empty sigmoid", "empty gt",
                      "empty minus 0-d"};
  expect_lowering_matches(module, test_case);
}

}  // namespace
}  // namespace qwen2vl::lower::testing
