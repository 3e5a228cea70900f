#include "qwen2vl/util/staged_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace fs = std::filesystem;
namespace {

Error usage_error(const std::string& message) { return Error(ExitCode::kUsage, message); }

// Staging folders of this process, so that two StagedOutputDir objects for
// one target cannot share (and remove) one folder.
std::mutex g_active_mutex;
std::set<fs::path> g_active_staging;

fs::path normalize_target(const fs::path& target) {
  fs::path result = fs::absolute(target).lexically_normal();
  if (!result.has_filename()) {
    result = result.parent_path();  // "out/" -> "out"
  }
  return result;
}

std::string staging_prefix(const fs::path& target) { return "." + target.filename().string() + ".partial-"; }

// Warn about staging folders of earlier runs that were killed before they
// could clean up (SIGKILL, power loss). They are not removed: another export
// into the same folder may still be running.
void warn_about_leftovers(const fs::path& parent, const fs::path& target, const fs::path& own) {
  const std::string prefix = staging_prefix(target);
  std::error_code error;
  for (fs::directory_iterator it(parent, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0 && it->path() != own) {
      spdlog::warn("found {} from an earlier export into {}; remove it unless that export is still running",
                   it->path().string(), target.string());
    }
  }
}

bool is_empty_folder(const fs::path& path) {
  std::error_code error;
  return fs::is_empty(path, error) && !error;
}

}  // namespace

void check_output_target(const fs::path& target, bool force) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(target, error);
  if (error && error != std::errc::no_such_file_or_directory) {
    throw io_error("failed to access output folder " + target.string() + ": " + error.message());
  }
  if (!fs::exists(status)) {
    return;
  }

  if (fs::is_symlink(status)) {
    if (force) {
      return;
    }
    throw usage_error("output folder " + target.string() +
                      " is a symbolic link; pass --force to replace the link, or choose another OUTPUT_DIR");
  }
  if (!fs::is_directory(status)) {
    throw usage_error("output path " + target.string() +
                      " exists and is not a folder; remove it or choose another OUTPUT_DIR");
  }
  if (force || is_empty_folder(target)) {
    return;
  }
  throw usage_error("output folder " + target.string() +
                    " already exists and is not empty; pass --force to replace it, or choose another OUTPUT_DIR");
}

StagedOutputDir::StagedOutputDir(fs::path target, bool force) : target_(normalize_target(target)), force_(force) {
  if (target_ == target_.root_path() || target_.filename() == "..") {
    throw usage_error("invalid output folder " + target.string() + ": name a folder to create, such as out/model");
  }
  check_output_target(target_, force_);

  const fs::path parent = target_.parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) {
    throw io_error("failed to create folder " + parent.string() + ": " + error.message());
  }

  staging_ = parent / (staging_prefix(target_) + std::to_string(getpid()));
  {
    std::lock_guard<std::mutex> lock(g_active_mutex);
    if (!g_active_staging.insert(staging_).second) {
      throw Error(ExitCode::kInternal, "output folder " + target_.string() + " is already being written by this process");
    }
  }

  // Register before creating, so that an interrupt in between leaves nothing behind.
  cleanup_.reset(staging_);

  // A folder with our pid can only be left by an earlier process that had the same pid.
  fs::remove_all(staging_, error);
  warn_about_leftovers(parent, target_, staging_);

  if (!fs::create_directory(staging_, error) || error) {
    const std::string reason = error ? error.message() : "it already exists";
    cleanup_.reset();
    std::lock_guard<std::mutex> lock(g_active_mutex);
    g_active_staging.erase(staging_);
    throw io_error("failed to create staging folder " + staging_.string() + ": " + reason);
  }
  spdlog::debug("writing output into staging folder {}", staging_.string());
}

StagedOutputDir::~StagedOutputDir() {
  if (!committed_) {
    std::error_code error;
    fs::remove_all(staging_, error);
    if (error) {
      spdlog::warn("failed to remove staging folder {}: {}; remove it by hand", staging_.string(), error.message());
    } else {
      spdlog::debug("removed staging folder {}", staging_.string());
    }
  }

  std::lock_guard<std::mutex> lock(g_active_mutex);
  g_active_staging.erase(staging_);
}

void StagedOutputDir::commit() {
  if (committed_) {
    return;
  }

  fs::path previous_contents;  // where the replaced target ends up, to remove last
  {
    InterruptCriticalSection no_interrupt;
    std::error_code error;

    const fs::file_status status = fs::symlink_status(target_, error);
    const bool exists = fs::exists(status);
    const bool replacing = exists && (fs::is_symlink(status) || !is_empty_folder(target_));

    if (!replacing) {
      // rename(2) moves a folder onto a missing path or an empty folder in one step.
      fs::rename(staging_, target_, error);
      if (error) {
        if (error == std::errc::directory_not_empty || error == std::errc::file_exists) {
          throw usage_error("output folder " + target_.string() +
                            " was filled by another process during the export; pass --force to replace it");
        }
        throw io_error("failed to move " + staging_.string() + " to " + target_.string() + ": " + error.message());
      }
    } else {
      if (!force_) {
        throw usage_error("output folder " + target_.string() +
                          " appeared during the export and is not empty; pass --force to replace it");
      }
      if (!fs::is_directory(status) && !fs::is_symlink(status)) {
        throw usage_error("output path " + target_.string() + " exists and is not a folder; remove it by hand");
      }

      if (renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
        // The staging path now contains the old folder, and cleanup_ still covers it.
        previous_contents = staging_;
      } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        // No atomic exchange on this file system: move the old folder aside, then the new one in.
        // NOTE: no test reaches this branch, because the test machines' file systems support RENAME_EXCHANGE.
        const fs::path aside =
            target_.parent_path() / ("." + target_.filename().string() + ".old-" + std::to_string(getpid()));
        fs::remove_all(aside, error);
        fs::rename(target_, aside, error);
        if (error) {
          throw io_error("failed to move the existing " + target_.string() + " aside: " + error.message());
        }
        fs::rename(staging_, target_, error);
        if (error) {
          std::error_code restore_error;
          fs::rename(aside, target_, restore_error);
          if (restore_error) {
            throw io_error("failed to move " + staging_.string() + " to " + target_.string() + " (" + error.message() +
                           "), and the previous contents stay at " + aside.string());
          }
          throw io_error("failed to move " + staging_.string() + " to " + target_.string() + ": " + error.message());
        }
        previous_contents = aside;
        cleanup_.reset(aside);
      } else {
        throw io_error("failed to replace " + target_.string() + " with " + staging_.string() + ": " +
                       std::strerror(errno));
      }
    }
    committed_ = true;
    if (previous_contents.empty()) {
      cleanup_.reset();
    }
  }
  spdlog::debug("moved {} to {}", staging_.string(), target_.string());

  if (!previous_contents.empty()) {
    std::error_code error;
    fs::remove_all(previous_contents, error);
    if (error) {
      spdlog::warn("failed to remove the previous contents of {} at {}: {}; remove them by hand", target_.string(),
                   previous_contents.string(), error.message());
    }
    cleanup_.reset();
  }
}

}  // namespace qwen2vl
