// libFuzzer target for the config.json parser (ModelConfig::from_json_text).
//
// The parser's contract: any input either parses into a ModelConfig that
// passes validate(), or throws qwen2vl::Error with a non-empty one-line
// message that names the source. This target aborts on any other outcome, so
// libFuzzer reports it together with the sanitizer reports (ASan, UBSan) and
// timeouts. tests/fuzz/run_config_fuzzer.sh builds and runs it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <set>
#include <string>
#include <typeinfo>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/error.h"

namespace {

using qwen2vl::ExitCode;
using qwen2vl::ModelConfig;

constexpr const char* kSource = "fuzz-input.json";
constexpr int64_t kMaxSize = int64_t{1} << 31;  // the limit validate() enforces on every size

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "config_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

void require(bool condition, const char* invariant) {
  if (!condition) {
    fail("accepted config violates an invariant", invariant);
  }
}

bool is_size(int64_t value) { return value >= 1 && value <= kMaxSize; }

bool is_positive_finite(double value) { return std::isfinite(value) && value > 0.0; }

// The relations that model_config.h and validate() promise for every config
// that from_json_text returns.
void check_accepted(const ModelConfig& config) {
  const qwen2vl::TextConfig& text = config.text;
  const qwen2vl::VisionConfig& vision = config.vision;
  const qwen2vl::TokenIds& tokens = config.tokens;

  require(config.model_type == "qwen2_vl", "model_type == \"qwen2_vl\"");
  require(config.source == kSource, "source is the name passed to from_json_text");

  require(is_size(text.hidden_size), "text.hidden_size in [1, 2^31]");
  require(is_size(text.num_hidden_layers), "text.num_hidden_layers in [1, 2^31]");
  require(is_size(text.num_attention_heads), "text.num_attention_heads in [1, 2^31]");
  require(is_size(text.num_key_value_heads), "text.num_key_value_heads in [1, 2^31]");
  require(is_size(text.intermediate_size), "text.intermediate_size in [1, 2^31]");
  require(is_size(text.vocab_size), "text.vocab_size in [1, 2^31]");
  require(is_size(text.max_position_embeddings), "text.max_position_embeddings in [1, 2^31]");
  require(is_positive_finite(text.rms_norm_eps), "text.rms_norm_eps is positive and finite");
  require(is_positive_finite(text.rope_theta), "text.rope_theta is positive and finite");
  require(text.hidden_size % text.num_attention_heads == 0, "num_attention_heads divides hidden_size");
  require(text.head_dim == text.hidden_size / text.num_attention_heads,
          "head_dim == hidden_size / num_attention_heads");
  require(text.num_attention_heads % text.num_key_value_heads == 0, "num_key_value_heads divides num_attention_heads");
  require(config.num_key_value_groups() >= 1, "num_key_value_groups() >= 1");

  require(text.mrope_section.size() == 3, "mrope_section has 3 entries");
  int64_t mrope_sum = 0;
  for (int64_t entry : text.mrope_section) {
    require(is_size(entry), "every mrope_section entry in [1, 2^31]");
    mrope_sum += entry;
  }
  require(2 * mrope_sum == text.head_dim, "2 * sum(mrope_section) == head_dim");

  require(is_size(vision.depth), "vision.depth in [1, 2^31]");
  require(is_size(vision.embed_dim), "vision.embed_dim in [1, 2^31]");
  require(is_size(vision.num_heads), "vision.num_heads in [1, 2^31]");
  require(is_size(vision.in_channels), "vision.in_channels in [1, 2^31]");
  require(is_size(vision.patch_size), "vision.patch_size in [1, 2^31]");
  require(is_size(vision.temporal_patch_size), "vision.temporal_patch_size in [1, 2^31]");
  require(is_size(vision.spatial_merge_size), "vision.spatial_merge_size in [1, 2^31]");
  require(is_positive_finite(vision.mlp_ratio), "vision.mlp_ratio is positive and finite");
  require(vision.embed_dim % vision.num_heads == 0, "vision.num_heads divides vision.embed_dim");
  require((vision.embed_dim / vision.num_heads) % 4 == 0, "vision head size divisible by 4");
  require(vision.hidden_size == text.hidden_size, "vision.hidden_size == text.hidden_size");
  require(is_size(vision.patch_features()), "patch_features() in [1, 2^31]");
  require(vision.patches_per_token() >= 1, "patches_per_token() >= 1");

  const int64_t vision_ids[] = {tokens.image_token_id, tokens.video_token_id, tokens.vision_start_token_id,
                                tokens.vision_end_token_id};
  std::set<int64_t> distinct_ids;
  for (int64_t id : vision_ids) {
    require(id >= 0 && id < text.vocab_size, "image, video and vision start/end token ids inside the vocabulary");
    distinct_ids.insert(id);
  }
  require(distinct_ids.size() == 4, "image, video and vision start/end token ids are distinct");

  require(!config.json_path("text.hidden_size").empty(), "json_path() of a member is not empty");

  // from_json_text ran validate() already, so a second run must pass too.
  try {
    config.validate();
  } catch (const qwen2vl::Error& error) {
    fail("validate() rejects a config that from_json_text accepted", error.what());
  }
}

// The message and code that the header documents for a rejected config.
void check_rejected(const qwen2vl::Error& error) {
  std::string message = error.what();
  if (message.empty()) {
    fail("qwen2vl::Error with an empty message", "(empty)");
  }
  if (message.find_first_of("\r\n") != std::string::npos) {
    fail("qwen2vl::Error message spans several lines", message);
  }
  if (message.find(kSource) == std::string::npos) {
    fail("qwen2vl::Error message does not name the source", message);
  }
  if (error.code() != ExitCode::kInvalidInput && error.code() != ExitCode::kUnsupported) {
    fail("qwen2vl::Error with an exit code other than kInvalidInput or kUnsupported", message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Log to a null sink at the lowest level, so the warnings and debug lines
  // of the parser are still formatted (and checked by the sanitizers) but
  // not printed for every input.
  auto logger = std::make_shared<spdlog::logger>("config_fuzzer", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ModelConfig config = ModelConfig::from_json_text(text, kSource);
    check_accepted(config);
  } catch (const qwen2vl::Error& error) {
    check_rejected(error);
  } catch (const std::exception& error) {
    // Any other exception breaks the contract. Name it before aborting.
    fail("exception other than qwen2vl::Error", std::string(typeid(error).name()) + ": " + error.what());
  } catch (...) {
    fail("exception other than qwen2vl::Error", "not derived from std::exception");
  }
  return 0;
}
