// The list of exports that `qwen2vl-export batch` runs: one row per
// (model, config, task, output), read from a JSON or CSV file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qwen2vl::batch {

struct ManifestRow {
  int64_t number = 0;                // 1-based position in the manifest, stable across shards
  std::string origin;                // "rows.csv line 4" or "rows.json row 2", for messages
  std::filesystem::path model;       // TorchScript archive
  std::filesystem::path config;      // empty: config.json beside the model
  std::string task;                  // one of the tasks given to read_manifest
  std::filesystem::path output;      // output folder of the export
};

struct Manifest {
  std::filesystem::path path;
  std::vector<ManifestRow> rows;
};

struct ManifestRules {
  std::vector<std::string> tasks;  // accepted values of the task column
  std::string default_task;        // for rows without a task
};

// Read a manifest. The format follows the extension (.json or .csv); for any
// other extension a file whose first non-blank character is '[' or '{' is
// JSON, anything else CSV.
//
// JSON: an array of objects, or an object whose "rows" key contains one. Each
// object has "model" and "output", and optionally "config" and "task"; any
// other key is an error, so a misspelled key is not ignored.
//
// CSV: a header line naming the columns (model and output required, config
// and task optional, any order), then one row per line. Fields may be quoted
// with double quotes ("" inside quotes is a quote). Blank lines and lines
// starting with '#' are skipped.
//
// Relative paths are relative to the manifest's folder. Every row is checked
// before anything runs: a missing field, an unknown task or two rows with one
// output folder throw qwen2vl::Error (kInvalidInput) naming the row. Whether
// the model files exist is left to each row's export, so that one bad row does
// not stop the others.
Manifest read_manifest(const std::filesystem::path& path, const ManifestRules& rules);

// The same, from text; `path` only names the source and anchors relative paths.
Manifest parse_manifest(const std::string& text, const std::filesystem::path& path, const ManifestRules& rules);

}  // namespace qwen2vl::batch
