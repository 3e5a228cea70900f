#include "qwen2vl/batch/resume.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "qwen2vl/util/sha256.h"

#ifndef QWEN2VL_VERSION
#error "QWEN2VL_VERSION must be defined by the build (src/batch/CMakeLists.txt)"
#endif

namespace qwen2vl::batch {
namespace fs = std::filesystem;
namespace {

ResumeCheck stale(const std::string& reason) { return {false, reason}; }

// Compare one input file with its entry in the report: size first, then the hash.
std::string input_difference(const nlohmann::json& recorded, const fs::path& path, const std::string& role) {
  std::error_code error;
  const uintmax_t bytes = fs::file_size(path, error);
  if (error) return role + " " + path.string() + " cannot be read (" + error.message() + ")";
  if (!recorded.is_object() || !recorded.contains("sha256") || !recorded.contains("bytes")) {
    return "the report has no checksum of the " + role;
  }
  if (recorded["bytes"] != bytes) return "the " + role + " changed size since the export";
  try {
    if (recorded["sha256"] != sha256_file(path)) return "the " + role + " changed since the export (SHA-256 differs)";
  } catch (const std::exception& failure) {
    return role + " " + path.string() + " cannot be read (" + failure.what() + ")";
  }
  return "";
}

}  // namespace

ResumeCheck check_finished_output(const ManifestRow& row, const RunSettings& settings) {
  const fs::path report_path = row.output / "export_report.json";
  std::error_code error;
  if (!fs::exists(report_path, error)) return stale("no finished export in the output folder");

  nlohmann::json report;
  try {
    std::ifstream in(report_path);
    report = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return stale(report_path.string() + " cannot be parsed");
  }
  if (!report.is_object()) return stale(report_path.string() + " is not a report");

  auto text = [&](const char* key) { return report.value(key, nlohmann::json()).dump(); };
  if (report.value("status", "") != "ok") return stale("the earlier export did not finish (status " + text("status") + ")");
  const std::string version = report.value("tool", nlohmann::json::object()).value("version", "");
  if (version != QWEN2VL_VERSION) {
    return stale("exported by qwen2vl-export " + version + ", this is " + QWEN2VL_VERSION);
  }
  if (report.value("task", "") != row.task) return stale("exported for task " + text("task") + ", the row asks " + row.task);
  if (report.value("opset", 0) != 18) return stale("exported with opset " + text("opset"));
  if (report.value("validated", false) != settings.validate) {
    return settings.validate ? stale("the earlier export was not validated") : stale("the earlier export was validated");
  }
  if (settings.validate && report.value("atol", 0.0) != settings.atol) {
    return stale("validated with --atol " + text("atol") + ", this batch asks " + std::to_string(settings.atol));
  }

  const nlohmann::json inputs = report.value("inputs", nlohmann::json::object());
  const fs::path config = row.config.empty() ? row.model.parent_path() / "config.json" : row.config;
  std::string difference = input_difference(inputs.value("model", nlohmann::json()), row.model, "model");
  if (difference.empty()) difference = input_difference(inputs.value("config", nlohmann::json()), config, "config");
  if (!difference.empty()) return stale(difference);
  return {true, "the output holds a finished export of the same model and config"};
}

}  // namespace qwen2vl::batch
