// The outcome of a batch: its JSON report (--report) and the summary table printed at the end.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "qwen2vl/batch/manifest.h"
#include "qwen2vl/batch/runner.h"
#include "qwen2vl/batch/shard.h"

namespace qwen2vl::batch {

// The batch report: tool version, manifest, shard, settings, a count per
// status, and one entry per row with its status, exit code, time, error line,
// log file and a summary of the row's export report.
nlohmann::json batch_report_json(const Manifest& manifest, const Shard& shard, const RunSettings& settings,
                                 const BatchResult& result);

// One line per row (row, status, exit, time, task, output, detail), a header,
// and a closing line with the counts.
std::string format_summary_table(const BatchResult& result);

}  // namespace qwen2vl::batch
