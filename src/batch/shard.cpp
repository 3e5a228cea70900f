#include "qwen2vl/batch/shard.h"

#include <cctype>

namespace qwen2vl::batch {
namespace {

// Parse a decimal of at most 9 digits; false for anything else.
bool parse_count(const std::string& text, int64_t& value) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  value = std::stoll(text);
  return true;
}

}  // namespace

std::string Shard::to_string() const { return std::to_string(index) + "/" + std::to_string(count); }

std::string parse_shard(const std::string& text, Shard& shard) {
  const size_t slash = text.find('/');
  Shard parsed;
  if (slash == std::string::npos || !parse_count(text.substr(0, slash), parsed.index) ||
      !parse_count(text.substr(slash + 1), parsed.count)) {
    return "expected K/N with whole numbers, such as 0/4 for the first of four shards, got '" + text + "'";
  }
  if (parsed.count < 1) return "shard '" + text + "' does not exist: N, the number of shards, must be at least 1";
  if (parsed.index >= parsed.count) {
    return "shard '" + text + "' does not exist: K counts from 0, so K/N needs 0 <= K < N (0/" +
           std::to_string(parsed.count) + " is the first, " + std::to_string(parsed.count - 1) + "/" +
           std::to_string(parsed.count) + " the last)";
  }
  shard = parsed;
  return "";
}

std::vector<ManifestRow> select_shard(const std::vector<ManifestRow>& rows, const Shard& shard) {
  std::vector<ManifestRow> selected;
  for (size_t position = 0; position < rows.size(); ++position) {
    if (static_cast<int64_t>(position) % shard.count == shard.index) selected.push_back(rows[position]);
  }
  return selected;
}

}  // namespace qwen2vl::batch
