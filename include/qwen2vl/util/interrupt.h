// SIGINT and SIGTERM handling: remove partial output, then exit with
// ExitCode::kInterrupted (130).
//
// The signal handler itself only writes the signal number to a pipe, because
// removing a folder tree is not async-signal-safe. A watcher thread reads the
// pipe, removes every path registered with ScopedCleanupPath, logs what it
// removed and ends the process with _exit(130), so destructors do not run.
// Signal masks are not changed, and child processes get the default handlers
// after exec as usual.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>

namespace qwen2vl {

// Install the handlers and start the watcher thread. Call once, early in
// main(). A signal that was ignored when the process started (for example
// SIGINT in a job that a shell started with `&`) stays ignored. Later calls
// do nothing.
void install_interrupt_handler();

// Flush stdout, stderr and the default logger, then end the process with
// `exit_code` through _exit. It holds the interrupt lock meanwhile, so a
// signal that arrives during the exit is either handled completely before it
// or not at all. Returning from main() instead would run static destructors
// (spdlog's registry, LibTorch's globals) while the watcher thread may still
// use them, which crashed the process.
[[noreturn]] void exit_process(int exit_code);

// While alive, registers `path` for recursive removal when SIGINT or SIGTERM
// ends the process. Without install_interrupt_handler() nothing is removed.
class ScopedCleanupPath {
 public:
  ScopedCleanupPath() = default;
  explicit ScopedCleanupPath(std::filesystem::path path);
  ~ScopedCleanupPath();
  ScopedCleanupPath(const ScopedCleanupPath&) = delete;
  ScopedCleanupPath& operator=(const ScopedCleanupPath&) = delete;

  // Register `path` in place of the current one; an empty path registers nothing.
  void reset(std::filesystem::path path = {});
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// While alive, registers the child process `pid` to receive SIGTERM when
// SIGINT or SIGTERM ends this process, before any path is removed. A child
// that runs in this process group already receives a Ctrl-C itself, but not a
// signal sent to this process alone (kill, a batch stopping its rows).
class ScopedChildProcess {
 public:
  explicit ScopedChildProcess(int pid);
  ~ScopedChildProcess();
  ScopedChildProcess(const ScopedChildProcess&) = delete;
  ScopedChildProcess& operator=(const ScopedChildProcess&) = delete;

 private:
  int pid_;
};

// While alive, the first SIGINT or SIGTERM calls `on_signal(signal_number)`
// on the watcher thread instead of cleaning up and exiting, so that a process
// that supervises children (the batch runner) can stop them and still write
// its report. A second signal ends the process as usual. At most one observer
// may be alive at a time.
class ScopedInterruptObserver {
 public:
  explicit ScopedInterruptObserver(std::function<void(int)> on_signal);
  ~ScopedInterruptObserver();
  ScopedInterruptObserver(const ScopedInterruptObserver&) = delete;
  ScopedInterruptObserver& operator=(const ScopedInterruptObserver&) = delete;
};

// While alive, an interrupt waits before it removes anything, so that a
// sequence of renames (StagedOutputDir::commit) is never cut in half. Keep it
// short: the process cannot be interrupted while one is held. Re-entrant.
class InterruptCriticalSection {
 public:
  InterruptCriticalSection();
  ~InterruptCriticalSection();
  InterruptCriticalSection(const InterruptCriticalSection&) = delete;
  InterruptCriticalSection& operator=(const InterruptCriticalSection&) = delete;

 private:
  std::unique_lock<std::recursive_mutex> lock_;
};

}  // namespace qwen2vl
