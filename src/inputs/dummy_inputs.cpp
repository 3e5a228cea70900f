// make_dummy_inputs: random inputs in the manner of optimum's dummy-input
// generators. Like those, it draws random text ids, an all-ones attention
// mask with optional left padding, and random normal pixel values and past
// key/values. It adds Qwen2-VL's vision placeholders in input_ids and 3-D
// position ids from get_rope_index.
#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/types.h>

#include "qwen2vl/error.h"
#include "qwen2vl/inputs/dummy_inputs.h"

namespace qwen2vl {

namespace {

// Half-open range [begin, end) of items given to one batch row.
using ItemRange = std::pair<std::size_t, std::size_t>;

// Split `count` items over `rows` rows in order. Earlier rows take one more
// when the count does not divide evenly.
std::vector<ItemRange> split_over_rows(std::size_t count, int64_t rows) {
  std::vector<ItemRange> ranges;
  auto row_count = static_cast<std::size_t>(rows);
  std::size_t base = count / row_count;
  std::size_t extra = count % row_count;
  std::size_t begin = 0;
  for (std::size_t row = 0; row < row_count; ++row) {
    std::size_t size = base + (row < extra ? 1 : 0);
    ranges.emplace_back(begin, begin + size);
    begin += size;
  }
  return ranges;
}

// "1 image", "3 images".
std::string count_noun(int64_t count, const std::string& noun) {
  return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

void check_spec(const DummyInputSpec& spec) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) {
      throw invalid_input("dummy inputs: " + message);
    }
  };
  require(spec.batch_size >= 1, fmt::format("batch_size is {}; it must be 1 or more", spec.batch_size));
  require(spec.sequence_length >= 1,
          fmt::format("sequence_length is {}; it must be 1 or more", spec.sequence_length));
  require(spec.past_sequence_length >= 0,
          fmt::format("past_sequence_length is {}; it must be 0 or more", spec.past_sequence_length));
  require(spec.left_padding >= 0, fmt::format("left_padding is {}; it must be 0 or more", spec.left_padding));
  // A row without any attended token makes attention divide by zero.
  require(spec.left_padding < spec.past_sequence_length + spec.sequence_length,
          fmt::format("left_padding is {}, but row 0 needs at least one attended token of its {} (past {} + "
                      "sequence {}); lower left_padding",
                      spec.left_padding, spec.past_sequence_length + spec.sequence_length,
                      spec.past_sequence_length, spec.sequence_length));
}

// Placeholder tokens of one image or video: t * h * w / spatial_merge_size^2.
int64_t placeholder_count(const ModelConfig& config, const GridThw& grid, const char* kind, std::size_t index) {
  int64_t merge = config.vision.spatial_merge_size;
  if (grid.t < 1 || grid.h < 1 || grid.w < 1) {
    throw invalid_input(fmt::format("dummy inputs: {} {} has grid (t, h, w) = ({}, {}, {}); each must be 1 or more",
                                    kind, index, grid.t, grid.h, grid.w));
  }
  if (grid.h % merge != 0 || grid.w % merge != 0) {
    throw invalid_input(fmt::format(
        "dummy inputs: {} {} has grid (t, h, w) = ({}, {}, {}), but h and w must be multiples of "
        "spatial_merge_size {}; round them to a multiple of {}",
        kind, index, grid.t, grid.h, grid.w, merge, merge));
  }
  return grid.t * grid.h * grid.w / (merge * merge);
}

torch::Tensor grids_to_tensor(const std::vector<GridThw>& grids) {
  torch::Tensor tensor = torch::zeros({static_cast<int64_t>(grids.size()), 3}, torch::kLong);
  auto rows = tensor.accessor<int64_t, 2>();
  for (std::size_t i = 0; i < grids.size(); ++i) {
    rows[i][0] = grids[i].t;
    rows[i][1] = grids[i].h;
    rows[i][2] = grids[i].w;
  }
  return tensor;
}

int64_t patch_count(const std::vector<GridThw>& grids) {
  int64_t patches = 0;
  for (const GridThw& grid : grids) {
    patches += grid.t * grid.h * grid.w;
  }
  return patches;
}

// Draw random ids in [0, vocab_size) that skip every special token id.
torch::Tensor random_text_ids(const ModelConfig& config, int64_t batch, int64_t length, torch::Generator& generator) {
  const TokenIds& tokens = config.tokens;
  std::vector<int64_t> excluded;
  for (int64_t id : {tokens.image_token_id, tokens.video_token_id, tokens.vision_start_token_id,
                     tokens.vision_end_token_id, tokens.bos_token_id, tokens.eos_token_id, tokens.pad_token_id}) {
    if (id >= 0 && id < config.text.vocab_size) {
      excluded.push_back(id);
    }
  }
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());

  auto allowed = config.text.vocab_size - static_cast<int64_t>(excluded.size());
  if (allowed < 1) {
    throw invalid_input(fmt::format("dummy inputs: every id of the vocabulary (vocab_size {}) is a special token",
                                    config.text.vocab_size));
  }
  // Draw from [0, allowed) and step over the excluded ids in ascending order,
  // which maps the draws one-to-one onto the ordinary ids.
  torch::Tensor ids = torch::randint(0, allowed, {batch, length}, generator, torch::kLong);
  for (int64_t id : excluded) {
    ids += ids.ge(id).to(torch::kLong);
  }
  return ids;
}

int64_t padding_token_id(const ModelConfig& config) {
  for (int64_t id : {config.tokens.pad_token_id, config.tokens.eos_token_id}) {
    if (id >= 0 && id < config.text.vocab_size) {
      return id;
    }
  }
  return 0;
}

// Write <vision_start> placeholders <vision_end> for each item in `range`
// starting at `column`, and return the column after the last one.
int64_t place_items(const ModelConfig& config, const std::vector<int64_t>& counts, ItemRange range,
                    int64_t placeholder_id, at::TensorAccessor<int64_t, 1> row, int64_t column) {
  for (std::size_t item = range.first; item < range.second; ++item) {
    row[column++] = config.tokens.vision_start_token_id;
    for (int64_t i = 0; i < counts[item]; ++i) {
      row[column++] = placeholder_id;
    }
    row[column++] = config.tokens.vision_end_token_id;
  }
  return column;
}

int64_t items_length(const std::vector<int64_t>& counts, ItemRange range) {
  int64_t length = 0;
  for (std::size_t item = range.first; item < range.second; ++item) {
    length += counts[item] + 2;
  }
  return length;
}

}  // namespace

std::vector<GridThw> DummyInputSpec::image_grids() const {
  if (!grids.empty()) {
    return grids;
  }
  if (num_images < 0) {
    throw invalid_input(fmt::format("dummy inputs: num_images is {}; it must be 0 or more", num_images));
  }
  return std::vector<GridThw>(static_cast<std::size_t>(num_images), grid);
}

DummyInputs make_dummy_inputs(const ModelConfig& config, const DummyInputSpec& spec) {
  check_spec(spec);
  const int64_t batch = spec.batch_size;
  const int64_t length = spec.sequence_length;
  const int64_t past = spec.past_sequence_length;

  std::vector<GridThw> image_grids = spec.image_grids();
  std::vector<int64_t> image_counts;
  for (std::size_t i = 0; i < image_grids.size(); ++i) {
    image_counts.push_back(placeholder_count(config, image_grids[i], "image", i));
  }
  std::vector<int64_t> video_counts;
  for (std::size_t i = 0; i < spec.videos.size(); ++i) {
    video_counts.push_back(placeholder_count(config, spec.videos[i], "video", i));
  }

  std::vector<ItemRange> image_rows = split_over_rows(image_grids.size(), batch);
  std::vector<ItemRange> video_rows = split_over_rows(spec.videos.size(), batch);
  // Left padding beyond the past columns turns the first input_ids of row 0
  // into padding tokens.
  const int64_t padding_in_ids = std::max<int64_t>(0, spec.left_padding - past);
  for (int64_t row = 0; row < batch; ++row) {
    int64_t padding = row == 0 ? padding_in_ids : 0;
    int64_t needed = padding + items_length(image_counts, image_rows[row]) + items_length(video_counts, video_rows[row]);
    if (needed > length) {
      throw invalid_input(fmt::format(
          "dummy inputs: batch row {} needs {} tokens for {}, {} and {} (each image or video with its vision start "
          "and end tokens), but sequence_length is {}; raise sequence_length to at least {} or use fewer or "
          "smaller images",
          row, needed, count_noun(padding, "padding token"),
          count_noun(static_cast<int64_t>(image_rows[row].second - image_rows[row].first), "image"),
          count_noun(static_cast<int64_t>(video_rows[row].second - video_rows[row].first), "video"), length,
          needed));
    }
  }

  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  DummyInputs inputs;

  // input_ids: random text, then padding and vision items written over it.
  inputs.input_ids = random_text_ids(config, batch, length, generator);
  auto id_rows = inputs.input_ids.accessor<int64_t, 2>();
  for (int64_t row = 0; row < batch; ++row) {
    int64_t column = 0;
    if (row == 0) {
      for (; column < padding_in_ids; ++column) {
        id_rows[row][column] = padding_token_id(config);
      }
    }
    column = place_items(config, image_counts, image_rows[row], config.tokens.image_token_id, id_rows[row], column);
    place_items(config, video_counts, video_rows[row], config.tokens.video_token_id, id_rows[row], column);
  }

  inputs.attention_mask = torch::ones({batch, past + length}, torch::kLong);
  inputs.attention_mask.select(0, 0).slice(0, 0, spec.left_padding).fill_(0);

  const int64_t features = config.vision.patch_features();
  inputs.image_grid_thw = grids_to_tensor(image_grids);
  inputs.pixel_values = torch::randn({patch_count(image_grids), features}, generator, torch::kFloat);
  if (!spec.videos.empty()) {
    inputs.video_grid_thw = grids_to_tensor(spec.videos);
    inputs.pixel_values_videos = torch::randn({patch_count(spec.videos), features}, generator, torch::kFloat);
  }

  // Positions of the new tokens continue after the attended past tokens.
  torch::Tensor new_mask = inputs.attention_mask.slice(1, past, past + length);
  RopeIndex rope = get_rope_index(
      config, inputs.input_ids, image_grids.empty() ? std::nullopt : std::optional<torch::Tensor>(inputs.image_grid_thw),
      spec.videos.empty() ? std::nullopt : std::optional<torch::Tensor>(inputs.video_grid_thw), new_mask);
  torch::Tensor attended_past = inputs.attention_mask.slice(1, 0, past).sum(1).view({1, batch, 1});
  inputs.position_ids = rope.position_ids + attended_past * new_mask.view({1, batch, length});
  inputs.rope_deltas = rope.rope_deltas;

  const TextConfig& text = config.text;
  for (int64_t layer = 0; layer < text.num_hidden_layers; ++layer) {
    std::vector<int64_t> shape = {batch, text.num_key_value_heads, past, text.head_dim};
    inputs.past_keys.push_back(torch::randn(shape, generator, torch::kFloat));
    inputs.past_values.push_back(torch::randn(shape, generator, torch::kFloat));
  }

  spdlog::debug("dummy inputs: batch {}, sequence {}, past {}, {} images, {} videos, {} pixel rows, seed {}", batch,
                length, past, image_grids.size(), spec.videos.size(), inputs.pixel_values.size(0), spec.seed);
  return inputs;
}

}  // namespace qwen2vl
