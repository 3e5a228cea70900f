// Output folders of a batch that would overwrite each other or the batch's
// own files. Replacing a row's output removes everything inside it, so no
// output may contain another output, an input file, the manifest, the batch
// report or the log folder.
#pragma once

#include <vector>

#include "qwen2vl/batch/manifest.h"
#include "qwen2vl/util/path_checks.h"

namespace qwen2vl::batch {

// Throws qwen2vl::Error naming the row. The code is kInvalidInput when rows of
// the manifest conflict with each other: nested or aliased outputs, or an
// output that contains a row's model or config. It is kUsage when an output
// contains one of `batch_files` (manifest, report, log folder) or the report
// is an input.
// Paths are compared after resolving symbolic links, so "out" and a link to it
// are one folder.
void check_path_conflicts(const Manifest& manifest, const std::vector<NamedPath>& batch_files,
                          const std::filesystem::path& report);

}  // namespace qwen2vl::batch
