// The qwen2vl-export executable as a user runs it: help, version, usage
// errors, and inspect on broken and small valid archives.
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_support.h"

namespace qwen2vl::cli_test {
namespace {

namespace fs = std::filesystem;

// Writes, into argv[1]: small.pt, a traced module of two Linear layers that
// share one weight (so 16 + 4 + 4 = 24 parameters in unique storages) with
// two methods; plain.zip, a ZIP file with one text file; saved.pt, a
// torch.save file.
constexpr const char* kMakeArchives = R"PY(
import json, sys, zipfile
from pathlib import Path
import torch

out = Path(sys.argv[1])

class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(4, 4)
        self.second = torch.nn.Linear(4, 4)
        self.second.weight = self.first.weight

    def forward(self, x):
        return self.second(self.first(x))

    def embed_tokens(self, input_ids):
        return input_ids * 2

torch.manual_seed(0)
traced = torch.jit.trace_module(Tied().eval(), {
    "forward": torch.randn(2, 4),
    "embed_tokens": torch.ones(2, 3, dtype=torch.long),
})
metadata = {"contract_version": 1, "methods": ["embed_tokens"], "vision": "dynamic"}
torch.jit.save(traced, str(out / "small.pt"), _extra_files={"qwen2vl_export.json": json.dumps(metadata)})

with zipfile.ZipFile(out / "plain.zip", "w") as archive:
    archive.writestr("notes.txt", "not a model")
torch.save({"weight": torch.ones(3)}, out / "saved.pt")
)PY";

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    archives_ = new TempDir();
    const ProcessResult result = run_process({python_exe(), "-c", kMakeArchives, archives_->path().string()});
    ASSERT_TRUE(result.succeeded()) << "creating test archives failed:\n" << result.stderr_text;

    const std::string small = read_file(archives_->path() / "small.pt");
    write_file(archives_->path() / "truncated.pt", small.substr(0, small.size() / 2));
    write_file(archives_->path() / "empty.pt", "");

    std::mt19937 generator(42);
    std::string noise(4096, '\0');
    for (char& c : noise) {
      c = static_cast<char>(generator() & 0xff);
    }
    noise[0] = 'x';  // never a ZIP signature by chance
    write_file(archives_->path() / "random.pt", noise);
  }

  static void TearDownTestSuite() {
    delete archives_;
    archives_ = nullptr;
  }

  static fs::path archive(const std::string& name) { return archives_->path() / name; }

  static TempDir* archives_;
};

TempDir* CliTest::archives_ = nullptr;

// The command as a shell would show it, for SCOPED_TRACE.
std::string command_line(const std::vector<std::string>& args) {
  std::string text = "qwen2vl-export";
  for (const auto& arg : args) {
    text += " " + arg;
  }
  return text;
}

// One line on stderr, starting with "error: ", and nothing on stdout.
void expect_one_error_line(const CliResult& result) {
  EXPECT_EQ(count_lines(result.err), 1u) << result.err;
  EXPECT_EQ(result.err.rfind("error: ", 0), 0u) << result.err;
  EXPECT_EQ(result.out, "");
  for (const char* trace_marker : {"frame #", "Exception raised from", "terminate called", "Traceback"}) {
    EXPECT_EQ(result.err.find(trace_marker), std::string::npos) << result.err;
  }
}

TEST_F(CliTest, HelpListsSubcommandsAndExitCodes) {
  const CliResult result = run_cli({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.err, "");
  for (const char* text : {"inspect", "export", "--log-level", "--quiet", "--version", "Exit codes:"}) {
    EXPECT_NE(result.out.find(text), std::string::npos) << "missing " << text << " in\n" << result.out;
  }
  for (int code : {0, 1, 2, 3, 4, 5, 6, 7, 130}) {
    const std::string row = "\n  " + std::to_string(code) + " ";
    EXPECT_NE(result.out.find(row), std::string::npos) << "exit code " << code << " missing in\n" << result.out;
  }
}

TEST_F(CliTest, ExportHelpListsFlags) {
  const CliResult result = run_cli({"export", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag : {"--model", "--config", "--task", "--opset", "--atol", "--batch-size", "--sequence-length",
                           "--past-sequence-length", "--num-images", "--image-grid", "--no-validate",
                           "--allow-static-vision", "--force", "--report", "--python", "OUTPUT_DIR",
                           "text-generation-with-past"}) {
    EXPECT_NE(result.out.find(flag), std::string::npos) << "missing " << flag << " in\n" << result.out;
  }
}

TEST_F(CliTest, InspectHelpListsFlags) {
  const CliResult result = run_cli({"inspect", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag : {"MODEL", "--config", "--json"}) {
    EXPECT_NE(result.out.find(flag), std::string::npos) << "missing " << flag << " in\n" << result.out;
  }
}

TEST_F(CliTest, VersionNamesProjectAndLibTorch) {
  const CliResult result = run_cli({"--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.rfind("qwen2vl-export " QWEN2VL_VERSION " (LibTorch ", 0), 0u) << result.out;
  EXPECT_EQ(count_lines(result.out), 1u) << result.out;
}

TEST_F(CliTest, OutOfRangeValuesNameTheRange) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"export", "--model", "m.pt", "--batch-size", "-3", "out"}, "expected a whole number at least 1, got '-3'"},
      {{"export", "--model", "m.pt", "--sequence-length", "1.5", "out"}, "at least 1, got '1.5'"},
      {{"export", "--model", "m.pt", "--num-images", "-1", "out"}, "at least 0, got '-1'"},
      {{"export", "--model", "m.pt", "--atol", "-1", "out"}, "expected a finite number greater than 0, got '-1'"},
      {{"export", "--model", "m.pt", "--atol", "nan", "out"}, "greater than 0, got 'nan'"},
      {{"batch", "--jobs", "0", "rows.csv"}, "expected a whole number from 1 to 64, got '0'"},
  };
  for (const auto& [args, fragment] : cases) {
    SCOPED_TRACE(command_line(args));
    const CliResult result = run_cli(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    expect_one_error_line(result);
    EXPECT_NE(result.err.find(fragment), std::string::npos) << result.err;
    EXPECT_LT(result.err.size(), 200u) << result.err;
  }
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"--no-such-flag", "inspect", "m.pt"},
      {"--log-level", "loud", "inspect", "m.pt"},
      {"inspect"},
      {"export", "out"},
      {"export", "--model", "m.pt"},
      {"export", "--model", "m.pt", "--task", "translation", "out"},
      {"export", "--model", "m.pt", "--opset", "eighteen", "out"},
      {"export", "--model", "m.pt", "--atol", "-1", "out"},
      {"export", "--model", "m.pt", "--atol", "0", "out"},
      {"export", "--model", "m.pt", "--batch-size", "0", "out"},
      {"export", "--model", "m.pt", "--image-grid", "1,4", "out"},
      {"export", "--model", "m.pt", "--image-grid", "0,4,4", "out"},
      {"export", "--model", "m.pt", "--image-grid", "1,4,4,4", "out"},
      {"export", "--model", "m.pt", "--image-grid", "a,b,c", "out"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(command_line(args));
    const CliResult result = run_cli(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("--help"), std::string::npos) << result.err;
  }
}

TEST_F(CliTest, OtherOpsetIsUnsupported) {
  TempDir dir;
  const CliResult result = run_cli({"export", "--model", archive("small.pt").string(), "--opset", "17",
                                    (dir.path() / "out").string()});
  EXPECT_EQ(result.exit_code, 4) << result.err;
  expect_one_error_line(result);
  EXPECT_NE(result.err.find("opset 18"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

TEST_F(CliTest, NonEmptyOutputNeedsForce) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  write_file(out / "old.txt", "old");

  const CliResult result = run_cli({"export", "--model", archive("small.pt").string(), out.string()});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  expect_one_error_line(result);
  EXPECT_NE(result.err.find(out.string()), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("--force"), std::string::npos) << result.err;
  EXPECT_EQ(list_names(out), std::vector<std::string>{"old.txt"});
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

TEST_F(CliTest, InspectBadInputsExitThree) {
  TempDir dir;
  fs::create_directory(dir.path() / "folder.pt");
  const std::vector<std::pair<fs::path, std::string>> cases = {
      {dir.path() / "missing.pt", "not found"},
      {dir.path() / "folder.pt", "is a folder"},
      {archive("empty.pt"), "is empty"},
      {archive("random.pt"), "not a ZIP file"},
      {archive("plain.zip"), "not a TorchScript archive"},
      {archive("truncated.pt"), "truncated"},
      {archive("saved.pt"), "not TorchScript"},
  };
  for (const auto& [path, reason] : cases) {
    SCOPED_TRACE(path.string());
    const CliResult result = run_cli({"inspect", path.string()});
    EXPECT_EQ(result.exit_code, 3) << result.err;
    expect_one_error_line(result);
    EXPECT_NE(result.err.find(path.string()), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(reason), std::string::npos) << result.err;
  }
}

TEST_F(CliTest, GlobalFlagsAfterSubcommand) {
  const CliResult result = run_cli({"inspect", archive("empty.pt").string(), "--quiet", "--log-level", "error"});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  expect_one_error_line(result);
}

TEST_F(CliTest, InspectSmallArchiveText) {
  const CliResult result = run_cli({"inspect", archive("small.pt").string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("embed_tokens(input_ids: Tensor) -> Tensor"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("forward(x: Tensor) -> Tensor"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("aten::linear 2"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("24 (96 B) in 4 tensors, 1 sharing storage"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("config      none found"), std::string::npos) << result.out;
}

TEST_F(CliTest, InspectSmallArchiveJson) {
  const CliResult result = run_cli({"--quiet", "inspect", "--json", archive("small.pt").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  const nlohmann::json summary = nlohmann::json::parse(result.out);

  // Contract methods first (embed_tokens), then the others by name.
  ASSERT_EQ(summary["methods"].size(), 2u);
  EXPECT_EQ(summary["methods"][0]["name"], "embed_tokens");
  EXPECT_EQ(summary["methods"][1]["name"], "forward");
  EXPECT_EQ(summary["methods"][0]["arguments"][0]["name"], "input_ids");
  EXPECT_EQ(summary["methods"][0]["arguments"][0]["type"], "Tensor");
  EXPECT_EQ(summary["methods"][1]["node_kinds"]["aten::linear"], 2);

  EXPECT_EQ(summary["parameters"]["count"], 24);
  EXPECT_EQ(summary["parameters"]["bytes"], 96);
  EXPECT_EQ(summary["parameters"]["tensors"], 4);
  EXPECT_EQ(summary["parameters"]["shared_tensors"], 1);
  EXPECT_EQ(summary["parameters"]["dtypes"]["float32"], 24);
  EXPECT_EQ(summary["metadata"]["vision"], "dynamic");
  EXPECT_TRUE(summary["config"].is_null());
}

TEST_F(CliTest, InspectMissingExplicitConfigExitsThree) {
  TempDir dir;
  const fs::path config = dir.path() / "config.json";
  const CliResult result = run_cli({"inspect", archive("small.pt").string(), "--config", config.string()});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  expect_one_error_line(result);
  EXPECT_NE(result.err.find(config.string()), std::string::npos) << result.err;
}

TEST_F(CliTest, InspectBrokenConfigBesideWarns) {
  TempDir dir;
  fs::copy_file(archive("small.pt"), dir.path() / "model.pt");
  write_file(dir.path() / "config.json", "{\"model_type\": ");

  const CliResult result = run_cli({"inspect", "--json", (dir.path() / "model.pt").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("warning: "), std::string::npos) << result.err;
  const nlohmann::json summary = nlohmann::json::parse(result.out);
  EXPECT_TRUE(summary["config"].is_null());
  EXPECT_EQ(summary["config_path"], (dir.path() / "config.json").string());
  EXPECT_TRUE(summary["config_error"].is_string());
}

}  // namespace
}  // namespace qwen2vl::cli_test
