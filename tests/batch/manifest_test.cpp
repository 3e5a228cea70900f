// Manifests in JSON and CSV: what is accepted, how paths resolve, and the
// message for each kind of broken manifest.
#include <fstream>

#include <gtest/gtest.h>

#include "qwen2vl/batch/manifest.h"
#include "qwen2vl/error.h"

namespace qwen2vl::batch {
namespace {

namespace fs = std::filesystem;

const ManifestRules kRules = {{"text-generation-with-past", "text-generation", "image-text-to-text"},
                              "text-generation-with-past"};

Manifest parse(const std::string& text, const std::string& name = "/data/rows.csv") {
  return parse_manifest(text, name, kRules);
}

// The message of the qwen2vl::Error that parsing `text` throws, checking the exit code.
std::string rejection(const std::string& text, const std::string& name = "/data/rows.csv") {
  try {
    parse(text, name);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput) << error.what();
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(Manifest, ReadsCsvWithHeaderInAnyOrder) {
  const Manifest manifest = parse(
      "output,task,model,config\n"
      "out/a,text-generation,a/qwen2vl.pt,\n"
      "/abs/out/b,image-text-to-text,/abs/b.pt,b/config.json\n");
  ASSERT_EQ(manifest.rows.size(), 2u);
  EXPECT_EQ(manifest.rows[0].number, 1);
  EXPECT_EQ(manifest.rows[0].model, fs::path("/data/a/qwen2vl.pt"));
  EXPECT_EQ(manifest.rows[0].output, fs::path("/data/out/a"));
  EXPECT_TRUE(manifest.rows[0].config.empty());
  EXPECT_EQ(manifest.rows[0].task, "text-generation");
  EXPECT_EQ(manifest.rows[1].number, 2);
  EXPECT_EQ(manifest.rows[1].model, fs::path("/abs/b.pt"));
  EXPECT_EQ(manifest.rows[1].config, fs::path("/data/b/config.json"));
  EXPECT_EQ(manifest.rows[1].output, fs::path("/abs/out/b"));
  EXPECT_EQ(manifest.rows[1].origin, "rows.csv line 3");
}

TEST(Manifest, CsvQuotingCommentsBlankLinesAndCrlf) {
  const Manifest manifest = parse(
      "\xEF\xBB\xBFModel , Output\r\n"
      "# a comment line\r\n"
      "\r\n"
      "\"dir, with comma/m.pt\" , \"out/say \"\"hi\"\"\"\r\n"
      "  plain.pt  ,  out/plain  ");
  ASSERT_EQ(manifest.rows.size(), 2u);
  EXPECT_EQ(manifest.rows[0].model, fs::path("/data/dir, with comma/m.pt"));
  EXPECT_EQ(manifest.rows[0].output, fs::path("/data/out/say \"hi\""));
  EXPECT_EQ(manifest.rows[0].task, "text-generation-with-past");  // the default task
  EXPECT_EQ(manifest.rows[0].origin, "rows.csv line 4");
  EXPECT_EQ(manifest.rows[1].model, fs::path("/data/plain.pt"));
  EXPECT_EQ(manifest.rows[1].output, fs::path("/data/out/plain"));
}

TEST(Manifest, ReadsJsonArrayAndRowsObject) {
  const std::string rows =
      R"([{"model": "a.pt", "output": "out/a"},
          {"model": "b.pt", "output": "out/b", "task": "text-generation", "config": null}])";
  for (const std::string& text : {rows, R"({"rows": )" + rows + "}"}) {
    const Manifest manifest = parse(text, "/data/rows.json");
    ASSERT_EQ(manifest.rows.size(), 2u) << text;
    EXPECT_EQ(manifest.rows[0].model, fs::path("/data/a.pt"));
    EXPECT_EQ(manifest.rows[1].task, "text-generation");
    EXPECT_TRUE(manifest.rows[1].config.empty());
    EXPECT_EQ(manifest.rows[1].origin, "rows.json row 2");
  }
}

TEST(Manifest, SniffsTheFormatOfOtherExtensions) {
  EXPECT_EQ(parse(R"(  [{"model": "a.pt", "output": "o"}])", "/data/rows.txt").rows.size(), 1u);
  EXPECT_EQ(parse("model,output\na.pt,o\n", "/data/rows.txt").rows.size(), 1u);
}

TEST(Manifest, RejectsBrokenManifestsNamingTheRow) {
  struct Case {
    std::string name;
    std::string text;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"/data/rows.csv", "", "has no rows"},
      {"/data/rows.csv", "model,output\n", "has no rows"},
      {"/data/rows.json", "[]", "has no rows"},
      {"/data/rows.csv", "model,outptu\na,b\n", "line 1: unknown column \"outptu\""},
      {"/data/rows.csv", "model,output,model\na,b,c\n", "column \"model\" appears twice"},
      {"/data/rows.csv", "model,output\na.pt\n", "line 2 has 1 field(s), the header has 2"},
      {"/data/rows.csv", "model,output\na.pt,\n", "line 2: output is missing or empty"},
      {"/data/rows.csv", "model,output,task\na.pt,o,translation\n", "line 2: unknown task \"translation\""},
      {"/data/rows.csv", "model,output\n\"a.pt,o\n", "line 2: a quoted field is never closed"},
      {"/data/rows.csv", "model,output\n\"a\"x,o\n", "line 2: unexpected text after a closing quote"},
      {"/data/rows.csv", "model,output\na.pt,out/a\nb.pt,out/./a/\n",
       "rows.csv line 3 writes to /data/out/a, which rows.csv line 2 writes too"},
      {"/data/rows.json", "{\"model\": 1", "is not valid JSON"},
      {"/data/rows.json", "{\"items\": []}", "needs a \"rows\" array"},
      {"/data/rows.json", "{\"rows\": 3}", "\"rows\" is a number, expected an array"},
      {"/data/rows.json", "[\"a.pt\"]", "row 1 is a string, expected an object"},
      {"/data/rows.json", "[{\"model\": \"a.pt\", \"ouput\": \"o\"}]", "row 1: unknown key \"ouput\""},
      {"/data/rows.json", "[{\"model\": 7, \"output\": \"o\"}]", "row 1: \"model\" is a number, expected a string"},
      {"/data/rows.json", "[{\"model\": 1e400, \"output\": \"o\"}]", "is not valid JSON"},
      {"/data/rows.json", std::string(100000, '[') + std::string(100000, ']'), "row 1 is an array, expected an object"},
      {"/data/rows.json", "[{\"output\": \"o\"}]", "row 1: model is missing or empty"},
      {"/data/rows.json", "[{\"model\": \"a.pt\", \"output\": \"\"}]", "row 1: output is missing or empty"},
      {"/data/rows.json", "[{\"model\": \"a.pt\", \"output\": \"o\\u0000x\"}]", "contains a NUL character"},
      {"/data/rows.json", "{\"rows\": [], \"extra\": 1}", "unknown top-level key \"extra\""},
      {"/data/rows.json", "[{\"model\": \"a.pt\", \"output\": \"o\", \"model\": \"b.pt\"}]",
       "rows.json: key \"model\" appears twice in one object; keep one of them"},
      {"/data/rows.csv", std::string("\xFF\xFEm\0o\0", 6), "is UTF-16 text; save the manifest as UTF-8"},
  };
  for (const auto& test : cases) {
    const std::string message = rejection(test.text, test.name);
    EXPECT_NE(message.find(test.fragment), std::string::npos) << "manifest: " << test.text << "\nmessage: " << message;
  }
}

TEST(Manifest, ReadManifestChecksTheFile) {
  const fs::path folder = fs::temp_directory_path() / ("qwen2vl-manifest-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  const fs::path file = folder / "rows.csv";
  std::ofstream(file) << "model,output\nm.pt,out\n";
  const Manifest manifest = read_manifest(file, kRules);
  ASSERT_EQ(manifest.rows.size(), 1u);
  EXPECT_EQ(manifest.rows[0].model, folder / "m.pt");

  for (const auto& [path, fragment] : std::vector<std::pair<fs::path, std::string>>{
           {folder / "absent.csv", "manifest not found"}, {folder, "is not a regular file"}}) {
    try {
      read_manifest(path, kRules);
      ADD_FAILURE() << "accepted " << path;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  }
  fs::remove_all(folder);
}

}  // namespace
}  // namespace qwen2vl::batch
