// ModelConfig parsing of the hub and transformers 5 layouts, and the
// message of every rejected config.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

using nlohmann::json;

const std::filesystem::path kDataDir = QWEN2VL_CONFIG_TEST_DATA;

std::filesystem::path data_path(const std::string& name) { return kDataDir / name; }

json read_json(const std::string& name) {
  std::ifstream stream(data_path(name));
  return json::parse(stream);
}

testing::AssertionResult contains(const char* text_expr, const char* fragment_expr, const std::string& text,
                                  const std::string& fragment) {
  if (text.find(fragment) != std::string::npos) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << text_expr << " does not contain " << fragment_expr << "\n  text:     " << text
                                     << "\n  fragment: " << fragment;
}

// A fresh directory under the system temp directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("qwen2vl_config_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// --- Hub layout: Qwen2-VL-2B-Instruct -----------------------------------------------------

class HubLayout : public testing::Test {
 protected:
  ModelConfig config = ModelConfig::from_file(data_path("qwen2_vl_2b_instruct_hub.json"));
};

TEST_F(HubLayout, ReadsModelType) {
  EXPECT_EQ(config.model_type, "qwen2_vl");
  EXPECT_EQ(config.source, data_path("qwen2_vl_2b_instruct_hub.json").string());
}

TEST_F(HubLayout, ReadsTopLevelTextSizes) {
  EXPECT_EQ(config.text.hidden_size, 1536);
  EXPECT_EQ(config.text.num_hidden_layers, 28);
  EXPECT_EQ(config.text.num_attention_heads, 12);
  EXPECT_EQ(config.text.num_key_value_heads, 2);
  EXPECT_EQ(config.text.intermediate_size, 8960);
  EXPECT_EQ(config.text.vocab_size, 151936);
  EXPECT_EQ(config.text.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(config.text.rms_norm_eps, 1e-6);
  EXPECT_EQ(config.text.hidden_act, "silu");
}

TEST_F(HubLayout, DerivesHeadDim) {
  EXPECT_EQ(config.text.head_dim, 128);
  EXPECT_EQ(config.num_key_value_groups(), 6);
}

TEST_F(HubLayout, ReadsRopeScaling) {
  EXPECT_EQ(config.text.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_DOUBLE_EQ(config.text.rope_theta, 1000000.0);
  EXPECT_EQ(config.json_path("text.mrope_section"), "rope_scaling.mrope_section");
  EXPECT_EQ(config.json_path("text.hidden_size"), "hidden_size");
}

TEST_F(HubLayout, ReadsVisionConfig) {
  EXPECT_EQ(config.vision.depth, 32);
  EXPECT_EQ(config.vision.embed_dim, 1280);
  EXPECT_EQ(config.vision.hidden_size, 1536);
  EXPECT_EQ(config.vision.num_heads, 16);
  EXPECT_DOUBLE_EQ(config.vision.mlp_ratio, 4.0);
  EXPECT_EQ(config.vision.in_channels, 3);
  EXPECT_EQ(config.vision.patch_size, 14);
  EXPECT_EQ(config.vision.temporal_patch_size, 2);
  EXPECT_EQ(config.vision.spatial_merge_size, 2);
  EXPECT_EQ(config.vision.patch_features(), 1176);
  EXPECT_EQ(config.vision.patches_per_token(), 4);
}

TEST_F(HubLayout, ReadsInChansAlias) {
  EXPECT_EQ(config.json_path("vision.in_channels"), "vision_config.in_chans");
}

TEST_F(HubLayout, ReadsTokenIds) {
  EXPECT_EQ(config.tokens.image_token_id, 151655);
  EXPECT_EQ(config.tokens.video_token_id, 151656);
  EXPECT_EQ(config.tokens.vision_start_token_id, 151652);
  EXPECT_EQ(config.tokens.vision_end_token_id, 151653);
  EXPECT_EQ(config.tokens.bos_token_id, 151643);
  EXPECT_EQ(config.tokens.eos_token_id, 151645);
  EXPECT_EQ(config.tokens.pad_token_id, -1);
}

TEST_F(HubLayout, ReadsModelOptions) {
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_EQ(config.torch_dtype, "bfloat16");
}

// --- transformers 5 layout ----------------------------------------------------------------

class Transformers5Layout : public testing::Test {
 protected:
  ModelConfig config = ModelConfig::from_file(data_path("tiny_transformers5.json"));
};

TEST_F(Transformers5Layout, ReadsTextConfig) {
  EXPECT_EQ(config.text.hidden_size, 64);
  EXPECT_EQ(config.text.num_hidden_layers, 2);
  EXPECT_EQ(config.text.num_attention_heads, 4);
  EXPECT_EQ(config.text.num_key_value_heads, 2);
  EXPECT_EQ(config.text.head_dim, 16);
  EXPECT_EQ(config.text.intermediate_size, 128);
  EXPECT_EQ(config.text.vocab_size, 1000);
  EXPECT_EQ(config.text.max_position_embeddings, 4096);
  EXPECT_EQ(config.json_path("text.hidden_size"), "text_config.hidden_size");
}

TEST_F(Transformers5Layout, ReadsRopeParameters) {
  EXPECT_EQ(config.text.mrope_section, (std::vector<int64_t>{2, 3, 3}));
  EXPECT_DOUBLE_EQ(config.text.rope_theta, 10000.0);
  EXPECT_EQ(config.json_path("text.mrope_section"), "text_config.rope_parameters.mrope_section");
}

TEST_F(Transformers5Layout, ReadsVisionInChannels) {
  EXPECT_EQ(config.vision.in_channels, 3);
  EXPECT_EQ(config.vision.embed_dim, 32);
  EXPECT_EQ(config.vision.hidden_size, 64);
  EXPECT_EQ(config.json_path("vision.in_channels"), "vision_config.in_channels");
}

TEST_F(Transformers5Layout, ReadsTokenIds) {
  EXPECT_EQ(config.tokens.image_token_id, 995);
  EXPECT_EQ(config.tokens.video_token_id, 996);
  EXPECT_EQ(config.tokens.vision_start_token_id, 992);
  EXPECT_EQ(config.tokens.vision_end_token_id, 993);
  EXPECT_EQ(config.tokens.bos_token_id, 990);
  EXPECT_EQ(config.tokens.pad_token_id, 989);
}

TEST_F(Transformers5Layout, TakesFirstEosOfList) { EXPECT_EQ(config.tokens.eos_token_id, 991); }

TEST_F(Transformers5Layout, ReadsDtype) {
  EXPECT_EQ(config.torch_dtype, "float32");
  EXPECT_FALSE(config.tie_word_embeddings);
}

TEST(Transformers5WithoutMrope, FillsDefaultSection) {
  ModelConfig config = ModelConfig::from_file(data_path("qwen2_vl_7b_transformers5_no_mrope.json"));
  EXPECT_EQ(config.text.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_EQ(config.text.head_dim, 128);
  EXPECT_DOUBLE_EQ(config.text.rope_theta, 1000000.0);
  EXPECT_EQ(config.vision.hidden_size, 3584);
  EXPECT_EQ(config.json_path("text.mrope_section"), "text_config.rope_parameters.mrope_section");
}

TEST(HubWithoutMrope, NamesRopeScalingInError) {
  json document = read_json("qwen2_vl_2b_instruct_hub.json");
  document.erase("rope_scaling");
  document["hidden_size"] = 768;
  document["vision_config"]["hidden_size"] = 768;
  try {
    ModelConfig::from_json_text(document.dump(), "hub.json");
    FAIL() << "the default mrope_section [16, 24, 24] was accepted for head_dim 64";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
    EXPECT_PRED_FORMAT2(contains, error.what(), "hub.json: rope_scaling.mrope_section is [16, 24, 24] (sum 64)");
    EXPECT_PRED_FORMAT2(contains, error.what(), "for example [8, 12, 12]");
  }
}

// --- Variants of the transformers 5 layout --------------------------------------------------

ModelConfig parse_tiny(const std::function<void(json&)>& edit) {
  json document = read_json("tiny_transformers5.json");
  edit(document);
  return ModelConfig::from_json_text(document.dump(), "tiny.json");
}

TEST(LayoutVariants, NullKeyValueHeadsMeansHeads) {
  ModelConfig config = parse_tiny([](json& d) { d["text_config"]["num_key_value_heads"] = nullptr; });
  EXPECT_EQ(config.text.num_key_value_heads, 4);
}

TEST(LayoutVariants, AcceptsMatchingHeadDim) {
  ModelConfig config = parse_tiny([](json& d) { d["text_config"]["head_dim"] = 16; });
  EXPECT_EQ(config.text.head_dim, 16);
}

TEST(LayoutVariants, ReadsTokenIdsInTextConfig) {
  ModelConfig config = parse_tiny([](json& d) {
    d.erase("image_token_id");
    d["text_config"]["image_token_id"] = 900;
  });
  EXPECT_EQ(config.tokens.image_token_id, 900);
  EXPECT_EQ(config.json_path("tokens.image_token_id"), "text_config.image_token_id");
}

TEST(LayoutVariants, PrefersTopLevelTokenIds) {
  ModelConfig config = parse_tiny([](json& d) { d["text_config"]["image_token_id"] = 900; });
  EXPECT_EQ(config.tokens.image_token_id, 995);
}

TEST(LayoutVariants, ReadsTieInTextConfig) {
  ModelConfig config = parse_tiny([](json& d) { d["text_config"]["tie_word_embeddings"] = true; });
  EXPECT_TRUE(config.tie_word_embeddings);
}

TEST(LayoutVariants, ReadsTorchDtype) {
  ModelConfig config = parse_tiny([](json& d) {
    d.erase("dtype");
    d["torch_dtype"] = "float16";
  });
  EXPECT_EQ(config.torch_dtype, "float16");
}

TEST(LayoutVariants, ReadsTopLevelRopeScaling) {
  ModelConfig config = parse_tiny([](json& d) {
    d["text_config"].erase("rope_parameters");
    d["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", {4, 2, 2}}};
    d["rope_theta"] = 5000.0;
  });
  EXPECT_EQ(config.text.mrope_section, (std::vector<int64_t>{4, 2, 2}));
  EXPECT_DOUBLE_EQ(config.text.rope_theta, 5000.0);
  EXPECT_EQ(config.json_path("text.mrope_section"), "rope_scaling.mrope_section");
}

TEST(LayoutVariants, ReadsRopeScalingInTextConfig) {
  ModelConfig config = parse_tiny([](json& d) {
    d["text_config"].erase("rope_parameters");
    d["text_config"]["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", {2, 2, 4}}};
  });
  EXPECT_EQ(config.text.mrope_section, (std::vector<int64_t>{2, 2, 4}));
  EXPECT_DOUBLE_EQ(config.text.rope_theta, 1000000.0);
}

TEST(LayoutVariants, ReadsHubStylePatchAlias) {
  ModelConfig config = parse_tiny([](json& d) {
    d["vision_config"].erase("patch_size");
    d["vision_config"]["spatial_patch_size"] = 16;
  });
  EXPECT_EQ(config.vision.patch_size, 16);
  EXPECT_EQ(config.vision.patch_features(), 3 * 2 * 16 * 16);
}

TEST(LayoutVariants, IgnoresUnknownFields) {
  ModelConfig config = parse_tiny([](json& d) { d["some_future_field"] = {{"nested", true}}; });
  EXPECT_EQ(config.text.hidden_size, 64);
}

// --- validate() on configs built in code -----------------------------------------------------

ModelConfig tiny_config_in_code() {
  ModelConfig config;
  config.model_type = "qwen2_vl";
  config.text.hidden_size = 64;
  config.text.num_hidden_layers = 2;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.text.head_dim = 16;
  config.text.intermediate_size = 128;
  config.text.vocab_size = 200000;
  config.text.max_position_embeddings = 4096;
  config.text.mrope_section = {2, 3, 3};
  config.vision.depth = 2;
  config.vision.embed_dim = 32;
  config.vision.hidden_size = 64;
  config.vision.num_heads = 4;
  return config;
}

TEST(ValidateInCode, AcceptsConsistentConfig) { EXPECT_NO_THROW(tiny_config_in_code().validate()); }

TEST(ValidateInCode, NamesTransformers5Paths) {
  ModelConfig config = tiny_config_in_code();
  config.text.num_key_value_heads = 3;
  try {
    config.validate();
    FAIL() << "validate() accepted num_key_value_heads 3 with 4 heads";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
    EXPECT_PRED_FORMAT2(contains, error.what(), "<config>: text_config.num_key_value_heads is 3");
  }
}

// --- Rejected configs -------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::function<void(json&)> edit;
  std::vector<std::string> fragments;  // each must appear in the message
  ExitCode code = ExitCode::kInvalidInput;
};

void PrintTo(const ErrorCase& error_case, std::ostream* out) { *out << error_case.name; }

class ModelConfigErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(ModelConfigErrors, RejectsWithMessage) {
  const ErrorCase& error_case = GetParam();
  json document = read_json("tiny_transformers5.json");
  error_case.edit(document);
  try {
    ModelConfig::from_json_text(document.dump(2), "tiny.json");
    FAIL() << "the config was accepted";
  } catch (const Error& error) {
    std::string message = error.what();
    EXPECT_EQ(static_cast<int>(error.code()), static_cast<int>(error_case.code));
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_PRED_FORMAT2(contains, message, "tiny.json: ");
    for (const std::string& fragment : error_case.fragments) {
      EXPECT_PRED_FORMAT2(contains, message, fragment);
    }
  }
}

std::vector<ErrorCase> error_cases() {
  return {
      {"HiddenSizeString",
       [](json& d) { d["text_config"]["hidden_size"] = "64"; },
       {"text_config.hidden_size is \"64\" (a string)", "expected an integer"}},
      {"HiddenSizeFloat",
       [](json& d) { d["text_config"]["hidden_size"] = 64.5; },
       {"text_config.hidden_size is 64.5", "expected an integer"}},
      {"HeadsMissing",
       [](json& d) { d["text_config"].erase("num_attention_heads"); },
       {"required field text_config.num_attention_heads is missing", "add it to config.json"}},
      {"VisionConfigMissing",
       [](json& d) { d.erase("vision_config"); },
       {"required field vision_config is missing", "add the vision_config object"}},
      {"VisionDepthMissing",
       [](json& d) { d["vision_config"].erase("depth"); },
       {"required field vision_config.depth is missing"}},
      {"TextConfigNotObject",
       [](json& d) { d["text_config"] = json::array({1}); },
       {"text_config is [1] (an array)", "expected a JSON object"}},
      {"LayersZero",
       [](json& d) { d["text_config"]["num_hidden_layers"] = 0; },
       {"text_config.num_hidden_layers is 0", "it must be an integer from 1 to 1024"}},
      {"LayersHuge",
       [](json& d) { d["text_config"]["num_hidden_layers"] = 1000000000; },
       {"text_config.num_hidden_layers is 1000000000", "from 1 to 1024"}},
      {"VisionDepthHuge",
       [](json& d) { d["vision_config"]["depth"] = 5000; },
       {"vision_config.depth is 5000", "from 1 to 1024"}},
      {"VisionDepthNegative",
       [](json& d) { d["vision_config"]["depth"] = -1; },
       {"vision_config.depth is -1", "from 1 to 1024"}},
      {"VocabHuge",
       [](json& d) { d["text_config"]["vocab_size"] = int64_t{1} << 32; },
       {"text_config.vocab_size is 4294967296", "from 1 to 2147483648"}},
      {"IntermediateBeyondInt64",
       [](json& d) { d["text_config"]["intermediate_size"] = UINT64_MAX; },
       {"text_config.intermediate_size is 18446744073709551615", "from 1 to 2147483648"}},
      {"HiddenNotDivisibleByHeads",
       [](json& d) { d["text_config"]["num_attention_heads"] = 5; },
       {"text_config.hidden_size is 64, which is not divisible by text_config.num_attention_heads (5)",
        "set num_attention_heads to a divisor of 64"}},
      {"HeadsNotDivisibleByKeyValueHeads",
       [](json& d) { d["text_config"]["num_key_value_heads"] = 3; },
       {"text_config.num_key_value_heads is 3", "text_config.num_attention_heads (4) must be a multiple of it",
        "divisor of 4"}},
      {"HeadDimDisagrees",
       [](json& d) { d["text_config"]["head_dim"] = 32; },
       {"text_config.head_dim is 32", "= 16", "remove head_dim or set it to 16"}},
      {"MropeSumMismatch",
       [](json& d) { d["text_config"]["rope_parameters"]["mrope_section"] = {2, 3, 4}; },
       {"text_config.rope_parameters.mrope_section is [2, 3, 4] (sum 9)", "2 * sum must equal head_dim 16",
        "for example [2, 3, 3]"}},
      {"MropeTwoEntries",
       [](json& d) { d["text_config"]["rope_parameters"]["mrope_section"] = {4, 4}; },
       {"text_config.rope_parameters.mrope_section is [4, 4] with 2 entries", "it needs 3"}},
      {"MropeEntryString",
       [](json& d) { d["text_config"]["rope_parameters"]["mrope_section"] = {2, "3", 3}; },
       {"text_config.rope_parameters.mrope_section[1] is \"3\"", "expected an integer"}},
      {"MropeNotList",
       [](json& d) { d["text_config"]["rope_parameters"]["mrope_section"] = 8; },
       {"text_config.rope_parameters.mrope_section is 8", "expected a list of integers"}},
      {"MropeZeroEntry",
       [](json& d) { d["text_config"]["rope_parameters"]["mrope_section"] = {0, 4, 4}; },
       {"mrope_section is [0, 4, 4]", "every entry must be a positive integer"}},
      {"VisionEmbedNotDivisibleByHeads",
       [](json& d) { d["vision_config"]["num_heads"] = 5; },
       {"vision_config.embed_dim is 32, which is not divisible by vision_config.num_heads (5)"}},
      {"VisionHeadSizeNotMultipleOfFour",
       [](json& d) { d["vision_config"]["embed_dim"] = 24; },
       {"vision_config.embed_dim / vision_config.num_heads is 24 / 4 = 6", "divisible by 4"}},
      {"VisionHiddenDiffersFromText",
       [](json& d) { d["vision_config"]["hidden_size"] = 32; },
       {"vision_config.hidden_size is 32", "text_config.hidden_size (64)", "set it to 64"}},
      {"SpatialMergeZero",
       [](json& d) { d["vision_config"]["spatial_merge_size"] = 0; },
       {"vision_config.spatial_merge_size is 0", "from 1 to", "usually 2"}},
      {"InChannelsAliasDisagrees",
       [](json& d) { d["vision_config"]["in_chans"] = 1; },
       {"vision_config.in_chans is 1", "disagrees with vision_config.in_channels (3)"}},
      {"PatchFeaturesOverflow",
       [](json& d) { d["vision_config"]["patch_size"] = int64_t{1} << 31; },
       {"vision_config.patch_size", "exceeds 2^31 values per patch"}},
      {"ImageTokenOutsideVocab",
       [](json& d) { d["image_token_id"] = 151655; },
       {"image_token_id is 151655, outside the vocabulary (vocab_size 1000)", "from 0 to 999"}},
      {"ImageTokenNegative",
       [](json& d) { d["image_token_id"] = -5; },
       {"image_token_id is -5, outside the vocabulary"}},
      {"VideoTokenSameAsImage",
       [](json& d) { d["video_token_id"] = 995; },
       {"video_token_id is 995", "give each of the four its own id"}},
      {"EosEmptyList",
       [](json& d) { d["text_config"]["eos_token_id"] = json::array(); },
       {"text_config.eos_token_id is []", "non-empty list"}},
      {"TieNotBoolean",
       [](json& d) { d["tie_word_embeddings"] = "yes"; },
       {"tie_word_embeddings is \"yes\" (a string)", "expected true or false"}},
      {"RmsNormEpsNegative",
       [](json& d) { d["text_config"]["rms_norm_eps"] = -1e-6; },
       {"text_config.rms_norm_eps is -1e-06", "positive number"}},
      {"DtypeNotString",
       [](json& d) { d["dtype"] = 32; },
       {"dtype is 32 (an integer)", "expected a string"}},
      {"ModelTypeMissing",
       [](json& d) { d.erase("model_type"); },
       {"required field model_type is missing", "\"qwen2_vl\""}},
      {"ModelTypeNotString",
       [](json& d) { d["model_type"] = 7; },
       {"model_type is 7 (an integer)", "expected a string"}},
      {"ModelTypeQwen25Vl",
       [](json& d) { d["model_type"] = "qwen2_5_vl"; },
       {"model_type is \"qwen2_5_vl\"", "supports only \"qwen2_vl\"", "Qwen2.5-VL", "not supported"},
       ExitCode::kUnsupported},
      {"RopeTypeYarn",
       [](json& d) { d["text_config"]["rope_parameters"]["rope_type"] = "yarn"; },
       {"text_config.rope_parameters.rope_type is \"yarn\"", "supports only the M-RoPE"},
       ExitCode::kUnsupported},
      // The message quotes the value with JSON escapes, so it stays on one line.
      {"ModelTypeWithNewline",
       [](json& d) { d["model_type"] = "qwen2_5_vl\nsecond line"; },
       {"model_type is \"qwen2_5_vl\\nsecond line\"", "supports only \"qwen2_vl\""},
       ExitCode::kUnsupported},
      {"RopeTypeWithNewline",
       [](json& d) { d["text_config"]["rope_parameters"]["rope_type"] = "yarn\r\n"; },
       {"text_config.rope_parameters.rope_type is \"yarn\\r\\n\"", "supports only the M-RoPE"},
       ExitCode::kUnsupported},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, ModelConfigErrors, testing::ValuesIn(error_cases()),
                         [](const testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

// --- Files and JSON syntax --------------------------------------------------------------------

// Run `parse` and return the error it throws. Fails the test when it returns.
Error expect_error(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no qwen2vl::Error was thrown";
  return Error(ExitCode::kSuccess, "");
}

TEST(ConfigFiles, MissingFile) {
  TempDir dir;
  std::filesystem::path path = dir.path() / "config.json";
  Error error = expect_error([&] { ModelConfig::from_file(path); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "config file " + path.string() + " not found");
  EXPECT_PRED_FORMAT2(contains, error.what(), "pass the config.json of a Qwen2-VL checkpoint");
}

TEST(ConfigFiles, DirectoryInsteadOfFile) {
  TempDir dir;
  Error error = expect_error([&] { ModelConfig::from_file(dir.path()); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "is a directory");
  EXPECT_PRED_FORMAT2(contains, error.what(), (dir.path() / "config.json").string());
}

TEST(ConfigFiles, InvalidJsonNamesLineAndColumn) {
  TempDir dir;
  std::filesystem::path path = dir.path() / "config.json";
  std::ofstream(path) << "{\n  \"model_type\": \"qwen2_vl\",\n  oops\n}\n";
  Error error = expect_error([&] { ModelConfig::from_file(path); });
  std::string message = error.what();
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, message, path.string() + ": invalid JSON at line 3, column");
  EXPECT_PRED_FORMAT2(contains, message, "fix the syntax");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ConfigFiles, EmptyFile) {
  TempDir dir;
  std::filesystem::path path = dir.path() / "config.json";
  std::ofstream{path};
  Error error = expect_error([&] { ModelConfig::from_file(path); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "invalid JSON at line 1, column");
}

TEST(ConfigFiles, TopLevelArray) {
  Error error = expect_error([] { ModelConfig::from_json_text("[1, 2]", "list.json"); });
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, error.what(), "list.json: the top level of the file is a JSON array, expected an object");
}

// nlohmann/json reports a number beyond the range of double with
// json::out_of_range, not json::parse_error.
TEST(ConfigFiles, NumberBeyondDoubleRange) {
  Error error = expect_error([] { ModelConfig::from_json_text("{\"rms_norm_eps\": 2.5e400}", "huge.json"); });
  std::string message = error.what();
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, message, "huge.json: invalid JSON: number overflow parsing '2.5e400'");
  EXPECT_PRED_FORMAT2(contains, message, "the largest double");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// The message quotes the wrong value. A value nested 200000 levels deep
// overflowed the stack when it was serialized whole for that quote.
TEST(ConfigFiles, DeeplyNestedValue) {
  constexpr std::size_t kDepth = 200000;
  std::string text = "{\"model_type\": \"qwen2_vl\", \"text_config\": " + std::string(kDepth, '[') +
                     std::string(kDepth, ']') + "}";
  Error error = expect_error([&] { ModelConfig::from_json_text(text, "deep.json"); });
  std::string message = error.what();
  EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  EXPECT_PRED_FORMAT2(contains, message, "deep.json: text_config is [[[[");
  EXPECT_PRED_FORMAT2(contains, message, "expected a JSON object");
  EXPECT_LT(message.size(), 300u) << message;
}

TEST(ConfigFiles, ReadsFileWrittenByTest) {
  TempDir dir;
  std::filesystem::path path = dir.path() / "config.json";
  std::ofstream(path) << read_json("tiny_transformers5.json").dump(2);
  ModelConfig config = ModelConfig::from_file(path);
  EXPECT_EQ(config.source, path.string());
  EXPECT_EQ(config.text.hidden_size, 64);
}

}  // namespace
}  // namespace qwen2vl
