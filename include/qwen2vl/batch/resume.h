// Resuming a batch: is a row's output folder already a finished export of the
// same inputs with the same settings?
#pragma once

#include <string>

#include "qwen2vl/batch/manifest.h"
#include "qwen2vl/batch/runner.h"

namespace qwen2vl::batch {

struct ResumeCheck {
  bool up_to_date = false;
  std::string reason;  // why it is or is not, for the log and the batch report
};

// True when OUTPUT/export_report.json exists, has status "ok", was written by this
// version of qwen2vl-export for the row's task with the same opset and
// validation settings, and records the size and SHA-256 of the row's model and
// config files as they are now. Hashes the files only when their sizes match.
// Never throws: an unreadable report or input is simply not up to date.
ResumeCheck check_finished_output(const ManifestRow& row, const RunSettings& settings);

}  // namespace qwen2vl::batch
