// Checks that keep an export from deleting its own inputs: with --force, the
// output folder is replaced as a whole, so it must not hold the model, the
// config, a manifest or a report.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace qwen2vl {

// `path` made absolute and normal, with the symbolic links of its existing
// leading part resolved, and without a trailing separator.
std::filesystem::path resolved_path(const std::filesystem::path& path);

// True when `path` is `folder` or lies below it, after resolving both.
bool is_same_or_inside(const std::filesystem::path& path, const std::filesystem::path& folder);

// A file the run reads or writes besides the output, and what it is ("the
// model", "the manifest", ...).
using NamedPath = std::pair<std::filesystem::path, std::string>;

// Throw qwen2vl::Error (kUsage) when `output` is one of `files` or a folder
// that contains one, because replacing the output would delete that file.
// `flag` names the option or column that sets the output in the message.
void check_output_keeps(const std::filesystem::path& output, const std::vector<NamedPath>& files,
                        const std::string& flag);

// Throw qwen2vl::Error (kUsage) when `report` is one of `files`, which the
// report would overwrite.
void check_report_target(const std::filesystem::path& report, const std::vector<NamedPath>& files,
                         const std::string& flag);

}  // namespace qwen2vl
