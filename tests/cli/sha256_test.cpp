// Sha256 and sha256_file: the FIPS 180-4 test vectors on every block function
// this CPU supports, split updates, the SHA-extension block function against
// the portable one, and files compared with coreutils' sha256sum.
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/sha256.h"

namespace qwen2vl {

// Names the test parameter in test names and failure messages. It is in
// namespace qwen2vl, not the unnamed one, so that GoogleTest finds it by
// argument-dependent lookup.
static void PrintTo(Sha256::Implementation implementation, std::ostream* out) {
  *out << (implementation == Sha256::Implementation::kPortable ? "Portable" : "ShaExtensions");
}

namespace {

namespace fs = std::filesystem;
using Implementation = Sha256::Implementation;

std::string sha256_hex(Implementation implementation, const std::string& message) {
  Sha256 sha256(implementation);
  sha256.update(message.data(), message.size());
  return Sha256::hex(sha256.finish());
}

std::vector<uint8_t> random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::vector<uint8_t> bytes(size);
  for (auto& byte : bytes) {
    byte = static_cast<uint8_t>(generator());
  }
  return bytes;
}

// A folder from mkdtemp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "qwen2vl-sha256-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// The digest that coreutils' sha256sum prints for `path`, or "" when it fails.
std::string sha256sum_of(const fs::path& path) {
  // mkdtemp paths contain no single quotes, so single quotes are enough here.
  const std::string command = "sha256sum -- '" + path.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed for: " << command;
    return "";
  }
  std::string output;
  char chunk[256];
  size_t count;
  while ((count = fread(chunk, 1, sizeof(chunk), pipe)) > 0) {
    output.append(chunk, count);
  }
  const int status = ::pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << command << " failed with status " << status << ": " << output;
    return "";
  }
  return output.substr(0, 64);
}

// --- Vectors and updates, once per block function ---------------------------------------------

class Sha256Implementations : public testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override {
    if (GetParam() == Implementation::kShaExtensions && !Sha256::has_sha_extensions()) {
      GTEST_SKIP() << "this CPU has no SHA extensions (sha_ni)";
    }
  }
};

// The standard SHA-256 test messages: "", "abc", the 448-bit and 896-bit
// messages of the NIST examples and one million 'a'. Python's hashlib returns
// the same digests.
TEST_P(Sha256Implementations, NistVectors) {
  EXPECT_EQ(sha256_hex(GetParam(), ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(GetParam(), "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(GetParam(), "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(GetParam(),
                       "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmn"
                       "opqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(GetParam(), std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Implementations, MillionAInSmallUpdates) {
  const std::string thousand(1000, 'a');
  Sha256 sha256(GetParam());
  for (int i = 0; i < 1000; ++i) {
    sha256.update(thousand.data(), thousand.size());
  }
  EXPECT_EQ(Sha256::hex(sha256.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Implementations, SplitUpdatesMatchOneUpdate) {
  const std::vector<uint8_t> message = random_bytes(5000, 1);
  std::mt19937_64 generator(2);
  for (int trial = 0; trial < 300; ++trial) {
    // A random prefix length, so that padding lands in every position of a block.
    const size_t size = std::uniform_int_distribution<size_t>(0, message.size())(generator);
    Sha256 whole(GetParam());
    whole.update(message.data(), size);
    const Sha256::Digest expected = whole.finish();

    // Up to 8 split points, repeats allowed: those make empty updates.
    std::vector<size_t> splits(std::uniform_int_distribution<size_t>(0, 8)(generator));
    for (auto& split : splits) {
      split = std::uniform_int_distribution<size_t>(0, size)(generator);
    }
    splits.push_back(0);
    splits.push_back(size);
    std::sort(splits.begin(), splits.end());

    Sha256 pieces(GetParam());
    for (size_t i = 0; i + 1 < splits.size(); ++i) {
      pieces.update(message.data() + splits[i], splits[i + 1] - splits[i]);
    }
    ASSERT_EQ(Sha256::hex(pieces.finish()), Sha256::hex(expected)) << "trial " << trial << ", size " << size;
  }
}

TEST_P(Sha256Implementations, FinishStartsOver) {
  Sha256 sha256(GetParam());
  sha256.update("some earlier message", 20);
  sha256.finish();
  sha256.update("abc", 3);
  EXPECT_EQ(Sha256::hex(sha256.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex(sha256.finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_P(Sha256Implementations, NullDataWithZeroSize) {
  Sha256 sha256(GetParam());
  sha256.update(nullptr, 0);
  EXPECT_EQ(Sha256::hex(sha256.finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

INSTANTIATE_TEST_SUITE_P(Sha256, Sha256Implementations,
                         testing::Values(Implementation::kPortable, Implementation::kShaExtensions),
                         [](const testing::TestParamInfo<Implementation>& info) {
                           return testing::PrintToString(info.param);
                         });

// --- Block function selection ----------------------------------------------------------------

TEST(Sha256, AutoPicksShaExtensionsWhenPresent) {
  const Implementation expected =
      Sha256::has_sha_extensions() ? Implementation::kShaExtensions : Implementation::kPortable;
  EXPECT_EQ(Sha256().implementation(), expected);
  EXPECT_EQ(Sha256(Implementation::kPortable).implementation(), Implementation::kPortable);
}

TEST(Sha256, ShaExtensionsRejectedWithoutCpuSupport) {
  if (Sha256::has_sha_extensions()) {
    GTEST_SKIP() << "this CPU has the SHA extensions";
  }
  EXPECT_THROW(Sha256(Implementation::kShaExtensions), std::invalid_argument);
}

TEST(Sha256, ShaExtensionsMatchPortable) {
  if (!Sha256::has_sha_extensions()) {
    GTEST_SKIP() << "this CPU has no SHA extensions (sha_ni)";
  }
  std::mt19937_64 generator(3);
  std::vector<size_t> sizes;
  for (size_t size = 0; size <= 300; ++size) {
    sizes.push_back(size);
  }
  sizes.push_back(size_t{1} << 20);
  sizes.push_back((size_t{3} << 20) + 77);
  for (size_t size : sizes) {
    const std::vector<uint8_t> message = random_bytes(size, generator());
    Sha256 portable(Implementation::kPortable);
    Sha256 accelerated(Implementation::kShaExtensions);
    portable.update(message.data(), message.size());
    accelerated.update(message.data(), message.size());
    ASSERT_EQ(Sha256::hex(accelerated.finish()), Sha256::hex(portable.finish())) << "size " << size;
  }
}

// --- Files ------------------------------------------------------------------------------------

TEST(Sha256File, MatchesSha256sum) {
  TempDir dir;
  // Sizes around the 56-byte padding limit and the 64-byte block, then sizes
  // past one and two 4 MiB reads.
  const std::vector<size_t> sizes = {0, 1, 55, 56, 63, 64, 65, (size_t{3} << 20) + 5, (size_t{9} << 20) + 13};
  for (size_t size : sizes) {
    const fs::path path = dir.path() / ("random-" + std::to_string(size) + ".bin");
    write_bytes(path, random_bytes(size, size + 10));
    EXPECT_EQ(sha256_file(path), sha256sum_of(path)) << "size " << size;
  }
}

TEST(Sha256File, ReportsProgressUpToFileSize) {
  TempDir dir;
  const size_t size = (size_t{9} << 20) + 13;
  const fs::path path = dir.path() / "progress.bin";
  write_bytes(path, random_bytes(size, 4));

  std::vector<uint64_t> done_values;
  std::vector<uint64_t> total_values;
  sha256_file(path, [&](uint64_t done, uint64_t total) {
    done_values.push_back(done);
    total_values.push_back(total);
  });

  ASSERT_FALSE(done_values.empty());
  EXPECT_TRUE(std::is_sorted(done_values.begin(), done_values.end()));
  EXPECT_EQ(done_values.back(), size);
  EXPECT_EQ(total_values, std::vector<uint64_t>(total_values.size(), size));
}

TEST(Sha256File, MissingFileIsIoError) {
  TempDir dir;
  const fs::path path = dir.path() / "missing.safetensors";
  try {
    sha256_file(path);
    FAIL() << "sha256_file returned for a missing file";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kIo);
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("No such file or directory"), std::string::npos) << error.what();
  }
}

TEST(Sha256File, FolderIsIoError) {
  TempDir dir;
  try {
    sha256_file(dir.path());
    FAIL() << "sha256_file returned for a folder";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kIo);
    EXPECT_NE(std::string(error.what()).find(dir.path().string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("Is a directory"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace qwen2vl
