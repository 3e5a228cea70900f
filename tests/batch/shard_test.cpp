// --shard K/N: parsing, and that N shards together run every row exactly once.
#include <gtest/gtest.h>

#include "qwen2vl/batch/shard.h"

namespace qwen2vl::batch {
namespace {

TEST(Shard, ParsesValidShards) {
  Shard shard;
  EXPECT_EQ(parse_shard("0/1", shard), "");
  EXPECT_TRUE(shard.whole());
  EXPECT_EQ(parse_shard("2/5", shard), "");
  EXPECT_EQ(shard.index, 2);
  EXPECT_EQ(shard.count, 5);
  EXPECT_EQ(shard.to_string(), "2/5");
}

TEST(Shard, RejectsInvalidShardsAndKeepsTheOldValue) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected K/N"},       {"3", "expected K/N"},         {"1/", "expected K/N"},
      {"-1/4", "expected K/N"},   {"a/b", "expected K/N"},       {"1/4/2", "expected K/N"},
      {"4/4", "0 <= K < N"},      {"0/0", "must be at least 1"},         {"1234567890/2", "expected K/N"},
  };
  for (const auto& [text, fragment] : cases) {
    Shard shard{1, 3};
    const std::string message = parse_shard(text, shard);
    EXPECT_NE(message.find(fragment), std::string::npos) << text << ": " << message;
    EXPECT_EQ(shard.index, 1) << text;
    EXPECT_EQ(shard.count, 3) << text;
  }
}

TEST(Shard, ShardsPartitionTheRows) {
  std::vector<ManifestRow> rows(7);
  for (size_t i = 0; i < rows.size(); ++i) rows[i].number = static_cast<int64_t>(i + 1);
  for (int64_t count = 1; count <= 9; ++count) {
    std::vector<int> runs(rows.size(), 0);
    for (int64_t index = 0; index < count; ++index) {
      int64_t previous = 0;
      for (const auto& row : select_shard(rows, {index, count})) {
        EXPECT_GT(row.number, previous) << "manifest order";
        previous = row.number;
        EXPECT_EQ((row.number - 1) % count, index);
        ++runs[row.number - 1];
      }
    }
    for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i], 1) << "row " << i + 1 << " with " << count << " shards";
  }
}

}  // namespace
}  // namespace qwen2vl::batch
