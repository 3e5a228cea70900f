// make_dummy_inputs shapes, dtypes, token placement and determinism, and
// get_rope_index on hand-computed cases and bad arguments.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/types.h>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/error.h"
#include "qwen2vl/inputs/dummy_inputs.h"

namespace qwen2vl {
namespace {

const std::filesystem::path kConfigDir = QWEN2VL_CONFIG_TEST_DATA;

// Qwen2-VL-2B-Instruct sizes: 28 layers, 2 key/value heads, head_dim 128.
const ModelConfig& hub_config() {
  static const ModelConfig config = ModelConfig::from_file(kConfigDir / "qwen2_vl_2b_instruct_hub.json");
  return config;
}

// 2 layers, 2 key/value heads, head_dim 16, vocab 1000 with special ids 989-996.
const ModelConfig& tiny_config() {
  static const ModelConfig config = ModelConfig::from_file(kConfigDir / "tiny_transformers5.json");
  return config;
}

std::vector<int64_t> shape(const torch::Tensor& tensor) { return tensor.sizes().vec(); }

testing::AssertionResult contains(const char* text_expr, const char* fragment_expr, const std::string& text,
                                  const std::string& fragment) {
  if (text.find(fragment) != std::string::npos) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << text_expr << " does not contain " << fragment_expr << "\n  text:     " << text
                                     << "\n  fragment: " << fragment;
}

bool is_special(const ModelConfig& config, int64_t id) {
  const TokenIds& tokens = config.tokens;
  return id == tokens.image_token_id || id == tokens.video_token_id || id == tokens.vision_start_token_id ||
         id == tokens.vision_end_token_id || id == tokens.bos_token_id || id == tokens.eos_token_id ||
         id == tokens.pad_token_id;
}

// --- Defaults (Qwen2-VL-2B sizes) ----------------------------------------------------------------

class DummyDefaults : public testing::Test {
 protected:
  DummyInputs inputs = make_dummy_inputs(hub_config(), DummyInputSpec{});
};

TEST_F(DummyDefaults, Shapes) {
  EXPECT_EQ(shape(inputs.input_ids), (std::vector<int64_t>{2, 20}));
  EXPECT_EQ(shape(inputs.attention_mask), (std::vector<int64_t>{2, 20}));
  EXPECT_EQ(shape(inputs.position_ids), (std::vector<int64_t>{3, 2, 20}));
  EXPECT_EQ(shape(inputs.rope_deltas), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(shape(inputs.pixel_values), (std::vector<int64_t>{32, 1176}));
  EXPECT_EQ(shape(inputs.image_grid_thw), (std::vector<int64_t>{2, 3}));
}

TEST_F(DummyDefaults, Dtypes) {
  EXPECT_EQ(inputs.input_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(inputs.attention_mask.scalar_type(), torch::kLong);
  EXPECT_EQ(inputs.position_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(inputs.rope_deltas.scalar_type(), torch::kLong);
  EXPECT_EQ(inputs.pixel_values.scalar_type(), torch::kFloat);
  EXPECT_EQ(inputs.image_grid_thw.scalar_type(), torch::kLong);
  EXPECT_EQ(inputs.past_keys.at(0).scalar_type(), torch::kFloat);
  EXPECT_EQ(inputs.past_values.at(0).scalar_type(), torch::kFloat);
}

TEST_F(DummyDefaults, ImageGridValues) {
  EXPECT_TRUE(torch::equal(inputs.image_grid_thw, torch::tensor({1, 4, 4, 1, 4, 4}, torch::kLong).view({2, 3})))
      << inputs.image_grid_thw;
}

TEST_F(DummyDefaults, PastPerLayer) {
  EXPECT_EQ(inputs.past_keys.size(), 28u);
  EXPECT_EQ(inputs.past_values.size(), 28u);
  EXPECT_EQ(shape(inputs.past_keys.at(0)), (std::vector<int64_t>{2, 2, 0, 128}));
  EXPECT_EQ(shape(inputs.past_values.at(27)), (std::vector<int64_t>{2, 2, 0, 128}));
}

TEST_F(DummyDefaults, VideosUndefined) {
  EXPECT_FALSE(inputs.pixel_values_videos.defined());
  EXPECT_FALSE(inputs.video_grid_thw.defined());
}

TEST_F(DummyDefaults, OneImagePerRow) {
  const TokenIds& tokens = hub_config().tokens;
  for (int64_t row = 0; row < 2; ++row) {
    SCOPED_TRACE("row " + std::to_string(row));
    auto ids = inputs.input_ids[row];
    EXPECT_EQ(ids[0].item<int64_t>(), tokens.vision_start_token_id);
    for (int64_t column = 1; column <= 4; ++column) {
      EXPECT_EQ(ids[column].item<int64_t>(), tokens.image_token_id) << "column " << column;
    }
    EXPECT_EQ(ids[5].item<int64_t>(), tokens.vision_end_token_id);
    for (int64_t column = 6; column < 20; ++column) {
      EXPECT_FALSE(is_special(hub_config(), ids[column].item<int64_t>())) << "column " << column;
    }
  }
}

TEST_F(DummyDefaults, MaskAllOnes) {
  EXPECT_EQ(inputs.attention_mask.sum().item<int64_t>(), 40);
}

TEST_F(DummyDefaults, PixelValuesStandardNormal) {
  EXPECT_TRUE(torch::isfinite(inputs.pixel_values).all().item<bool>());
  EXPECT_LT(std::abs(inputs.pixel_values.mean().item<double>()), 0.05);
  EXPECT_NEAR(inputs.pixel_values.std().item<double>(), 1.0, 0.05);
}

// --- Sizes ---------------------------------------------------------------------------------------

struct SizeCase {
  std::string name;
  int64_t batch = 1;
  int64_t sequence = 1;
  int64_t past = 0;
  std::vector<GridThw> images;
  std::vector<GridThw> videos;
};

void PrintTo(const SizeCase& size_case, std::ostream* out) { *out << size_case.name; }

class DummySizes : public testing::TestWithParam<SizeCase> {
 protected:
  DummyInputSpec spec() const {
    const SizeCase& size_case = GetParam();
    DummyInputSpec spec;
    spec.batch_size = size_case.batch;
    spec.sequence_length = size_case.sequence;
    spec.past_sequence_length = size_case.past;
    spec.num_images = static_cast<int64_t>(size_case.images.size());
    spec.grids = size_case.images;
    spec.videos = size_case.videos;
    spec.seed = 3;
    return spec;
  }
};

int64_t patches(const std::vector<GridThw>& grids) {
  int64_t total = 0;
  for (const GridThw& grid : grids) {
    total += grid.t * grid.h * grid.w;
  }
  return total;
}

TEST_P(DummySizes, TensorShapes) {
  const SizeCase& c = GetParam();
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec());
  auto images = static_cast<int64_t>(c.images.size());
  EXPECT_EQ(shape(inputs.input_ids), (std::vector<int64_t>{c.batch, c.sequence}));
  EXPECT_EQ(shape(inputs.attention_mask), (std::vector<int64_t>{c.batch, c.past + c.sequence}));
  EXPECT_EQ(shape(inputs.position_ids), (std::vector<int64_t>{3, c.batch, c.sequence}));
  EXPECT_EQ(shape(inputs.rope_deltas), (std::vector<int64_t>{c.batch, 1}));
  EXPECT_EQ(shape(inputs.pixel_values), (std::vector<int64_t>{patches(c.images), 1176}));
  EXPECT_EQ(shape(inputs.image_grid_thw), (std::vector<int64_t>{images, 3}));
  ASSERT_EQ(inputs.past_keys.size(), 2u);
  ASSERT_EQ(inputs.past_values.size(), 2u);
  EXPECT_EQ(shape(inputs.past_keys[1]), (std::vector<int64_t>{c.batch, 2, c.past, 16}));
  EXPECT_EQ(shape(inputs.past_values[1]), (std::vector<int64_t>{c.batch, 2, c.past, 16}));
  if (c.videos.empty()) {
    EXPECT_FALSE(inputs.video_grid_thw.defined());
  } else {
    EXPECT_EQ(shape(inputs.video_grid_thw), (std::vector<int64_t>{static_cast<int64_t>(c.videos.size()), 3}));
    EXPECT_EQ(shape(inputs.pixel_values_videos), (std::vector<int64_t>{patches(c.videos), 1176}));
  }
}

// Rows, in order, take ceil or floor of count / batch items, earlier rows the larger share.
std::vector<int64_t> items_per_row(std::size_t count, int64_t batch) {
  std::vector<int64_t> result;
  for (int64_t row = 0; row < batch; ++row) {
    result.push_back(static_cast<int64_t>(count) / batch + (row < static_cast<int64_t>(count) % batch ? 1 : 0));
  }
  return result;
}

TEST_P(DummySizes, PlaceholderTokens) {
  const SizeCase& c = GetParam();
  const TokenIds& tokens = tiny_config().tokens;
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec());

  std::vector<int64_t> images_per_row = items_per_row(c.images.size(), c.batch);
  std::vector<int64_t> videos_per_row = items_per_row(c.videos.size(), c.batch);
  std::size_t image = 0;
  std::size_t video = 0;
  for (int64_t row = 0; row < c.batch; ++row) {
    SCOPED_TRACE("row " + std::to_string(row));
    int64_t expected_image_tokens = 0;
    for (int64_t i = 0; i < images_per_row[row]; ++i, ++image) {
      expected_image_tokens += c.images[image].t * c.images[image].h * c.images[image].w / 4;
    }
    int64_t expected_video_tokens = 0;
    for (int64_t i = 0; i < videos_per_row[row]; ++i, ++video) {
      expected_video_tokens += c.videos[video].t * c.videos[video].h * c.videos[video].w / 4;
    }
    torch::Tensor ids = inputs.input_ids[row];
    EXPECT_EQ(ids.eq(tokens.image_token_id).sum().item<int64_t>(), expected_image_tokens);
    EXPECT_EQ(ids.eq(tokens.video_token_id).sum().item<int64_t>(), expected_video_tokens);
    EXPECT_EQ(ids.eq(tokens.vision_start_token_id).sum().item<int64_t>(), images_per_row[row] + videos_per_row[row]);
    EXPECT_EQ(ids.eq(tokens.vision_end_token_id).sum().item<int64_t>(), images_per_row[row] + videos_per_row[row]);
  }
}

TEST_P(DummySizes, TextIdsInVocabulary) {
  const SizeCase& c = GetParam();
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec());
  EXPECT_GE(inputs.input_ids.min().item<int64_t>(), 0);
  EXPECT_LT(inputs.input_ids.max().item<int64_t>(), tiny_config().text.vocab_size);
  EXPECT_EQ(inputs.attention_mask.sum().item<int64_t>(), c.batch * (c.past + c.sequence));
}

TEST_P(DummySizes, PositionsAfterPast) {
  const SizeCase& c = GetParam();
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec());
  // Without padding, positions continue from the past length, so the first
  // token of every row sits at `past` in all three rope rows.
  for (int64_t rope_row = 0; rope_row < 3; ++rope_row) {
    for (int64_t row = 0; row < c.batch; ++row) {
      EXPECT_EQ(inputs.position_ids[rope_row][row][0].item<int64_t>(), c.past)
          << "rope row " << rope_row << ", batch row " << row;
    }
  }
  if (c.images.empty() && c.videos.empty()) {
    torch::Tensor expected = torch::arange(c.past, c.past + c.sequence, torch::kLong).expand({3, c.batch, c.sequence});
    EXPECT_TRUE(torch::equal(inputs.position_ids, expected)) << inputs.position_ids;
    EXPECT_EQ(inputs.rope_deltas.abs().sum().item<int64_t>(), 0);
  }
}

TEST_P(DummySizes, PositionsMatchRopeIndex) {
  const SizeCase& c = GetParam();
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec());
  RopeIndex rope = get_rope_index(
      tiny_config(), inputs.input_ids, inputs.image_grid_thw,
      inputs.video_grid_thw.defined() ? std::optional<torch::Tensor>(inputs.video_grid_thw) : std::nullopt,
      std::nullopt);
  EXPECT_TRUE(torch::equal(inputs.position_ids, rope.position_ids + c.past));
  EXPECT_TRUE(torch::equal(inputs.rope_deltas, rope.rope_deltas));
}

TEST_P(DummySizes, SameSeedSameInputs) {
  DummyInputs first = make_dummy_inputs(tiny_config(), spec());
  DummyInputs second = make_dummy_inputs(tiny_config(), spec());
  EXPECT_TRUE(torch::equal(first.input_ids, second.input_ids));
  EXPECT_TRUE(torch::equal(first.position_ids, second.position_ids));
  EXPECT_TRUE(torch::equal(first.pixel_values, second.pixel_values));
  EXPECT_TRUE(torch::equal(first.past_keys[0], second.past_keys[0]));
  EXPECT_TRUE(torch::equal(first.past_values[1], second.past_values[1]));
}

std::vector<SizeCase> size_cases() {
  const GridThw small{1, 4, 4};
  const GridThw wide{1, 8, 12};
  const GridThw video{2, 4, 4};
  return {
      {"Batch1Seq1", 1, 1, 0, {}, {}},
      {"Batch1Seq1Past29", 1, 1, 29, {}, {}},
      {"Batch3Seq37", 3, 37, 0, {}, {}},
      {"Batch3Seq37Past29", 3, 37, 29, {}, {}},
      {"Batch1Seq37OneImage8x12", 1, 37, 0, {wide}, {}},
      {"Batch1Seq37ThreeImages", 1, 37, 0, {small, small, small}, {}},
      {"Batch3Seq37ThreeImages8x12", 3, 37, 0, {wide, wide, wide}, {}},
      {"Batch3Seq37Past29ThreeImages", 3, 37, 29, {wide, small, wide}, {}},
      {"Batch3Seq37FiveImagesUneven", 3, 37, 0, {small, wide, small, small, small}, {}},
      {"Batch1Seq20VideoT2", 1, 20, 0, {}, {video}},
      {"Batch3Seq37ImageAndVideo", 3, 37, 0, {wide}, {video}},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, DummySizes, testing::ValuesIn(size_cases()),
                         [](const testing::TestParamInfo<SizeCase>& info) { return info.param.name; });

// --- Seeds, padding and special ids -------------------------------------------------------------

TEST(DummySeed, DifferentSeedsDiffer) {
  DummyInputSpec spec;
  spec.past_sequence_length = 3;
  spec.seed = 1;
  DummyInputs first = make_dummy_inputs(tiny_config(), spec);
  spec.seed = 2;
  DummyInputs second = make_dummy_inputs(tiny_config(), spec);
  EXPECT_FALSE(torch::equal(first.input_ids, second.input_ids));
  EXPECT_FALSE(torch::equal(first.pixel_values, second.pixel_values));
  EXPECT_FALSE(torch::equal(first.past_keys[0], second.past_keys[0]));
}

TEST(DummySeed, StableAcrossCalls) {
  DummyInputSpec spec;
  spec.seed = 11;
  DummyInputs first = make_dummy_inputs(tiny_config(), spec);
  make_dummy_inputs(tiny_config(), DummyInputSpec{});
  DummyInputs third = make_dummy_inputs(tiny_config(), spec);
  EXPECT_TRUE(torch::equal(first.input_ids, third.input_ids));
  EXPECT_TRUE(torch::equal(first.pixel_values, third.pixel_values));
}

TEST(DummyText, SkipsEverySpecialId) {
  // vocab_size 12 with specials 3, 5, 7, 8 and 10 leaves 0, 1, 2, 4, 6, 9 and 11.
  ModelConfig config = tiny_config();
  config.text.vocab_size = 12;
  config.tokens = TokenIds{3, 5, 7, 8, -1, 10, -1};
  DummyInputSpec spec;
  spec.batch_size = 4;
  spec.sequence_length = 200;
  spec.num_images = 0;
  DummyInputs inputs = make_dummy_inputs(config, spec);
  torch::Tensor ids = inputs.input_ids.flatten();
  std::set<int64_t> seen(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2, 4, 6, 9, 11}));
}

TEST(DummyPadding, PadsStartOfRowZero) {
  const TokenIds& tokens = tiny_config().tokens;
  DummyInputSpec spec;
  spec.left_padding = 3;
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec);

  torch::Tensor expected_mask = torch::ones({2, 20}, torch::kLong);
  expected_mask[0].slice(0, 0, 3).fill_(0);
  EXPECT_TRUE(torch::equal(inputs.attention_mask, expected_mask)) << inputs.attention_mask;
  for (int64_t column = 0; column < 3; ++column) {
    EXPECT_EQ(inputs.input_ids[0][column].item<int64_t>(), tokens.pad_token_id) << "column " << column;
    EXPECT_EQ(inputs.position_ids.select(2, column).select(1, 0).abs().sum().item<int64_t>(), 0)
        << "column " << column;
  }
  EXPECT_EQ(inputs.input_ids[0][3].item<int64_t>(), tokens.vision_start_token_id);
  EXPECT_EQ(inputs.input_ids[1][0].item<int64_t>(), tokens.vision_start_token_id);
}

TEST(DummyPadding, PositionsStartAfterPadding) {
  DummyInputSpec spec;
  spec.left_padding = 3;
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec);
  // Row 0 starts at column 3 with the same positions that row 1 has from column 0.
  torch::Tensor row0 = inputs.position_ids.select(1, 0).slice(1, 3, 20);
  torch::Tensor row1 = inputs.position_ids.select(1, 1).slice(1, 0, 17);
  EXPECT_TRUE(torch::equal(row0, row1)) << inputs.position_ids;
  EXPECT_EQ(inputs.rope_deltas[0][0].item<int64_t>(), inputs.rope_deltas[1][0].item<int64_t>());
}

TEST(DummyPadding, PaddingInsidePast) {
  DummyInputSpec spec;
  spec.past_sequence_length = 5;
  spec.left_padding = 3;
  spec.num_images = 0;
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec);
  EXPECT_EQ(inputs.attention_mask[0].slice(0, 0, 3).sum().item<int64_t>(), 0);
  EXPECT_EQ(inputs.attention_mask[0].slice(0, 3, 25).sum().item<int64_t>(), 22);
  EXPECT_FALSE(is_special(tiny_config(), inputs.input_ids[0][0].item<int64_t>()));
  // Two attended past tokens in row 0, five in row 1.
  EXPECT_EQ(inputs.position_ids[0][0][0].item<int64_t>(), 2);
  EXPECT_EQ(inputs.position_ids[0][1][0].item<int64_t>(), 5);
}

TEST(DummyPadding, PaddingBeyondPast) {
  DummyInputSpec spec;
  spec.past_sequence_length = 2;
  spec.left_padding = 5;
  spec.num_images = 0;
  DummyInputs inputs = make_dummy_inputs(tiny_config(), spec);
  for (int64_t column = 0; column < 3; ++column) {
    EXPECT_EQ(inputs.input_ids[0][column].item<int64_t>(), tiny_config().tokens.pad_token_id) << "column " << column;
  }
  EXPECT_EQ(inputs.position_ids[1][0][3].item<int64_t>(), 0);
  EXPECT_EQ(inputs.position_ids[1][0][4].item<int64_t>(), 1);
}

// --- Rejected specs -------------------------------------------------------------------------------

struct SpecErrorCase {
  std::string name;
  std::function<void(DummyInputSpec&)> edit;
  std::string fragment;
};

void PrintTo(const SpecErrorCase& error_case, std::ostream* out) { *out << error_case.name; }

class DummyErrors : public testing::TestWithParam<SpecErrorCase> {};

TEST_P(DummyErrors, RejectsSpec) {
  DummyInputSpec spec;
  GetParam().edit(spec);
  try {
    make_dummy_inputs(tiny_config(), spec);
    FAIL() << "the spec was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
    EXPECT_PRED_FORMAT2(contains, error.what(), "dummy inputs: ");
    EXPECT_PRED_FORMAT2(contains, error.what(), GetParam().fragment);
  }
}

std::vector<SpecErrorCase> spec_error_cases() {
  return {
      {"ImagesDoNotFit", [](DummyInputSpec& s) { s.grids = {{1, 8, 12}}; s.batch_size = 1; },
       "batch row 0 needs 26 tokens for 0 padding tokens, 1 image and 0 videos (each image or video with its vision "
       "start and end tokens), but sequence_length is 20; raise sequence_length to at least 26"},
      {"PaddingLeavesNoRoom", [](DummyInputSpec& s) { s.left_padding = 16; },
       "batch row 0 needs 22 tokens for 16 padding tokens, 1 image and 0 videos"},
      {"VideoDoesNotFit", [](DummyInputSpec& s) { s.num_images = 0; s.videos = {{4, 4, 8}}; },
       "batch row 0 needs 34 tokens for 0 padding tokens, 0 images and 1 video"},
      {"GridHeightNotDivisible", [](DummyInputSpec& s) { s.grid = {1, 5, 4}; },
       "image 0 has grid (t, h, w) = (1, 5, 4), but h and w must be multiples of spatial_merge_size 2"},
      {"GridWidthNotDivisible", [](DummyInputSpec& s) { s.grids = {{1, 4, 4}, {1, 4, 3}}; },
       "image 1 has grid (t, h, w) = (1, 4, 3)"},
      {"VideoFramesZero", [](DummyInputSpec& s) { s.videos = {{0, 4, 4}}; },
       "video 0 has grid (t, h, w) = (0, 4, 4); each must be 1 or more"},
      {"BatchNegative", [](DummyInputSpec& s) { s.batch_size = -1; }, "batch_size is -1; it must be 1 or more"},
      {"BatchZero", [](DummyInputSpec& s) { s.batch_size = 0; }, "batch_size is 0; it must be 1 or more"},
      {"SequenceNegative", [](DummyInputSpec& s) { s.sequence_length = -4; },
       "sequence_length is -4; it must be 1 or more"},
      {"PastNegative", [](DummyInputSpec& s) { s.past_sequence_length = -1; },
       "past_sequence_length is -1; it must be 0 or more"},
      {"ImagesNegative", [](DummyInputSpec& s) { s.num_images = -2; }, "num_images is -2; it must be 0 or more"},
      {"PaddingNegative", [](DummyInputSpec& s) { s.left_padding = -1; }, "left_padding is -1; it must be 0 or more"},
      {"PaddingCoversRow", [](DummyInputSpec& s) { s.left_padding = 20; },
       "left_padding is 20, but row 0 needs at least one attended token"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, DummyErrors, testing::ValuesIn(spec_error_cases()),
                         [](const testing::TestParamInfo<SpecErrorCase>& info) { return info.param.name; });

// --- get_rope_index on hand-computed cases --------------------------------------------------------

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).view({1, static_cast<int64_t>(ids.size())});
}

TEST(RopeIndexPort, OneImageByHand) {
  // text, <vision_start>, 4 image tokens of a 1x4x4 grid, <vision_end>, 2 text tokens.
  const TokenIds& t = tiny_config().tokens;
  torch::Tensor ids = ids_tensor({7, t.vision_start_token_id, t.image_token_id, t.image_token_id, t.image_token_id,
                                  t.image_token_id, t.vision_end_token_id, 8, 9});
  torch::Tensor grid = torch::tensor({1, 4, 4}, torch::kLong).view({1, 3});
  RopeIndex rope = get_rope_index(tiny_config(), ids, grid, std::nullopt, std::nullopt);

  // The image starts at position 2, and the text after it continues at 2 + max(4, 4) / 2 = 4.
  torch::Tensor expected = torch::tensor({0, 1, 2, 2, 2, 2, 4, 5, 6,  //
                                          0, 1, 2, 2, 3, 3, 4, 5, 6,  //
                                          0, 1, 2, 3, 2, 3, 4, 5, 6},
                                         torch::kLong)
                               .view({3, 1, 9});
  EXPECT_TRUE(torch::equal(rope.position_ids, expected)) << rope.position_ids;
  EXPECT_EQ(rope.rope_deltas[0][0].item<int64_t>(), 6 + 1 - 9);
}

TEST(RopeIndexPort, VideoAdvancesBySpatialSize) {
  // A 4-frame video of 2x2 patches: one token per frame. transformers 5.25
  // advances by max(h, w) / merge = 1, so the text after the video restarts
  // below the last frame's temporal position.
  const TokenIds& t = tiny_config().tokens;
  torch::Tensor ids = ids_tensor({t.vision_start_token_id, t.video_token_id, t.video_token_id, t.video_token_id,
                                  t.video_token_id, t.vision_end_token_id});
  torch::Tensor grid = torch::tensor({4, 2, 2}, torch::kLong).view({1, 3});
  RopeIndex rope = get_rope_index(tiny_config(), ids, std::nullopt, grid, std::nullopt);
  torch::Tensor expected = torch::tensor({0, 1, 2, 3, 4, 2,  //
                                          0, 1, 1, 1, 1, 2,  //
                                          0, 1, 1, 1, 1, 2},
                                         torch::kLong)
                               .view({3, 1, 6});
  EXPECT_TRUE(torch::equal(rope.position_ids, expected)) << rope.position_ids;
  EXPECT_EQ(rope.rope_deltas[0][0].item<int64_t>(), 4 + 1 - 6);
}

TEST(RopeIndexPort, MaskedPositionsAreZero) {
  torch::Tensor ids = ids_tensor({1, 2, 3, 4});
  torch::Tensor mask = torch::tensor({0, 0, 1, 1}, torch::kLong).view({1, 4});
  RopeIndex rope = get_rope_index(tiny_config(), ids, std::nullopt, std::nullopt, mask);
  torch::Tensor expected = torch::tensor({0, 0, 0, 1}, torch::kLong).view({1, 1, 4}).expand({3, 1, 4});
  EXPECT_TRUE(torch::equal(rope.position_ids, expected)) << rope.position_ids;
  EXPECT_EQ(rope.rope_deltas[0][0].item<int64_t>(), 1 + 1 - 2);
}

Error rope_index_error(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "get_rope_index accepted the arguments";
  return Error(ExitCode::kSuccess, "");
}

TEST(RopeIndexPort, RejectsMissingGrid) {
  const TokenIds& t = tiny_config().tokens;
  torch::Tensor ids = ids_tensor({t.vision_start_token_id, t.image_token_id, t.vision_end_token_id});
  Error error = rope_index_error([&] { get_rope_index(tiny_config(), ids, std::nullopt, std::nullopt, std::nullopt); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "image placeholder tokens from column 1, but image_grid_thw has only 0");
}

TEST(RopeIndexPort, RejectsPlaceholderCountMismatch) {
  const TokenIds& t = tiny_config().tokens;
  torch::Tensor ids = ids_tensor({t.vision_start_token_id, t.image_token_id, t.image_token_id, t.vision_end_token_id});
  torch::Tensor grid = torch::tensor({1, 4, 4}, torch::kLong).view({1, 3});
  Error error = rope_index_error([&] { get_rope_index(tiny_config(), ids, grid, std::nullopt, std::nullopt); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "has 2 image placeholder tokens from column 1");
  EXPECT_PRED_FORMAT2(contains, error.what(), "= 4");
}

TEST(RopeIndexPort, RejectsMaskShape) {
  torch::Tensor ids = ids_tensor({1, 2, 3});
  torch::Tensor mask = torch::ones({1, 4}, torch::kLong);
  Error error = rope_index_error([&] { get_rope_index(tiny_config(), ids, std::nullopt, std::nullopt, mask); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "attention_mask has shape 1x4 but input_ids has 1x3");
}

TEST(RopeIndexPort, RejectsFullyMaskedRow) {
  torch::Tensor ids = ids_tensor({1, 2});
  torch::Tensor mask = torch::zeros({1, 2}, torch::kLong);
  Error error = rope_index_error([&] { get_rope_index(tiny_config(), ids, std::nullopt, std::nullopt, mask); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "attention_mask row 0 has no attended token");
}

TEST(RopeIndexPort, RejectsGridShape) {
  torch::Tensor ids = ids_tensor({1, 2});
  torch::Tensor grid = torch::ones({2, 2}, torch::kLong);
  Error error = rope_index_error([&] { get_rope_index(tiny_config(), ids, grid, std::nullopt, std::nullopt); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "image_grid_thw has shape 2x2, expected [count, 3]");
}

}  // namespace
}  // namespace qwen2vl
