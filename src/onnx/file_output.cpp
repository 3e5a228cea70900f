#include "file_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"

namespace qwen2vl::onnx::detail {
namespace {

// Linux write(2) transfers at most 0x7ffff000 bytes per call; stay below it.
constexpr size_t kMaxWriteBytes = size_t{1} << 30;

std::string hint_for(int error_number) {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return " Free disk space or write to another directory.";
    case EFBIG:
      return " The file size limit (ulimit -f) or the file system's maximum file size was reached; "
             "raise the limit (ulimit -f unlimited) or write to another file system.";
    case EACCES:
    case EPERM:
    case EROFS:
      return " Check the directory's permissions or write to another directory.";
    case ENOENT:
    case ENOTDIR:
      return " Check that the output directory exists.";
    default:
      return "";
  }
}

void remove_quietly(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::remove(path, error)) {
    spdlog::debug("Removed {}", path.string());
  } else if (error) {
    spdlog::warn("Could not remove {} after a failed write: {}", path.string(), error.message());
  }
}

}  // namespace

void throw_io_error(const char* action, const std::filesystem::path& path, int error_number) {
  throw io_error(std::string(action) + " " + path.string() + " failed: " + std::strerror(error_number) + " (errno " +
                 std::to_string(error_number) + ")." + hint_for(error_number));
}

OutputFile::OutputFile(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw_io_error("creating", path_, errno);
  }
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void OutputFile::write(const void* data, size_t size) {
  const char* cursor = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd_, cursor, std::min(size, kMaxWriteBytes));
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_io_error("writing", path_, errno);
    }
    if (written == 0) {
      throw_io_error("writing", path_, ENOSPC);  // write(2) made no progress; treat as a full disk
    }
    cursor += written;
    size -= static_cast<size_t>(written);
    position_ += static_cast<uint64_t>(written);
  }
}

void OutputFile::write_zeros(uint64_t count) {
  static const char kZeros[64 * 1024] = {};
  while (count > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(count, sizeof(kZeros)));
    write(kZeros, step);
    count -= step;
  }
}

void OutputFile::sync_and_close() {
  if (::fsync(fd_) != 0) {
    throw_io_error("flushing (fsync)", path_, errno);
  }
  int fd = fd_;
  fd_ = -1;  // close(2) releases the descriptor even when it fails, so never retry it
  if (::close(fd) != 0) {
    throw_io_error("closing", path_, errno);
  }
}

StagedFiles::~StagedFiles() {
  if (committed_) {
    return;
  }
  for (const Entry& entry : entries_) {
    remove_quietly(entry.renamed ? entry.final : entry.temporary);
  }
}

std::filesystem::path StagedFiles::stage(const std::filesystem::path& final_path) {
  std::filesystem::path temporary = final_path;
  temporary += ".partial";
  entries_.push_back(Entry{temporary, final_path, false});
  return temporary;
}

void StagedFiles::commit() {
  for (Entry& entry : entries_) {
    if (std::rename(entry.temporary.c_str(), entry.final.c_str()) != 0) {
      throw_io_error("renaming the finished file to", entry.final, errno);
    }
    entry.renamed = true;
  }
  if (!entries_.empty()) {
    // Make the renames durable. Some file systems cannot fsync a directory
    // (EINVAL); the file contents are already on disk there, so go on.
    std::filesystem::path directory = entries_.front().final.parent_path();
    if (directory.empty()) {
      directory = ".";
    }
    int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      throw_io_error("opening the output directory", directory, errno);
    }
    int status = ::fsync(fd);
    int error_number = errno;
    ::close(fd);
    if (status != 0 && error_number != EINVAL) {
      throw_io_error("flushing (fsync) the output directory", directory, error_number);
    }
  }
  committed_ = true;
}

}  // namespace qwen2vl::onnx::detail
