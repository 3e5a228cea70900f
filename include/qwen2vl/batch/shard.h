// --shard K/N: the slice of a manifest that one machine of N runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qwen2vl/batch/manifest.h"

namespace qwen2vl::batch {

// Shard K of N (0 <= K < N) contains the rows at 0-based positions p with
// p mod N == K, so N machines given 0/N ... N-1/N run every row exactly once.
struct Shard {
  int64_t index = 0;
  int64_t count = 1;

  std::string to_string() const;  // "K/N"
  bool whole() const { return count == 1; }
};

// Parse "K/N". Returns "" and fills `shard` when valid, else a message for
// the user.
std::string parse_shard(const std::string& text, Shard& shard);

// The rows of `rows` that belong to `shard`, in manifest order.
std::vector<ManifestRow> select_shard(const std::vector<ManifestRow>& rows, const Shard& shard);

}  // namespace qwen2vl::batch
