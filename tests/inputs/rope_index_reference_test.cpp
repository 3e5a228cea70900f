// get_rope_index against transformers' own Qwen2VLModel.get_rope_index.
//
// The test writes its cases as JSON into a temporary directory, runs
// rope_index_reference.py once with $QWEN2VL_PYTHON (ctest sets it) and
// compares each case exactly. One test covers all cases because starting
// Python and importing transformers takes about 10 s.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/inputs/dummy_inputs.h"

namespace qwen2vl {
namespace {

using nlohmann::json;

json tensor_to_json(const torch::Tensor& tensor) {
  torch::Tensor values = tensor.to(torch::kLong).contiguous();
  if (values.dim() == 1) {
    return json(std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel()));
  }
  json rows = json::array();
  for (int64_t i = 0; i < values.size(0); ++i) {
    rows.push_back(tensor_to_json(values[i]));
  }
  return rows;
}

json optional_to_json(const std::optional<torch::Tensor>& tensor) {
  return tensor ? tensor_to_json(*tensor) : json(nullptr);
}

torch::Tensor json_to_tensor(const json& value) {
  std::vector<int64_t> shape;
  const json* level = &value;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) {
      break;
    }
    level = &level->front();
  }
  std::vector<int64_t> flat;
  std::vector<const json*> stack = {&value};
  // Depth-first, left to right, so `flat` is in row-major order.
  while (!stack.empty()) {
    const json* node = stack.back();
    stack.pop_back();
    if (node->is_array()) {
      for (auto it = node->rbegin(); it != node->rend(); ++it) {
        stack.push_back(&*it);
      }
    } else {
      flat.push_back(node->get<int64_t>());
    }
  }
  return torch::tensor(flat, torch::kLong).view(shape);
}

// One input of get_rope_index.
struct RopeCase {
  std::string name;
  torch::Tensor input_ids;
  std::optional<torch::Tensor> image_grid_thw;
  std::optional<torch::Tensor> video_grid_thw;
  std::optional<torch::Tensor> attention_mask;
};

// Builds one row of input_ids from text, padding, images and videos.
class RowBuilder {
 public:
  explicit RowBuilder(const ModelConfig& config) : config_(config) {}

  RowBuilder& text(int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      ids_.push_back(10 + static_cast<int64_t>(ids_.size()));
    }
    return *this;
  }
  RowBuilder& padding(int64_t count) {
    ids_.insert(ids_.end(), count, config_.tokens.pad_token_id);
    return *this;
  }
  RowBuilder& image(int64_t t, int64_t h, int64_t w) { return vision(config_.tokens.image_token_id, t * h * w); }
  RowBuilder& video(int64_t t, int64_t h, int64_t w) { return vision(config_.tokens.video_token_id, t * h * w); }
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  RowBuilder& vision(int64_t placeholder, int64_t patches) {
    ids_.push_back(config_.tokens.vision_start_token_id);
    ids_.insert(ids_.end(), patches / config_.vision.patches_per_token(), placeholder);
    ids_.push_back(config_.tokens.vision_end_token_id);
    return *this;
  }

  const ModelConfig& config_;
  std::vector<int64_t> ids_;
};

torch::Tensor rows_to_tensor(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> flat;
  for (const std::vector<int64_t>& row : rows) {
    EXPECT_EQ(row.size(), rows.front().size()) << "case rows differ in length";
    flat.insert(flat.end(), row.begin(), row.end());
  }
  return torch::tensor(flat, torch::kLong).view({static_cast<int64_t>(rows.size()), -1});
}

torch::Tensor grids(const std::vector<std::vector<int64_t>>& rows) { return rows_to_tensor(rows); }

std::vector<RopeCase> rope_index_cases(const ModelConfig& config) {
  std::vector<RopeCase> cases;
  auto row = [&] { return RowBuilder(config); };

  cases.push_back({"TextOnly", rows_to_tensor({row().text(7).ids(), row().text(7).ids()}), std::nullopt,
                   std::nullopt, std::nullopt});

  cases.push_back({"OneImage", rows_to_tensor({row().text(2).image(1, 4, 4).text(3).ids()}), grids({{1, 4, 4}}),
                   std::nullopt, std::nullopt});

  cases.push_back({"ImageAtStart", rows_to_tensor({row().image(1, 4, 6).text(2).ids()}), grids({{1, 4, 6}}),
                   std::nullopt, std::nullopt});

  // Different sizes, h > w and w > h, two images in one row.
  cases.push_back({"ThreeImagesTwoRows",
                   rows_to_tensor({row().text(1).image(1, 8, 12).text(1).image(1, 4, 4).text(2).ids(),
                                   row().text(2).image(1, 6, 2).text(29).ids()}),
                   grids({{1, 8, 12}, {1, 4, 4}, {1, 6, 2}}), std::nullopt, std::nullopt});

  cases.push_back({"Video", rows_to_tensor({row().text(1).video(2, 4, 4).text(2).ids()}), std::nullopt,
                   grids({{2, 4, 4}}), std::nullopt});

  // More frames than merged rows or columns: transformers 4.x and 5.25
  // continue from different positions after this video.
  cases.push_back({"VideoMoreFramesThanRows", rows_to_tensor({row().text(1).video(4, 2, 4).text(2).ids()}),
                   std::nullopt, grids({{4, 2, 4}}), std::nullopt});

  cases.push_back({"ImageThenVideo", rows_to_tensor({row().text(1).image(1, 4, 8).text(1).video(2, 4, 4).text(1).ids()}),
                   grids({{1, 4, 8}}), grids({{2, 4, 4}}), std::nullopt});

  torch::Tensor mask = torch::ones({2, 12}, torch::kLong);
  mask.select(0, 0).slice(0, 0, 3).fill_(0);
  cases.push_back({"LeftPadding",
                   rows_to_tensor({row().padding(3).text(1).image(1, 4, 4).text(2).ids(),
                                   row().text(2).image(1, 4, 4).text(4).ids()}),
                   grids({{1, 4, 4}, {1, 4, 4}}), std::nullopt, mask});

  DummyInputSpec spec;
  spec.batch_size = 2;
  spec.sequence_length = 48;
  spec.grids = {{1, 4, 4}, {1, 8, 12}, {1, 2, 6}};
  spec.videos = {{2, 4, 4}};
  spec.left_padding = 2;
  spec.seed = 7;
  DummyInputs inputs = make_dummy_inputs(config, spec);
  cases.push_back({"FromDummyInputs", inputs.input_ids, inputs.image_grid_thw, inputs.video_grid_thw,
                   inputs.attention_mask});
  return cases;
}

struct ReferenceRun {
  bool ok = false;
  std::string error;  // why the reference run failed
  std::string transformers_version;
  std::map<std::string, json> results;  // by case name
};

ReferenceRun run_reference(const ModelConfig& config, const std::vector<RopeCase>& rope_cases) {
  ReferenceRun run;
  const char* python = std::getenv("QWEN2VL_PYTHON");
  if (python == nullptr || *python == '\0') {
    run.error = "QWEN2VL_PYTHON is not set; run this test through ctest, which sets it";
    return run;
  }

  json cases = json::array();
  for (const RopeCase& rope_case : rope_cases) {
    cases.push_back({{"name", rope_case.name},
                     {"input_ids", tensor_to_json(rope_case.input_ids)},
                     {"image_grid_thw", optional_to_json(rope_case.image_grid_thw)},
                     {"video_grid_thw", optional_to_json(rope_case.video_grid_thw)},
                     {"attention_mask", optional_to_json(rope_case.attention_mask)}});
  }
  json spec = {{"image_token_id", config.tokens.image_token_id},
               {"video_token_id", config.tokens.video_token_id},
               {"vision_start_token_id", config.tokens.vision_start_token_id},
               {"vision_end_token_id", config.tokens.vision_end_token_id},
               {"spatial_merge_size", config.vision.spatial_merge_size},
               {"cases", cases}};

  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("qwen2vl_rope_index_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::path cases_path = dir / "cases.json";
  std::filesystem::path output_path = dir / "reference.json";
  std::filesystem::path log_path = dir / "stderr.txt";
  std::ofstream(cases_path) << spec.dump();

  std::filesystem::path script = std::filesystem::path(QWEN2VL_INPUTS_TEST_DIR) / "rope_index_reference.py";
  std::string command = "'" + std::string(python) + "' '" + script.string() + "' '" + cases_path.string() + "' '" +
                        output_path.string() + "' 2> '" + log_path.string() + "'";
  int status = std::system(command.c_str());
  if (status != 0) {
    std::ifstream log(log_path);
    std::stringstream text;
    text << log.rdbuf();
    run.error = "rope_index_reference.py failed (status " + std::to_string(status) + "):\n" + text.str();
  } else {
    std::ifstream output(output_path);
    json reference = json::parse(output);
    run.transformers_version = reference.at("transformers_version").get<std::string>();
    for (const json& result : reference.at("cases")) {
      run.results[result.at("name").get<std::string>()] = result;
    }
    run.ok = true;
  }
  std::filesystem::remove_all(dir);
  return run;
}

TEST(RopeIndexReference, MatchesTransformersOnAllCases) {
  ModelConfig config =
      ModelConfig::from_file(std::filesystem::path(QWEN2VL_CONFIG_TEST_DATA) / "tiny_transformers5.json");
  std::vector<RopeCase> rope_cases = rope_index_cases(config);
  ReferenceRun run = run_reference(config, rope_cases);
  ASSERT_TRUE(run.ok) << run.error;
  SCOPED_TRACE("transformers " + run.transformers_version);

  for (const RopeCase& rope_case : rope_cases) {
    SCOPED_TRACE("case " + rope_case.name);
    auto result = run.results.find(rope_case.name);
    ASSERT_NE(result, run.results.end()) << "the reference output has no case " << rope_case.name;

    RopeIndex port = get_rope_index(config, rope_case.input_ids, rope_case.image_grid_thw, rope_case.video_grid_thw,
                                    rope_case.attention_mask);
    torch::Tensor expected_positions = json_to_tensor(result->second.at("position_ids"));
    torch::Tensor expected_deltas = json_to_tensor(result->second.at("rope_deltas"));

    ASSERT_EQ(port.position_ids.sizes(), expected_positions.sizes());
    EXPECT_TRUE(torch::equal(port.position_ids, expected_positions))
        << "input_ids:\n" << rope_case.input_ids << "\nport:\n" << port.position_ids << "\ntransformers:\n"
        << expected_positions;
    ASSERT_EQ(port.rope_deltas.sizes(), expected_deltas.sizes());
    EXPECT_TRUE(torch::equal(port.rope_deltas, expected_deltas))
        << "port: " << port.rope_deltas << "\ntransformers: " << expected_deltas;
  }
}

}  // namespace
}  // namespace qwen2vl
