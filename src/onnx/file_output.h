// POSIX file output for the writer: every failure becomes qwen2vl::Error(kIo)
// with the path and the OS error, and files are staged under temporary names
// so that a failed write leaves nothing behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace qwen2vl::onnx::detail {

// Throws qwen2vl::Error(kIo): "<action> <path> failed: <strerror> (errno N)",
// followed by a hint for the usual causes (disk full, permissions, size limit).
[[noreturn]] void throw_io_error(const char* action, const std::filesystem::path& path, int error_number);

// A file opened for writing (created or truncated). Writes go straight to the
// file descriptor, without a user-space buffer.
class OutputFile {
 public:
  explicit OutputFile(const std::filesystem::path& path);
  ~OutputFile();  // closes without checking; call close() to see errors
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, size_t size);
  void write_zeros(uint64_t count);
  // fsync, then close. Both failures throw.
  void sync_and_close();

  uint64_t position() const { return position_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t position_ = 0;
};

// Files written under "<final>.partial" and renamed into place by commit().
// Until commit() returns, the destructor removes every staged file and every
// final path that commit() already renamed.
class StagedFiles {
 public:
  StagedFiles() = default;
  ~StagedFiles();
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  // Registers `final_path` and returns the temporary path to write it to.
  std::filesystem::path stage(const std::filesystem::path& final_path);
  // Renames the staged files in registration order, then fsyncs their directory.
  void commit();

 private:
  struct Entry {
    std::filesystem::path temporary;
    std::filesystem::path final;
    bool renamed = false;
  };
  std::vector<Entry> entries_;
  bool committed_ = false;
};

}  // namespace qwen2vl::onnx::detail
