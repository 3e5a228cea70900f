#include "qwen2vl/batch/batch_report.h"

#include <algorithm>
#include <chrono>

#include <spdlog/fmt/fmt.h>

#include "qwen2vl/util/format.h"

namespace qwen2vl::batch {
namespace {

const char* const kStatuses[] = {"ok", "skipped", "failed", "interrupted", "not run"};

// The few numbers of a row's export report worth repeating in the batch report.
nlohmann::json export_summary(const nlohmann::json& report) {
  if (!report.is_object()) return nullptr;
  double worst = -1;
  size_t graphs = 0;
  for (const auto& graph : report.value("graphs", nlohmann::json::array())) {
    ++graphs;
    for (const auto& set : graph.value("validation", nlohmann::json::array())) {
      for (const auto& output : set.value("outputs", nlohmann::json::array())) {
        worst = std::max(worst, output.value("max_abs_diff", -1.0));
      }
    }
  }
  nlohmann::json summary = {{"status", report.value("status", "")},
                            {"graphs", graphs},
                            {"total_seconds", report.value("total_seconds", 0.0)},
                            {"peak_rss_bytes", report.value("peak_rss_bytes", 0)}};
  if (worst >= 0) summary["max_abs_diff"] = worst;
  return summary;
}

std::string shorten(const std::string& text, size_t limit) {
  return text.size() <= limit ? text : text.substr(0, limit - 3) + "...";
}

}  // namespace

nlohmann::json batch_report_json(const Manifest& manifest, const Shard& shard, const RunSettings& settings,
                                 const BatchResult& result) {
  nlohmann::json counts = nlohmann::json::object();
  for (const char* status : kStatuses) counts[status] = result.count(status);

  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : result.rows) {
    nlohmann::json entry = {{"row", row.row.number},
                            {"model", row.row.model.string()},
                            {"config", (row.row.config.empty() ? row.row.model.parent_path() / "config.json"
                                                               : row.row.config).string()},
                            {"task", row.row.task},
                            {"output", row.row.output.string()},
                            {"status", row.status},
                            {"seconds", row.seconds}};
    entry["exit_code"] = row.exit_code >= 0 ? nlohmann::json(row.exit_code) : nlohmann::json();
    if (row.signal != 0) entry["signal"] = row.signal;
    if (!row.detail.empty()) entry["detail"] = row.detail;
    if (!row.resume_check.empty()) entry["resume_check"] = row.resume_check;
    if (row.status != "skipped" && row.status != "not run") entry["log"] = row.log.string();
    entry["export"] = export_summary(row.report);
    rows.push_back(std::move(entry));
  }

  return {
      {"tool", {{"name", "qwen2vl-export"}, {"version", QWEN2VL_VERSION}}},
      {"manifest", {{"path", manifest.path.string()}, {"rows", manifest.rows.size()}}},
      {"shard", shard.to_string()},
      {"settings", {{"jobs", settings.jobs},
                    {"resume", settings.resume},
                    {"force", settings.force},
                    {"validate", settings.validate},
                    {"atol", settings.atol},
                    {"log_dir", settings.log_dir.string()}}},
      {"status", result.interrupt_signal != 0 ? "interrupted" : result.count("failed") > 0 ? "failed" : "ok"},
      {"counts", counts},
      {"total_seconds", result.seconds},
      {"rows", rows},
  };
}

std::string format_summary_table(const BatchResult& result) {
  std::string table = fmt::format("{:>5}  {:<11}  {:>4}  {:>7}  {:<28}  {}\n", "row", "status", "exit", "time",
                                  "task", "output / detail");
  for (const auto& row : result.rows) {
    const std::string exit = row.exit_code >= 0 ? std::to_string(row.exit_code) : "-";
    const std::string time = row.status == "ok" || row.status == "failed" || row.status == "interrupted"
                                 ? format_duration(std::chrono::seconds(static_cast<int64_t>(row.seconds)))
                                 : "-";
    std::string where = row.row.output.string();
    if (row.status == "failed") where += ": " + shorten(row.detail, 160);
    table += fmt::format("{:>5}  {:<11}  {:>4}  {:>7}  {:<28}  {}\n", row.row.number, row.status, exit, time,
                         row.row.task, where);
  }
  std::string counts;
  for (const char* status : kStatuses) {
    const int64_t count = result.count(status);
    if (count > 0) counts += (counts.empty() ? "" : ", ") + std::to_string(count) + " " + status;
  }
  if (counts.empty()) counts = "nothing to do";
  table += fmt::format("{} row(s): {} in {}", result.rows.size(), counts,
                       format_duration(std::chrono::seconds(static_cast<int64_t>(result.seconds))));
  return table;
}

}  // namespace qwen2vl::batch
