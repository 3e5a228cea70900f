// ModelConfig::validate: ranges and the relations between sizes that the
// Qwen2-VL modeling code of transformers 5.25 relies on.
#include <cmath>
#include <set>

#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include "json_fields.h"
#include "qwen2vl/config/model_config.h"
#include "qwen2vl/error.h"

namespace qwen2vl {

using config_detail::kMaxSize;

constexpr int64_t kMaxLayers = 1024;

namespace {

// Example mrope_section for a head_dim in the 16:24:24 proportions of the
// released checkpoints, or empty when head_dim is odd or too small to split.
std::vector<int64_t> example_mrope_section(int64_t head_dim) {
  int64_t half = head_dim / 2;
  int64_t temporal = half / 4;
  int64_t height = (half - temporal) / 2;
  int64_t width = half - temporal - height;
  if (head_dim % 2 != 0 || temporal < 1 || height < 1) {
    return {};
  }
  return {temporal, height, width};
}

class Checker {
 public:
  explicit Checker(const ModelConfig& config) : config_(config) {}

  std::string path(const std::string& member) const { return config_.json_path(member); }

  [[noreturn]] void fail(const std::string& message) const {
    const std::string& source = config_.source.empty() ? std::string("<config>") : config_.source;
    throw invalid_input(fmt::format("{}: {}", source, message));
  }

  void check_size(const std::string& member, int64_t value, const std::string& hint = "") const {
    if (value < 1 || value > kMaxSize) {
      fail(fmt::format("{} is {}; it must be an integer from 1 to {} (2^31){}", path(member), value, kMaxSize,
                       hint.empty() ? "" : "; " + hint));
    }
  }

  // Layer counts get a tighter bound: the exporter creates inputs, outputs and
  // names per layer, so a count in the millions would stall it before any check
  // against the archive could run.
  void check_layers(const std::string& member, int64_t value) const {
    if (value < 1 || value > kMaxLayers) {
      fail(fmt::format("{} is {}; it must be an integer from 1 to {}, and released Qwen2-VL checkpoints have "
                       "28 to 80 language and 32 vision layers; check that this is the checkpoint's config.json",
                       path(member), value, kMaxLayers));
    }
  }

  void check_positive(const std::string& member, double value) const {
    if (!std::isfinite(value) || value <= 0.0) {
      fail(fmt::format("{} is {}; it must be a positive number", path(member), value));
    }
  }

 private:
  const ModelConfig& config_;
};

void check_text(const Checker& check, const TextConfig& text) {
  check.check_size("text.hidden_size", text.hidden_size);
  check.check_layers("text.num_hidden_layers", text.num_hidden_layers);
  check.check_size("text.num_attention_heads", text.num_attention_heads);
  check.check_size("text.num_key_value_heads", text.num_key_value_heads);
  check.check_size("text.intermediate_size", text.intermediate_size);
  check.check_size("text.vocab_size", text.vocab_size);
  check.check_size("text.max_position_embeddings", text.max_position_embeddings);
  check.check_positive("text.rms_norm_eps", text.rms_norm_eps);
  check.check_positive("text.rope_theta", text.rope_theta);

  if (text.hidden_size % text.num_attention_heads != 0) {
    check.fail(fmt::format("{} is {}, which is not divisible by {} ({}); set num_attention_heads to a divisor of {}",
                           check.path("text.hidden_size"), text.hidden_size, check.path("text.num_attention_heads"),
                           text.num_attention_heads, text.hidden_size));
  }
  if (text.num_attention_heads % text.num_key_value_heads != 0) {
    check.fail(fmt::format(
        "{} is {}, but {} ({}) must be a multiple of it for grouped-query attention; set num_key_value_heads to a "
        "divisor of {}",
        check.path("text.num_key_value_heads"), text.num_key_value_heads, check.path("text.num_attention_heads"),
        text.num_attention_heads, text.num_attention_heads));
  }

  // transformers 5.25's Qwen2VLAttention computes the head size as
  // hidden_size / num_attention_heads and ignores head_dim.
  int64_t derived_head_dim = text.hidden_size / text.num_attention_heads;
  if (text.head_dim != derived_head_dim) {
    check.fail(fmt::format(
        "{} is {}, but Qwen2-VL's attention uses hidden_size / num_attention_heads = {} / {} = {}; remove head_dim "
        "or set it to {}",
        check.path("text.head_dim"), text.head_dim, text.hidden_size, text.num_attention_heads, derived_head_dim,
        derived_head_dim));
  }

  const std::vector<int64_t>& section = text.mrope_section;
  std::vector<int64_t> example = example_mrope_section(text.head_dim);
  std::string example_text = example.empty() ? "" : fmt::format(", for example [{}]", fmt::join(example, ", "));
  if (section.size() != 3) {
    check.fail(fmt::format(
        "{} is [{}] with {} entries; it needs 3 (temporal, height and width) that add up to head_dim / 2 = {}{}",
        check.path("text.mrope_section"), fmt::join(section, ", "), section.size(), text.head_dim / 2,
        example_text));
  }
  int64_t sum = 0;
  for (int64_t entry : section) {
    if (entry < 1 || entry > kMaxSize) {
      check.fail(fmt::format("{} is [{}]; every entry must be a positive integer{}", check.path("text.mrope_section"),
                             fmt::join(section, ", "), example_text));
    }
    sum += entry;
  }
  if (2 * sum != text.head_dim) {
    check.fail(fmt::format(
        "{} is [{}] (sum {}), but 2 * sum must equal head_dim {} (hidden_size {} / num_attention_heads {}); choose "
        "three sizes that add up to {}{}",
        check.path("text.mrope_section"), fmt::join(section, ", "), sum, text.head_dim, text.hidden_size,
        text.num_attention_heads, text.head_dim / 2, example_text));
  }
}

void check_vision(const Checker& check, const VisionConfig& vision, const TextConfig& text) {
  check.check_layers("vision.depth", vision.depth);
  check.check_size("vision.embed_dim", vision.embed_dim);
  check.check_size("vision.hidden_size", vision.hidden_size);
  check.check_size("vision.num_heads", vision.num_heads);
  check.check_size("vision.in_channels", vision.in_channels);
  check.check_size("vision.patch_size", vision.patch_size);
  check.check_size("vision.temporal_patch_size", vision.temporal_patch_size);
  check.check_size("vision.spatial_merge_size", vision.spatial_merge_size,
                   "released Qwen2-VL checkpoints merge 2 x 2 patches, so it is usually 2");
  check.check_positive("vision.mlp_ratio", vision.mlp_ratio);

  if (vision.embed_dim % vision.num_heads != 0) {
    check.fail(fmt::format("{} is {}, which is not divisible by {} ({}); set num_heads to a divisor of {}",
                           check.path("vision.embed_dim"), vision.embed_dim, check.path("vision.num_heads"),
                           vision.num_heads, vision.embed_dim));
  }
  // The vision rotary embedding gives half of each head to the row and half
  // to the column position, each as sin/cos pairs.
  int64_t vision_head_dim = vision.embed_dim / vision.num_heads;
  if (vision_head_dim % 4 != 0) {
    check.fail(fmt::format(
        "{} / {} is {} / {} = {}, but the vision rotary embedding needs a head size divisible by 4; change "
        "embed_dim or num_heads",
        check.path("vision.embed_dim"), check.path("vision.num_heads"), vision.embed_dim, vision.num_heads,
        vision_head_dim));
  }
  if (vision.hidden_size != text.hidden_size) {
    check.fail(fmt::format(
        "{} is {}, but the patch merger's output must match the language model's {} ({}); set it to {}",
        check.path("vision.hidden_size"), vision.hidden_size, check.path("text.hidden_size"), text.hidden_size,
        text.hidden_size));
  }

  int64_t features = 0;
  if (__builtin_mul_overflow(vision.in_channels * vision.temporal_patch_size, vision.patch_size, &features) ||
      __builtin_mul_overflow(features, vision.patch_size, &features) || features > kMaxSize) {
    check.fail(fmt::format(
        "{} * {} * {}^2 ({} * {} * {}^2) exceeds 2^31 values per patch; check these vision_config fields",
        check.path("vision.in_channels"), check.path("vision.temporal_patch_size"), check.path("vision.patch_size"),
        vision.in_channels, vision.temporal_patch_size, vision.patch_size));
  }
}

void check_tokens(const Checker& check, const TokenIds& tokens, int64_t vocab_size) {
  const std::pair<const char*, int64_t> vision_ids[] = {
      {"tokens.image_token_id", tokens.image_token_id},
      {"tokens.video_token_id", tokens.video_token_id},
      {"tokens.vision_start_token_id", tokens.vision_start_token_id},
      {"tokens.vision_end_token_id", tokens.vision_end_token_id},
  };
  std::set<int64_t> seen;
  for (const auto& [member, id] : vision_ids) {
    // The embedding layer looks up every input id, placeholders included.
    if (id < 0 || id >= vocab_size) {
      check.fail(fmt::format("{} is {}, outside the vocabulary (vocab_size {}); set it to an id from 0 to {}",
                             check.path(member), id, vocab_size, vocab_size - 1));
    }
    if (!seen.insert(id).second) {
      check.fail(fmt::format(
          "{} is {}, the same id as another image, video or vision start/end token; give each of the four its "
          "own id",
          check.path(member), id));
    }
  }
}

}  // namespace

void ModelConfig::validate() const {
  Checker check(*this);
  check_text(check, text);
  check_vision(check, vision, text);
  check_tokens(check, tokens, text.vocab_size);
}

}  // namespace qwen2vl
