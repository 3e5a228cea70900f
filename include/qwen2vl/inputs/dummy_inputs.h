// Dummy inputs that drive profiling and validation: a C++ port of optimum's
// dummy-input generators, extended with Qwen2-VL's image tokens and 3-D
// (M-RoPE) position ids.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "qwen2vl/config/model_config.h"

namespace qwen2vl {

// One image or video in patches: t frames (an image has t = 1), h by w patches.
struct GridThw {
  int64_t t = 1;
  int64_t h = 4;
  int64_t w = 4;
};

// Sizes of one set of dummy inputs. The defaults give input_ids [2, 20],
// position_ids [3, 2, 20], pixel_values [32, 1176] and image_grid_thw [2, 3]
// for the Qwen2-VL-2B/7B vision sizes.
struct DummyInputSpec {
  int64_t batch_size = 2;
  int64_t sequence_length = 20;       // new tokens per row (input_ids columns)
  int64_t past_sequence_length = 0;   // cached tokens before them
  int64_t num_images = 2;
  GridThw grid;                  // used for every image unless `grids` is set
  std::vector<GridThw> grids;    // one entry per image; overrides num_images and grid
  std::vector<GridThw> videos;   // one entry per video (t >= 1 frames of patches)
  // Columns at the start of row 0's attention_mask that are 0. Columns past
  // past_sequence_length are padding tokens in input_ids, so they take room
  // from sequence_length.
  int64_t left_padding = 0;
  uint64_t seed = 0;

  // The grid of each image: `grids`, or num_images copies of `grid`. Throws
  // qwen2vl::Error when num_images is negative.
  std::vector<GridThw> image_grids() const;
};

// Every tensor a Qwen2-VL graph can take. Unused ones stay undefined.
struct DummyInputs {
  torch::Tensor input_ids;       // int64 [B, S]
  torch::Tensor attention_mask;  // int64 [B, past + S]
  torch::Tensor position_ids;    // int64 [3, B, S]
  torch::Tensor rope_deltas;     // int64 [B, 1]
  torch::Tensor pixel_values;    // float [patches, patch_features], or [0, patch_features] without images
  torch::Tensor image_grid_thw;  // int64 [images, 3], or [0, 3] without images
  torch::Tensor pixel_values_videos;  // float [patches, patch_features], undefined without videos
  torch::Tensor video_grid_thw;       // int64 [videos, 3], undefined without videos
  // One per decoder layer, float [B, num_key_value_heads, past, head_dim]
  // (past = 0 gives empty tensors).
  std::vector<torch::Tensor> past_keys;
  std::vector<torch::Tensor> past_values;  // same shapes as past_keys
};

// Build inputs for `spec`, deterministic for spec.seed. Each row contains its
// images, then its videos, then random text ids that are never a special
// token id. An image or video is <vision_start>, t*h*w / spatial_merge_size^2
// placeholder tokens and <vision_end>. Images are split over the batch rows
// in order, and earlier rows take one more when the count does not divide
// evenly. Videos are split the same way. position_ids come from
// get_rope_index, shifted by the number of attended past tokens. Throws
// qwen2vl::Error (ExitCode::kInvalidInput) when a size is negative, the
// images do not fit in sequence_length, or a grid's h or w is not divisible
// by spatial_merge_size.
DummyInputs make_dummy_inputs(const ModelConfig& config, const DummyInputSpec& spec);

// Port of Qwen2VLModel.get_rope_index from transformers 5.25: 3-D position
// ids [3, B, S] and rope deltas [B, 1] for input_ids that hold image and
// video placeholders. Token types come from input_ids (image_token_id,
// video_token_id), and each run of placeholder tokens consumes the next grid.
// Padded positions (attention_mask 0) get 0. Both outputs are int64. Throws
// qwen2vl::Error (ExitCode::kInvalidInput) when shapes disagree, a run finds
// no grid left, a run's length differs from its grid's token count, or a row
// has no attended token.
struct RopeIndex {
  torch::Tensor position_ids;
  torch::Tensor rope_deltas;
};
RopeIndex get_rope_index(const ModelConfig& config, const torch::Tensor& input_ids,
                         const std::optional<torch::Tensor>& image_grid_thw,
                         const std::optional<torch::Tensor>& video_grid_thw,
                         const std::optional<torch::Tensor>& attention_mask);

}  // namespace qwen2vl
