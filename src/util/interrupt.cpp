#include "qwen2vl/util/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/progress.h"

namespace qwen2vl {
namespace {

// Paths to remove on interrupt, guarded by registry_mutex(). The watcher
// thread holds the mutex from the first removal until _exit, so a
// registration or critical section that starts later waits for the end.
std::vector<const ScopedCleanupPath*> g_registered;
// Child processes to stop on interrupt, also guarded by registry_mutex().
std::vector<int> g_children;

std::recursive_mutex& registry_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

int g_signal_pipe[2] = {-1, -1};

// The ScopedInterruptObserver callback, guarded by g_observer_mutex.
std::mutex g_observer_mutex;
std::function<void(int)> g_observer;
bool g_observer_notified = false;

// Pass the signal to the observer, if one is alive and has not been notified yet.
bool notify_observer(int signal_number) {
  std::function<void(int)> observer;
  {
    std::lock_guard<std::mutex> lock(g_observer_mutex);
    if (!g_observer || g_observer_notified) {
      return false;
    }
    g_observer_notified = true;
    observer = g_observer;
  }
  observer(signal_number);
  return true;
}

extern "C" void on_interrupt_signal(int signal_number) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  // Nothing useful can be done here if the write fails: the watcher may
  // already be exiting.
  [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

// Remove `path` and everything below it. Another thread may still be
// writing into the folder, so remove_all can fail with "directory not
// empty". A few more passes remove the files created meanwhile.
std::error_code remove_tree(const std::filesystem::path& path) {
  std::error_code error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    error.clear();
    std::filesystem::remove_all(path, error);
    if (!error && !std::filesystem::exists(std::filesystem::symlink_status(path, error))) {
      return {};
    }
  }
  return error;
}

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

[[noreturn]] void clean_up_and_exit(int signal_number) {
  const char* name = signal_name(signal_number);

  registry_mutex().lock();  // never unlocked: the process ends below
  // Stop the children first, so that none keeps writing into a folder that is
  // about to be removed.
  for (const int pid : g_children) {
    kill(pid, SIGTERM);
  }
  std::vector<std::string> removed;
  for (const ScopedCleanupPath* registration : g_registered) {
    const std::filesystem::path& path = registration->path();
    if (path.empty()) {
      continue;
    }
    const std::error_code error = remove_tree(path);
    if (error) {
      spdlog::error("interrupted by {}: failed to remove partial output {}: {}; remove it by hand", name,
                    path.string(), error.message());
    } else {
      removed.push_back(path.string());
    }
  }

  std::string joined;
  for (const auto& path : removed) {
    joined += (joined.empty() ? "" : ", ") + path;
  }
  if (removed.empty()) {
    spdlog::warn("interrupted by {}", name);
  } else {
    spdlog::warn("interrupted by {}; removed partial output {}", name, joined);
  }

  detail::clear_progress_line();
  spdlog::default_logger()->flush();
  _exit(static_cast<int>(ExitCode::kInterrupted));
}

void watch_signal_pipe() {
  unsigned char byte = 0;
  while (true) {
    const ssize_t count = read(g_signal_pipe[0], &byte, 1);
    if (count == 1) {
      if (notify_observer(byte)) {
        continue;
      }
      clean_up_and_exit(byte);
    }
    if (count < 0 && errno == EINTR) {
      continue;
    }
    return;  // the pipe closed: nothing more to watch
  }
}

void install_handler(int signal_number) {
  struct sigaction previous {};
  if (sigaction(signal_number, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN) {
    return;
  }

  struct sigaction action {};
  action.sa_handler = on_interrupt_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(signal_number, &action, nullptr);
}

}  // namespace

void install_interrupt_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
      spdlog::warn("cannot handle SIGINT and SIGTERM (pipe2 failed: {}); an interrupted run may leave partial output",
                   std::strerror(errno));
      return;
    }
    std::thread(watch_signal_pipe).detach();
    install_handler(SIGINT);
    install_handler(SIGTERM);
  });
}

void exit_process(int exit_code) {
  registry_mutex().lock();  // never unlocked: the process ends below
  detail::clear_progress_line();
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(exit_code);
}

ScopedCleanupPath::ScopedCleanupPath(std::filesystem::path path) { reset(std::move(path)); }

ScopedCleanupPath::~ScopedCleanupPath() { reset(); }

void ScopedCleanupPath::reset(std::filesystem::path path) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  const bool was_registered = !path_.empty();
  path_ = std::move(path);

  if (was_registered && path_.empty()) {
    g_registered.erase(std::remove(g_registered.begin(), g_registered.end(), this), g_registered.end());
  } else if (!was_registered && !path_.empty()) {
    g_registered.push_back(this);
  }
}

ScopedChildProcess::ScopedChildProcess(int pid) : pid_(pid) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  g_children.push_back(pid_);
}

ScopedChildProcess::~ScopedChildProcess() {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  g_children.erase(std::remove(g_children.begin(), g_children.end(), pid_), g_children.end());
}

ScopedInterruptObserver::ScopedInterruptObserver(std::function<void(int)> on_signal) {
  std::lock_guard<std::mutex> lock(g_observer_mutex);
  g_observer = std::move(on_signal);
  g_observer_notified = false;
}

ScopedInterruptObserver::~ScopedInterruptObserver() {
  std::lock_guard<std::mutex> lock(g_observer_mutex);
  g_observer = nullptr;
}

InterruptCriticalSection::InterruptCriticalSection() : lock_(registry_mutex()) {}

InterruptCriticalSection::~InterruptCriticalSection() = default;

}  // namespace qwen2vl
