// Typed view of a Qwen2-VL config.json, normalized across the layouts that
// transformers versions and the Hugging Face hub use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qwen2vl {

// The language model's sizes (the top level of a hub config.json, or
// `text_config` in the layout transformers 5 writes).
struct TextConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads, which a head_dim in config.json must match
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1000000.0;
  // Split of head_dim / 2 rotary frequencies between the temporal, height and
  // width rows of the 3-D position ids, so 2 * sum == head_dim. A config without
  // one gets [16, 24, 24], the default of transformers 5.25.
  std::vector<int64_t> mrope_section;
  std::string hidden_act = "silu";
};

// The vision encoder's sizes (`vision_config`).
struct VisionConfig {
  int64_t depth = 0;
  int64_t embed_dim = 0;
  int64_t hidden_size = 0;  // output width of the patch merger; equals TextConfig::hidden_size
  int64_t num_heads = 0;
  double mlp_ratio = 4.0;
  int64_t in_channels = 3;  // `in_channels`, or `in_chans` in hub configs
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t spatial_merge_size = 2;
  std::string hidden_act = "quick_gelu";

  // Values per row of pixel_values: in_channels * temporal_patch_size * patch_size^2 (1176).
  int64_t patch_features() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  // Patches merged into one language-model token: spatial_merge_size^2 (4).
  int64_t patches_per_token() const { return spatial_merge_size * spatial_merge_size; }
};

// Special token ids that place images and videos in input_ids.
struct TokenIds {
  int64_t image_token_id = 151655;
  int64_t video_token_id = 151656;
  int64_t vision_start_token_id = 151652;
  int64_t vision_end_token_id = 151653;
  int64_t bos_token_id = -1;  // -1 when config.json has none
  int64_t eos_token_id = -1;  // the first entry when config.json has a list
  int64_t pad_token_id = -1;
};

struct ModelConfig {
  std::string model_type;  // "qwen2_vl"
  TextConfig text;
  VisionConfig vision;
  TokenIds tokens;
  bool tie_word_embeddings = false;
  std::string torch_dtype;  // "float32", "bfloat16", ... or empty
  std::string source;       // path or "<string>", used in error messages

  // JSON path of each field whose place differs between layouts, keyed by
  // member path ("text.hidden_size" -> "text_config.hidden_size" or
  // "hidden_size"). Messages name fields by json_path().
  std::map<std::string, std::string> json_paths;

  // Parse and check a config. Throws qwen2vl::Error naming the file, the
  // field, the value and the fix. The code is ExitCode::kUnsupported when
  // model_type is not "qwen2_vl" (Qwen2.5-VL, Qwen3-VL, ...) or the rope type
  // rescales frequencies (yarn, dynamic, ...), and ExitCode::kInvalidInput for
  // every other problem.
  static ModelConfig from_file(const std::filesystem::path& path);
  static ModelConfig from_json_text(const std::string& text, const std::string& source = "<string>");

  // Check ranges and the relations between sizes (divisibility, mrope_section
  // against head_dim, token ids inside the vocabulary, ...). Throws
  // qwen2vl::Error (ExitCode::kInvalidInput). from_file and from_json_text
  // call it, and it is public for configs built in code.
  void validate() const;

  // JSON path of a member ("text.num_key_value_heads") as the parsed file
  // spelled it. Members missing from json_paths (configs built in code) get
  // their path in the transformers 5 layout ("text_config.num_key_value_heads").
  std::string json_path(const std::string& member) const;

  int64_t num_key_value_groups() const { return text.num_attention_heads / text.num_key_value_heads; }
};

}  // namespace qwen2vl
