// Neural-network lowerings: linear, matrix products, softmax, layer norm,
// embedding, the vision patch-embedding conv3d and scaled dot-product attention.
#include "lower_test_support.h"

namespace qwen2vl::lower::testing {
namespace {

TEST(LowerNn, LinearNormEmbedding) {
  torch::manual_seed(30);
  auto module = script_module(R"JIT(
def forward(self, x2, x3, a, b, ids):
    return (torch.linear(x2, self.weight, self.bias), torch.linear(x3, self.weight, self.bias),
            torch.linear(x3, self.weight), torch.linear(x2, self.weight),
            torch.matmul(x3, self.weight.t()), torch.matmul(a, b), torch.bmm(a, b), torch.matmul(x2, self.weight[0]),
            torch.softmax(x3, -1), torch.softmax(x3, 1), torch.log_softmax(x3, -2),
            torch.layer_norm(x3, [4], self.norm_weight, self.norm_bias, 1e-6), torch.layer_norm(x3, [4]),
            torch.embedding(self.table, ids))
)JIT",
                              {{"weight", torch::randn({5, 4})},
                               {"bias", torch::randn({5})},
                               {"norm_weight", torch::randn({4})},
                               {"norm_bias", torch::randn({4})},
                               {"table", torch::randn({10, 4})}});
  auto make_inputs = [](int64_t batch, int64_t length) {
    return Inputs{torch::randn({batch * length, 4}), torch::randn({batch, length, 4}) * 2,
                  torch::randn({batch, length, 3}), torch::randn({batch, 3, 2}),
                  torch::randint(0, 10, {batch, length}, torch::kLong)};
  };
  LoweringCase test_case;
  test_case.profile_sets = {make_inputs(1, 3), make_inputs(2, 5)};
  // The second check set has no tokens: x2 is [0, 4] and x3 is [2, 0, 4].
  test_case.check_sets = {make_inputs(3, 4), make_inputs(2, 0)};
  test_case.labels = {"linear 2-d", "linear 3-d", "linear 3-d no bias", "linear 2-d no bias", "matmul weight.t",
                      "matmul 3-d", "bmm", "matmul vector", "softmax -1", "softmax 1", "log_softmax -2",
                      "layer_norm", "layer_norm no affine", "embedding"};
  expect_lowering_matches(module, test_case);
}

TEST(LowerNn, Conv3dPatchEmbed) {
  torch::manual_seed(31);
  // Qwen2-VL's patch embedding: flat patches [N, 3 * 2 * 14 * 14] viewed as
  // [N, 3, 2, 14, 14] and convolved with stride = kernel, so each patch
  // becomes one vector. The padded conv checks the pads attribute.
  auto module = script_module(R"JIT(
def forward(self, pixels):
    patches = pixels.view(-1, 3, 2, 14, 14)
    return (torch.conv3d(patches, self.weight, None, [2, 14, 14]).view(-1, 8),
            torch.conv3d(patches, self.weight, self.bias, [2, 14, 14]).view(-1, 8),
            torch.conv3d(patches, self.small, None, [1, 7, 7], [0, 1, 1]))
)JIT",
                              {{"weight", torch::randn({8, 3, 2, 14, 14}) * 0.02},
                               {"bias", torch::randn({8})},
                               {"small", torch::randn({2, 3, 2, 3, 3}) * 0.1}});
  LoweringCase test_case;
  test_case.profile_sets = {{torch::randn({2, 1176})}, {torch::randn({3, 1176})}};
  // Zero patches, as for a prompt without images.
  test_case.check_sets = {{torch::randn({5, 1176})}, {torch::randn({0, 1176})}};
  test_case.labels = {"patch embed", "patch embed with bias", "padded conv3d"};
  expect_lowering_matches(module, test_case);
}

// q, k, v: [B, 4, L, 8]; kg, vg: [B, 2, L, 8] for grouped-query attention;
// float_mask: [B, 1, L, L]; bool_mask: [L, L] with a true diagonal, so no
// row is fully masked.
Inputs attention_inputs(int64_t batch, int64_t length) {
  torch::Tensor float_mask = torch::where(torch::rand({batch, 1, length, length}) < 0.3, -1e4,
                                          torch::randn({batch, 1, length, length}));
  torch::Tensor bool_mask = (torch::rand({length, length}) < 0.5).logical_or(torch::eye(length, torch::kBool));
  return {torch::randn({batch, 4, length, 8}), torch::randn({batch, 4, length, 8}), torch::randn({batch, 4, length, 8}),
          torch::randn({batch, 2, length, 8}), torch::randn({batch, 2, length, 8}), float_mask.to(torch::kFloat),
          bool_mask};
}

TEST(LowerNn, ScaledDotProductAttention) {
  torch::manual_seed(32);
  auto module = script_module(R"JIT(
def forward(self, q, k, v, kg, vg, float_mask, bool_mask):
    return (torch.scaled_dot_product_attention(q, k, v),
            torch.scaled_dot_product_attention(q, k, v, attn_mask=float_mask),
            torch.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
            torch.scaled_dot_product_attention(q, k, v, is_causal=True),
            torch.scaled_dot_product_attention(q, kg, vg, enable_gqa=True),
            torch.scaled_dot_product_attention(q, kg, vg, attn_mask=float_mask, enable_gqa=True),
            torch.scaled_dot_product_attention(q, k, v, scale=0.3),
            torch.scaled_dot_product_attention(q[0], k[0], v[0], attn_mask=bool_mask))
)JIT");
  LoweringCase test_case;
  test_case.profile_sets = {attention_inputs(1, 3), attention_inputs(2, 5)};
  test_case.check_sets = {attention_inputs(3, 4)};
  test_case.labels = {"no mask", "float mask", "bool mask", "is_causal", "gqa", "gqa float mask", "scale",
                      "3-d bool mask"};
  expect_lowering_matches(module, test_case);
}

}  // namespace
}  // namespace qwen2vl::lower::testing
