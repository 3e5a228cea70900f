// SHA-256 as specified in FIPS 180-4 (Secure Hash Standard).
#include "qwen2vl/util/sha256.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QWEN2VL_SHA256_X86 1
#include <immintrin.h>
#else
#define QWEN2VL_SHA256_X86 0
#endif

#include "qwen2vl/error.h"

#define QWEN2VL_ALWAYS_INLINE inline __attribute__((always_inline))

namespace qwen2vl {
namespace {

// Round constants: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes.
alignas(16) constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// Initial hash value: the first 32 bits of the fractional parts of the square
// roots of the first 8 primes.
constexpr std::array<uint32_t, 8> kInitialState = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

constexpr size_t kBlockSize = 64;
constexpr size_t kLengthOffset = kBlockSize - 8;  // the message length in bits fills the last 8 bytes
constexpr size_t kFileReadSize = size_t{4} << 20;

QWEN2VL_ALWAYS_INLINE uint32_t load_big_endian32(const uint8_t* bytes) {
  uint32_t value;
  std::memcpy(&value, bytes, sizeof(value));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  value = __builtin_bswap32(value);
#endif
  return value;
}

QWEN2VL_ALWAYS_INLINE void store_big_endian32(uint32_t value, uint8_t* bytes) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  value = __builtin_bswap32(value);
#endif
  std::memcpy(bytes, &value, sizeof(value));
}

// --- Portable block function -----------------------------------------------------------------

QWEN2VL_ALWAYS_INLINE uint32_t rotate_right(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// The logical functions of SHA-256, with Ch and Maj rewritten to use one
// operation less: Ch(x,y,z) = z ^ (x & (y ^ z)), Maj(x,y,z) = (x & y) | (z & (x | y)).
QWEN2VL_ALWAYS_INLINE uint32_t choose(uint32_t x, uint32_t y, uint32_t z) { return z ^ (x & (y ^ z)); }
QWEN2VL_ALWAYS_INLINE uint32_t majority(uint32_t x, uint32_t y, uint32_t z) { return (x & y) | (z & (x | y)); }
QWEN2VL_ALWAYS_INLINE uint32_t big_sigma0(uint32_t x) {
  return rotate_right(x, 2) ^ rotate_right(x, 13) ^ rotate_right(x, 22);
}
QWEN2VL_ALWAYS_INLINE uint32_t big_sigma1(uint32_t x) {
  return rotate_right(x, 6) ^ rotate_right(x, 11) ^ rotate_right(x, 25);
}
QWEN2VL_ALWAYS_INLINE uint32_t small_sigma0(uint32_t x) { return rotate_right(x, 7) ^ rotate_right(x, 18) ^ (x >> 3); }
QWEN2VL_ALWAYS_INLINE uint32_t small_sigma1(uint32_t x) {
  return rotate_right(x, 17) ^ rotate_right(x, 19) ^ (x >> 10);
}

// One round of the compression function. Instead of shifting the eight working
// variables, the caller rotates the argument order: the new `e` is written to
// `d` and the new `a` to `h`, so the next round passes (h, a, b, c, d, e, f, g).
QWEN2VL_ALWAYS_INLINE void compress_round(uint32_t a, uint32_t b, uint32_t c, uint32_t& d, uint32_t e, uint32_t f,
                                          uint32_t g, uint32_t& h, uint32_t constant_plus_word) {
  h += big_sigma1(e) + choose(e, f, g) + constant_plus_word;  // T1
  d += h;
  h += big_sigma0(a) + majority(a, b, c);  // T1 + T2
}

// Round `t` = 16 * r + kIndex of a block. The message schedule W is kept in a
// 16-word ring `w`: word W[t] replaces W[t - 16] in slot kIndex. With
// kExpand false (r = 0) the slot is loaded from the block, else it is computed
// as sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16].
template <bool kExpand, int kIndex>
QWEN2VL_ALWAYS_INLINE void schedule_and_round(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d, uint32_t& e,
                                              uint32_t& f, uint32_t& g, uint32_t& h, uint32_t* w,
                                              const uint8_t* block, const uint32_t* constants) {
  if constexpr (kExpand) {
    w[kIndex] += small_sigma1(w[(kIndex + 14) & 15]) + w[(kIndex + 9) & 15] + small_sigma0(w[(kIndex + 1) & 15]);
  } else {
    w[kIndex] = load_big_endian32(block + 4 * kIndex);
  }
  compress_round(a, b, c, d, e, f, g, h, constants[kIndex] + w[kIndex]);
}

// Sixteen rounds, with `constants` pointing at the constant of the first one.
template <bool kExpand>
QWEN2VL_ALWAYS_INLINE void sixteen_rounds(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d, uint32_t& e,
                                          uint32_t& f, uint32_t& g, uint32_t& h, uint32_t* w, const uint8_t* block,
                                          const uint32_t* constants) {
  schedule_and_round<kExpand, 0>(a, b, c, d, e, f, g, h, w, block, constants);
  schedule_and_round<kExpand, 1>(h, a, b, c, d, e, f, g, w, block, constants);
  schedule_and_round<kExpand, 2>(g, h, a, b, c, d, e, f, w, block, constants);
  schedule_and_round<kExpand, 3>(f, g, h, a, b, c, d, e, w, block, constants);
  schedule_and_round<kExpand, 4>(e, f, g, h, a, b, c, d, w, block, constants);
  schedule_and_round<kExpand, 5>(d, e, f, g, h, a, b, c, w, block, constants);
  schedule_and_round<kExpand, 6>(c, d, e, f, g, h, a, b, w, block, constants);
  schedule_and_round<kExpand, 7>(b, c, d, e, f, g, h, a, w, block, constants);
  schedule_and_round<kExpand, 8>(a, b, c, d, e, f, g, h, w, block, constants);
  schedule_and_round<kExpand, 9>(h, a, b, c, d, e, f, g, w, block, constants);
  schedule_and_round<kExpand, 10>(g, h, a, b, c, d, e, f, w, block, constants);
  schedule_and_round<kExpand, 11>(f, g, h, a, b, c, d, e, w, block, constants);
  schedule_and_round<kExpand, 12>(e, f, g, h, a, b, c, d, w, block, constants);
  schedule_and_round<kExpand, 13>(d, e, f, g, h, a, b, c, w, block, constants);
  schedule_and_round<kExpand, 14>(c, d, e, f, g, h, a, b, w, block, constants);
  schedule_and_round<kExpand, 15>(b, c, d, e, f, g, h, a, w, block, constants);
}

void compress_portable(uint32_t* state, const uint8_t* blocks, size_t block_count) {
  for (size_t i = 0; i < block_count; ++i, blocks += kBlockSize) {
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    uint32_t w[16];

    sixteen_rounds<false>(a, b, c, d, e, f, g, h, w, blocks, kRoundConstants);
    for (int round = 16; round < 64; round += 16) {
      sixteen_rounds<true>(a, b, c, d, e, f, g, h, w, blocks, kRoundConstants + round);
    }

    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

// --- Block function on the x86 SHA extensions ------------------------------------------------
//
// SHA256RNDS2 runs two rounds on the state split into the registers ABEF and
// CDGH (A in the highest dword, F and H in the lowest) and returns the new
// ABEF. After two rounds the new CDGH equals the old ABEF, so four rounds are
// two calls with the roles of the registers swapped. SHA256MSG1 and
// SHA256MSG2 compute the sigma0 and sigma1 terms of four message schedule
// words at a time.

#if QWEN2VL_SHA256_X86

#define QWEN2VL_SHA_TARGET __attribute__((target("sha,sse4.1")))

// Four rounds with the schedule words `words` (W[t] in the lowest dword).
QWEN2VL_SHA_TARGET QWEN2VL_ALWAYS_INLINE void four_rounds_sha(__m128i& abef, __m128i& cdgh, __m128i words,
                                                               const uint32_t* constants) {
  __m128i sums = _mm_add_epi32(words, _mm_load_si128(reinterpret_cast<const __m128i*>(constants)));
  // The first call writes the new ABEF into `cdgh`, whose old value the
  // second call no longer needs, so the registers end the same way round. The
  // instruction reads the two sums of its rounds from the low 64 bits.
  cdgh = _mm_sha256rnds2_epu32(cdgh, abef, sums);
  abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(sums, 0x0E));
}

QWEN2VL_SHA_TARGET void compress_sha_extensions(uint32_t* state, const uint8_t* blocks, size_t block_count) {
  // Reverses the bytes of each dword: the message words are big-endian.
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);

  // state[0..7] = a..h. Variable names list the dwords from the highest, as
  // Intel's names ABEF and CDGH do, and the comments list them from the lowest.
  const __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));      // a, b, c, d
  const __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));  // e, f, g, h
  const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);                                 // b, a, d, c
  const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);                                 // h, g, f, e
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);                                      // f, e, b, a
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);                                   // h, g, d, c

  for (size_t i = 0; i < block_count; ++i, blocks += kBlockSize) {
    const __m128i saved_abef = abef;
    const __m128i saved_cdgh = cdgh;

    // w0..w3 are the four most recent groups of four schedule words, oldest first.
    __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks)), byte_swap);
    __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 16)), byte_swap);
    __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 32)), byte_swap);
    __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 48)), byte_swap);
    four_rounds_sha(abef, cdgh, w0, kRoundConstants);
    four_rounds_sha(abef, cdgh, w1, kRoundConstants + 4);
    four_rounds_sha(abef, cdgh, w2, kRoundConstants + 8);
    four_rounds_sha(abef, cdgh, w3, kRoundConstants + 12);

    for (int round = 16; round < 64; round += 4) {
      // W[t..t+3] from W[t-16..t-1]: MSG1 adds sigma0(W[t-15..t-12]) to
      // W[t-16..t-13], the add brings in W[t-7..t-4], and MSG2 adds the
      // sigma1 terms of W[t-2], W[t-1] and the two new words W[t], W[t+1].
      __m128i partial = _mm_sha256msg1_epu32(w0, w1);
      partial = _mm_add_epi32(partial, _mm_alignr_epi8(w3, w2, 4));
      __m128i next = _mm_sha256msg2_epu32(partial, w3);
      w0 = w1;
      w1 = w2;
      w2 = w3;
      w3 = next;
      four_rounds_sha(abef, cdgh, next, kRoundConstants + round);
    }

    abef = _mm_add_epi32(abef, saved_abef);
    cdgh = _mm_add_epi32(cdgh, saved_cdgh);
  }

  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);  // a, b, e, f
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);  // g, h, c, d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));     // a, b, c, d
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));  // e, f, g, h
}

bool detect_sha_extensions() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
}

#endif  // QWEN2VL_SHA256_X86

// Closes a file descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { ::close(fd_); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

// --- Sha256 ----------------------------------------------------------------------------------

bool Sha256::has_sha_extensions() {
#if QWEN2VL_SHA256_X86
  static const bool supported = detect_sha_extensions();
  return supported;
#else
  return false;
#endif
}

Sha256::Sha256(Implementation implementation) {
  if (implementation == Implementation::kAuto) {
    implementation = has_sha_extensions() ? Implementation::kShaExtensions : Implementation::kPortable;
  }
  if (implementation == Implementation::kShaExtensions && !has_sha_extensions()) {
    throw std::invalid_argument(
        "Sha256: this CPU or build does not support the x86 SHA extensions. Use Implementation::kAuto or kPortable.");
  }
  implementation_ = implementation;
  compress_ = &compress_portable;
#if QWEN2VL_SHA256_X86
  if (implementation == Implementation::kShaExtensions) {
    compress_ = &compress_sha_extensions;
  }
#endif
  reset();
}

void Sha256::reset() {
  state_ = kInitialState;
  buffered_ = 0;
  message_bytes_ = 0;
}

void Sha256::update(const void* data, size_t size) {
  if (size == 0) {
    return;
  }
  const auto* bytes = static_cast<const uint8_t*>(data);
  message_bytes_ += size;

  // Complete a block that an earlier call left unfinished.
  if (buffered_ > 0) {
    size_t copied = std::min(size, kBlockSize - buffered_);
    std::memcpy(buffer_.data() + buffered_, bytes, copied);
    buffered_ += copied;
    bytes += copied;
    size -= copied;
    if (buffered_ < kBlockSize) {
      return;
    }
    compress_(state_.data(), buffer_.data(), 1);
    buffered_ = 0;
  }

  // Hash whole blocks straight from the caller's memory.
  size_t block_count = size / kBlockSize;
  if (block_count > 0) {
    compress_(state_.data(), bytes, block_count);
    bytes += block_count * kBlockSize;
    size -= block_count * kBlockSize;
  }

  if (size > 0) {
    std::memcpy(buffer_.data(), bytes, size);
    buffered_ = size;
  }
}

std::array<uint8_t, 32> Sha256::finish() {
  // Padding: a 1 bit, zeros up to 56 bytes mod 64, then the message length in
  // bits as a 64-bit big-endian number. The length wraps above 2^61 bytes,
  // which SHA-256 does not accept as input anyway (its limit is 2^64 bits).
  const uint64_t message_bits = message_bytes_ * 8;
  buffer_[buffered_++] = 0x80;
  if (buffered_ > kLengthOffset) {
    std::memset(buffer_.data() + buffered_, 0, kBlockSize - buffered_);
    compress_(state_.data(), buffer_.data(), 1);
    buffered_ = 0;
  }
  std::memset(buffer_.data() + buffered_, 0, kLengthOffset - buffered_);
  store_big_endian32(static_cast<uint32_t>(message_bits >> 32), buffer_.data() + kLengthOffset);
  store_big_endian32(static_cast<uint32_t>(message_bits), buffer_.data() + kLengthOffset + 4);
  compress_(state_.data(), buffer_.data(), 1);

  Digest digest;
  for (size_t i = 0; i < state_.size(); ++i) {
    store_big_endian32(state_[i], digest.data() + 4 * i);
  }
  reset();
  return digest;
}

std::string Sha256::hex(const std::array<uint8_t, 32>& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(2 * digest.size(), '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    text[2 * i] = kDigits[digest[i] >> 4];
    text[2 * i + 1] = kDigits[digest[i] & 0x0F];
  }
  return text;
}

// --- Files -----------------------------------------------------------------------------------

std::string sha256_file(const std::filesystem::path& path,
                        const std::function<void(uint64_t done, uint64_t total)>& progress) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw io_error("failed to open " + path.string() + " to compute its SHA-256: " + std::strerror(errno));
  }
  FileDescriptor file(fd);

  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw io_error("failed to read the size of " + path.string() + ": " + std::strerror(errno));
  }
  const uint64_t total = S_ISREG(status.st_mode) ? static_cast<uint64_t>(status.st_size) : 0;
  // A hint for a larger read-ahead window. Hashing works without it, so its
  // result is not checked.
  ::posix_fadvise(file.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

  std::unique_ptr<uint8_t[]> buffer(new uint8_t[kFileReadSize]);
  Sha256 sha256;
  uint64_t done = 0;
  while (true) {
    const ssize_t count = ::read(file.get(), buffer.get(), kFileReadSize);
    if (count < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw io_error("failed to read " + path.string() + " to compute its SHA-256: " + std::strerror(errno));
    }
    if (count == 0) {
      break;
    }
    sha256.update(buffer.get(), static_cast<size_t>(count));
    done += static_cast<uint64_t>(count);
    if (progress) {
      progress(done, total);
    }
  }
  return Sha256::hex(sha256.finish());
}

}  // namespace qwen2vl
