// Output folders that appear complete or not at all.
//
// An export writes into a staging folder `.<name>.partial-<pid>` beside the
// target, on the same file system, and commit() renames it into place. A run
// that fails, throws or is interrupted removes the staging folder and leaves
// an earlier target untouched.
#pragma once

#include <filesystem>

#include "qwen2vl/util/interrupt.h"

namespace qwen2vl {

// Check that `target` may receive a new output folder: it does not exist, it
// is an empty folder, or `force` is set and it is a folder or a symbolic link.
// Throws qwen2vl::Error with ExitCode::kUsage otherwise, because the fix is a
// different command line (--force or another OUTPUT_DIR), not a different model.
void check_output_target(const std::filesystem::path& target, bool force);

class StagedOutputDir {
 public:
  // Check the target (see check_output_target), create its parent folders and
  // an empty staging folder, and register the staging folder for removal on
  // SIGINT or SIGTERM. Throws qwen2vl::Error: kUsage for a target that may not
  // be replaced, kIo when a folder cannot be created.
  StagedOutputDir(std::filesystem::path target, bool force);

  // Removes the staging folder unless commit() succeeded. Never throws.
  ~StagedOutputDir();

  StagedOutputDir(const StagedOutputDir&) = delete;
  StagedOutputDir& operator=(const StagedOutputDir&) = delete;

  // Folder to write into until commit().
  const std::filesystem::path& path() const { return staging_; }
  // Final location, absolute.
  const std::filesystem::path& target() const { return target_; }
  bool committed() const { return committed_; }

  // Move the staging folder to the target. A missing or empty target is
  // replaced by one rename(2). A non-empty target (allowed by force) is
  // exchanged with the staging folder atomically where the file system
  // supports renameat2(RENAME_EXCHANGE). Elsewhere it is moved aside first,
  // and moved back if the second rename fails. The old contents are removed
  // only after the new folder is in place. Throws qwen2vl::Error (kIo) when a
  // rename fails, and the target is then as it was before the call.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool force_ = false;
  bool committed_ = false;
  ScopedCleanupPath cleanup_;
};

}  // namespace qwen2vl
