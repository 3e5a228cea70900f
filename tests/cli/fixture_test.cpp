// `qwen2vl-export inspect` on the tiny traced fixture
// ($QWEN2VL_FIXTURE_DIR/tiny/qwen2vl.pt, built by ctest's tiny_traced fixture).
#include <algorithm>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_support.h"

namespace qwen2vl::cli_test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kContractMethods = {
    "feature_extraction", "feature_extraction_with_past", "text_generation", "text_generation_with_past",
    "vision_encoder",     "embed_tokens",                 "decoder",
};

fs::path tiny_archive() { return fs::path(fixture_dir()) / "tiny" / "qwen2vl.pt"; }

TEST(CliTinyFixture, InspectText) {
  const fs::path archive = tiny_archive();
  ASSERT_TRUE(fs::exists(archive)) << archive << " is missing: the tiny_traced fixture did not run";

  const CliResult result = run_cli({"inspect", archive.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const auto& method : kContractMethods) {
    EXPECT_NE(result.out.find("\n  " + method + "("), std::string::npos) << "missing " << method << " in\n"
                                                                            << result.out;
  }
  EXPECT_NE(result.out.find("qwen2_vl; text: 2 layers"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("vision dynamic"), std::string::npos) << result.out;
}

TEST(CliTinyFixture, InspectJson) {
  const fs::path archive = tiny_archive();
  ASSERT_TRUE(fs::exists(archive)) << archive << " is missing: the tiny_traced fixture did not run";

  const CliResult result = run_cli({"inspect", "--json", archive.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json summary = nlohmann::json::parse(result.out);

  std::vector<std::string> names;
  for (const auto& method : summary["methods"]) {
    names.push_back(method["name"]);
    EXPECT_GT(method["node_count"].get<int64_t>(), 0) << method["name"];
  }
  EXPECT_EQ(names, kContractMethods);
  EXPECT_EQ(summary["metadata"]["methods"].get<std::vector<std::string>>(), kContractMethods);

  EXPECT_GT(summary["parameters"]["count"].get<int64_t>(), 0);
  EXPECT_GT(summary["parameters"]["bytes"].get<int64_t>(), 0);
  EXPECT_EQ(summary["config"]["model_type"], "qwen2_vl");

  // text_generation_with_past returns logits and a key and a value per layer.
  const int64_t layers = summary["config"]["text"]["num_hidden_layers"];
  const auto& with_past = summary["methods"][3];
  ASSERT_EQ(with_past["name"], "text_generation_with_past");
  EXPECT_EQ(with_past["returns"].size(), static_cast<size_t>(1 + 2 * layers));
  EXPECT_EQ(with_past["arguments"].size(), static_cast<size_t>(5 + 2 * layers));
}

}  // namespace
}  // namespace qwen2vl::cli_test
