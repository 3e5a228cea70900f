// A small CSV reader for manifests (RFC 4180 quoting, one record per line).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qwen2vl::batch {

struct CsvRecord {
  int64_t line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// Split `text` into records. Unquoted fields are trimmed of spaces and tabs;
// quoted fields are kept as written. Blank lines and lines whose first
// non-blank character is '#' are skipped. Throws qwen2vl::Error
// (kInvalidInput) for a quote that is never closed or text after a closing
// quote, naming `source` and the line.
std::vector<CsvRecord> read_csv(const std::string& text, const std::string& source);

}  // namespace qwen2vl::batch
