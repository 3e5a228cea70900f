#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "qwen2vl/config/model_config.h"
#include "qwen2vl/inputs/dummy_inputs.h"
#include "qwen2vl/torchscript/load.h"
#include "qwen2vl/util/subprocess.h"
#include "qwen2vl/validate/npy.h"

namespace qwen2vl {
namespace {

namespace fs = std::filesystem;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Run tools/hf_reference.py for `method` on the .npy inputs in `folder`/inputs.
torch::Tensor transformers_output(const fs::path& checkpoint, const std::string& method, const fs::path& folder,
                                  const std::string& output) {
  fs::path tools = environment("QWEN2VL_TOOLS_DIR");
  auto result = run_process({environment("QWEN2VL_PYTHON"), (tools / "hf_reference.py").string(), "--checkpoint",
                             checkpoint.string(), "--method", method, "--inputs", (folder / "inputs").string(),
                             "--outputs", (folder / "outputs").string()});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  return validate::read_npy(folder / "outputs" / (output + ".npy"));
}

class TracedFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (environment("QWEN2VL_FIXTURE_DIR").empty()) GTEST_SKIP() << "QWEN2VL_FIXTURE_DIR is not set; run through ctest";
    checkpoint_ = fs::path(environment("QWEN2VL_FIXTURE_DIR")) / "tiny";
    folder_ = fs::temp_directory_path() / ("qwen2vl-traced-fixture-" + std::to_string(::getpid()));
    fs::create_directories(folder_ / "inputs");
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(folder_, ignored);
  }

  fs::path checkpoint_;
  fs::path folder_;
};

// The default dummy inputs (two rows, one 4x4-patch image each) and a second
// set with three images of other sizes, a past and left padding.
TEST_F(TracedFixture, LogitsMatchTransformers) {
  LoadedModule loaded = load_torchscript(checkpoint_ / "qwen2vl.pt");
  ModelConfig config = ModelConfig::from_file(checkpoint_ / "config.json");

  DummyInputSpec defaults;
  DummyInputSpec varied;
  varied.batch_size = 3;
  varied.sequence_length = 37;
  varied.grids = {{1, 8, 12}, {1, 4, 4}, {1, 2, 6}};
  varied.left_padding = 2;
  varied.seed = 5;

  for (const auto& spec : {defaults, varied}) {
    DummyInputs inputs = make_dummy_inputs(config, spec);
    std::vector<std::pair<std::string, torch::Tensor>> named = {
        {"input_ids", inputs.input_ids},       {"attention_mask", inputs.attention_mask},
        {"position_ids", inputs.position_ids}, {"pixel_values", inputs.pixel_values},
        {"image_grid_thw", inputs.image_grid_thw},
    };
    std::vector<c10::IValue> arguments;
    for (const auto& [name, tensor] : named) {
      validate::write_npy(folder_ / "inputs" / (name + ".npy"), tensor);
      arguments.emplace_back(tensor);
    }

    torch::Tensor logits = loaded.module.get_method("text_generation")(arguments).toTensor();
    torch::Tensor expected = transformers_output(checkpoint_, "text_generation", folder_, "logits");

    ASSERT_EQ(logits.sizes(), expected.sizes());
    double max_diff = (logits - expected).abs().max().item<double>();
    EXPECT_LT(max_diff, 1e-4) << "batch " << spec.batch_size << ", sequence " << spec.sequence_length;
  }
}

}  // namespace
}  // namespace qwen2vl
