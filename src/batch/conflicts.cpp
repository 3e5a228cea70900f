#include "qwen2vl/batch/conflicts.h"

#include <map>
#include <string>

#include "qwen2vl/error.h"

namespace qwen2vl::batch {
namespace fs = std::filesystem;
namespace {

// A path that some output must not contain, and what to call it in messages.
struct Guarded {
  std::string description;
  fs::path path;
  bool from_manifest = true;  // a row's input (kInvalidInput), else a file of the batch (kUsage)
};

fs::path config_of(const ManifestRow& row) {
  return row.config.empty() ? row.model.parent_path() / "config.json" : row.config;
}

}  // namespace

void check_path_conflicts(const Manifest& manifest, const std::vector<NamedPath>& batch_files,
                          const fs::path& report) {
  // Every resolved input path and each of its parent folders, so that an
  // output that equals any of them is found with one lookup per output.
  std::map<fs::path, Guarded> guarded_by_folder;
  auto guard = [&](const fs::path& path, const Guarded& entry) {
    for (fs::path folder = resolved_path(path); !folder.empty(); folder = folder.parent_path()) {
      guarded_by_folder.emplace(folder, entry);
      if (folder == folder.root_path()) break;
    }
  };
  for (const auto& row : manifest.rows) {
    guard(row.model, {"the model of " + row.origin, row.model});
    guard(config_of(row), {"the config of " + row.origin, config_of(row)});
  }
  for (const auto& [path, description] : batch_files) guard(path, {description, path, false});

  std::map<fs::path, const ManifestRow*> outputs;
  for (const auto& row : manifest.rows) {
    const fs::path output = resolved_path(row.output);
    auto found = guarded_by_folder.find(output);
    if (found != guarded_by_folder.end()) {
      const Guarded& entry = found->second;
      const std::string message = row.origin + ": output " + row.output.string() + " contains " + entry.description + " (" +
                                  entry.path.string() + "), which writing the export there would delete; choose an "
                                  "output folder outside it";
      throw Error(entry.from_manifest ? ExitCode::kInvalidInput : ExitCode::kUsage, message);
    }
    outputs.emplace(output, &row);
  }

  // Nested or aliased outputs: look up each output's parent folders.
  for (const auto& [output, row] : outputs) {
    for (fs::path folder = output.parent_path(); !folder.empty(); folder = folder.parent_path()) {
      auto found = outputs.find(folder);
      if (found != outputs.end()) {
        throw invalid_input(row->origin + " writes to " + row->output.string() + ", inside the output " +
                            found->second->output.string() + " of " + found->second->origin +
                            ", which replacing that row's output would delete; give every row an output folder "
                            "outside the others");
      }
      if (folder == folder.root_path()) break;
    }
  }
  if (outputs.size() < manifest.rows.size()) {
    // Two rows resolved to one folder, through a symbolic link.
    std::map<fs::path, const ManifestRow*> seen;
    for (const auto& row : manifest.rows) {
      auto [existing, inserted] = seen.emplace(resolved_path(row.output), &row);
      if (!inserted) {
        throw invalid_input(row.origin + " writes to " + row.output.string() + ", which is the same folder as the "
                            "output " + existing->second->output.string() + " of " + existing->second->origin +
                            " (through a symbolic link); give every row its own output folder");
      }
    }
  }

  for (const auto& row : manifest.rows) {
    check_report_target(report, {{row.model, "the model of " + row.origin}, {config_of(row), "the config of " + row.origin}},
                        "--report");
  }
}

}  // namespace qwen2vl::batch
