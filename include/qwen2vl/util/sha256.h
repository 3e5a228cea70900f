// SHA-256 (FIPS 180-4) of byte streams and files, for the input checksums of
// the export report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace qwen2vl {

// Incremental SHA-256. Feed the message with any number of update() calls,
// then call finish() once for the digest.
//
// On x86-64 CPUs with the SHA extensions (sha_ni in /proc/cpuinfo) the block
// function uses the SHA256RNDS2/SHA256MSG1/SHA256MSG2 instructions, and
// elsewhere it runs portable C++. Both produce the same digest.
class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  enum class Implementation {
    kAuto,           // kShaExtensions when the CPU has them, else kPortable
    kPortable,       // plain C++, on every CPU
    kShaExtensions,  // x86 SHA extensions, only where has_sha_extensions()
  };

  // Throws std::invalid_argument for kShaExtensions where
  // has_sha_extensions() is false.
  explicit Sha256(Implementation implementation = Implementation::kAuto);

  // Append `size` bytes at `data` to the message. `data` may be null when
  // `size` is 0.
  void update(const void* data, size_t size);

  // Pad the message and return its digest. The object then starts over with
  // an empty message and the same implementation.
  std::array<uint8_t, 32> finish();

  // Format a digest as 64 lowercase hexadecimal digits.
  static std::string hex(const std::array<uint8_t, 32>& digest);

  // Whether this build and this CPU support Implementation::kShaExtensions.
  static bool has_sha_extensions();

  // The implementation in use: kPortable or kShaExtensions, never kAuto.
  Implementation implementation() const { return implementation_; }

 private:
  using BlockFunction = void (*)(uint32_t* state, const uint8_t* blocks, size_t block_count);

  void reset();

  Implementation implementation_;
  BlockFunction compress_;
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;  // the unprocessed tail of the message, less than one block
  size_t buffered_ = 0;
  uint64_t message_bytes_ = 0;
};

// Compute the SHA-256 of the file at `path` and return it as 64 lowercase
// hexadecimal digits. `progress`, when set, is called after each read of up
// to 4 MiB with the bytes hashed so far and the file size at open time.
// Throws Error with ExitCode::kIo, naming the path and the system error, when
// the file cannot be opened or read (a folder fails with "Is a directory").
std::string sha256_file(const std::filesystem::path& path,
                        const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace qwen2vl
