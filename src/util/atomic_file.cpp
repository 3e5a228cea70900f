#include "qwen2vl/util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

// Write all of `contents` to `fd`, flush it to the disk and close it. Returns
// 0, or the errno of the first step that failed. Delayed allocation can
// report a full disk only at fsync or close, so both are checked.
int write_and_close(int fd, const std::string& contents) {
  size_t done = 0;
  int failure = 0;
  while (done < contents.size() && failure == 0) {
    const ssize_t written = ::write(fd, contents.data() + done, contents.size() - done);
    if (written < 0) {
      if (errno != EINTR) failure = errno;
    } else {
      done += static_cast<size_t>(written);
    }
  }
  if (failure == 0 && ::fsync(fd) != 0) failure = errno;
  if (::close(fd) != 0 && failure == 0) failure = errno;
  return failure;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, const std::string& contents, const std::string& description) {
  auto temporary = path;
  temporary += ".partial-" + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw io_error("cannot write " + description + " " + path.string() + ": " + std::strerror(errno) +
                   "; check that its folder exists and is writable");
  }
  const int failure = write_and_close(fd, contents);
  std::error_code ignored;
  if (failure != 0) {
    std::filesystem::remove(temporary, ignored);
    throw io_error("cannot write " + description + " " + path.string() + ": " + std::strerror(failure));
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, ignored);
    throw io_error("cannot write " + description + " " + path.string() + ": " + error.message());
  }
}

void check_writable(const std::filesystem::path& path, const std::string& description, const std::string& flag) {
  std::error_code error;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), error);
  if (std::filesystem::is_directory(path, error)) {
    throw io_error("cannot write " + description + " " + path.string() + ": it is a folder; pass " + flag +
                   " with a file name");
  }
  auto probe = path;
  probe += ".partial-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw io_error("cannot write " + description + " " + path.string() + ": " + std::strerror(errno) + "; pass " + flag +
                   " with a file in a writable folder");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace qwen2vl
