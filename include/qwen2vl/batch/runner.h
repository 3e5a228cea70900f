// Run the rows of a manifest, each as its own `qwen2vl-export export` child
// process, up to `jobs` at a time.
//
// A child process per row isolates failures: a row that crashes, runs out of
// memory or is killed ends only its own export, and its memory is returned
// before the next row starts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qwen2vl/batch/manifest.h"

namespace qwen2vl::batch {

// Environment variable that passes the batch's process id to each row's
// export, which then requests SIGTERM from the kernel for when the batch dies.
inline constexpr const char* kParentPidVariable = "QWEN2VL_BATCH_PID";

// Settings of every row's export, from the flags of `qwen2vl-export batch`.
struct RunSettings {
  std::filesystem::path executable;  // the qwen2vl-export binary that runs each row
  std::string log_level = "info";    // --log-level of each row's export
  int64_t jobs = 1;                  // rows exported at the same time
  bool resume = true;                // skip rows whose output contains a matching report
  bool force = false;                // let rows replace existing output folders
  bool validate = true;
  double atol = 1e-4;
  bool allow_static_vision = false;
  std::string python;                // --python of each row; empty: the default
  std::filesystem::path log_dir;     // row-N.log and row-N.report.json go here
};

struct RowResult {
  ManifestRow row;
  // "ok", "skipped" (the output already held a matching export), "failed",
  // "interrupted" (stopped by SIGINT or SIGTERM) or "not run".
  std::string status = "not run";
  int exit_code = -1;  // the row's exit code; -1 when it did not run or a signal ended it
  int signal = 0;      // the signal that ended the row's process, 0 if it exited
  double seconds = 0;
  std::string detail;  // failed: the row's error line; skipped: why
  std::string resume_check;  // why a row that ran was not up to date; empty with --no-resume
  std::filesystem::path log;
  nlohmann::json report;  // the row's export report when it wrote one, else null
};

struct BatchResult {
  std::vector<RowResult> rows;  // in manifest order
  int interrupt_signal = 0;     // SIGINT or SIGTERM when the batch was interrupted, else 0
  double seconds = 0;

  int64_t count(const std::string& status) const;
};

// The `qwen2vl-export export` command line for one row.
std::vector<std::string> export_command_line(const ManifestRow& row, const RunSettings& settings,
                                             const std::filesystem::path& report);

// Run `rows`. A failing row does not make it throw: its RowResult records the outcome.
// On SIGINT or SIGTERM no new row starts, the signal is passed to the running
// rows (which remove their partial output) and the function returns once they
// have ended, with interrupt_signal set. Throws qwen2vl::Error (kIo) when the
// log folder cannot be created.
BatchResult run_batch(const std::vector<ManifestRow>& rows, const RunSettings& settings);

}  // namespace qwen2vl::batch
