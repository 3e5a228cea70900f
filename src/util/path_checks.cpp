#include "qwen2vl/util/path_checks.h"

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace fs = std::filesystem;

fs::path resolved_path(const fs::path& path) {
  std::error_code error;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path), error);
  if (error) resolved = fs::absolute(path).lexically_normal();
  if (!resolved.has_filename() && resolved != resolved.root_path()) resolved = resolved.parent_path();
  return resolved;
}

bool is_same_or_inside(const fs::path& path, const fs::path& folder) {
  const fs::path inner = resolved_path(path);
  const fs::path outer = resolved_path(folder);
  auto inner_part = inner.begin();
  for (auto outer_part = outer.begin(); outer_part != outer.end(); ++outer_part, ++inner_part) {
    if (inner_part == inner.end() || *inner_part != *outer_part) return false;
  }
  return true;
}

void check_output_keeps(const fs::path& output, const std::vector<NamedPath>& files, const std::string& flag) {
  for (const auto& [file, description] : files) {
    if (file.empty() || !is_same_or_inside(file, output)) continue;
    throw Error(ExitCode::kUsage, flag + " " + output.string() + " contains " + description + " " + file.string() +
                                      ", which writing the export there would delete; choose an output folder "
                                      "outside the checkpoint's folder");
  }
}

void check_report_target(const fs::path& report, const std::vector<NamedPath>& files, const std::string& flag) {
  for (const auto& [file, description] : files) {
    if (file.empty() || resolved_path(file) != resolved_path(report)) continue;
    throw Error(ExitCode::kUsage, flag + " " + report.string() + " is " + description +
                                      ", which the report would overwrite; choose another report file");
  }
}

}  // namespace qwen2vl
