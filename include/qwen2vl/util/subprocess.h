// Run a program with an argument vector (no shell) and capture its output.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qwen2vl {

struct ProcessOptions {
  // Variables set in the child on top of this process's environment; an
  // entry replaces a variable of the same name.
  std::vector<std::pair<std::string, std::string>> environment;
  // After this long the child gets SIGKILL and the result has timed_out set.
  // nullopt: wait as long as it runs.
  std::optional<std::chrono::milliseconds> timeout;
};

struct ProcessResult {
  int exit_code = -1;       // the exit status; -1 when a signal ended the process
  int signal = 0;           // the signal that ended the process, 0 if it exited
  bool timed_out = false;   // killed because ProcessOptions::timeout passed
  std::string stdout_text;  // everything the child wrote, as bytes
  std::string stderr_text;

  bool succeeded() const { return exit_code == 0 && signal == 0 && !timed_out; }
};

// This process's environment as NAME=VALUE strings, with `overrides`
// replacing or adding entries: the environment of a child process.
std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& overrides);

// Starts argv[0] (looked up in PATH unless it contains a '/') with `argv`,
// stdin from /dev/null, waits for it and returns its exit status and output.
// Signals that this process ignores or blocks are reset to their defaults in
// the child.
//
// Throws qwen2vl::Error with ExitCode::kMissingDependency when the executable
// is not found or not executable, ExitCode::kUsage for an empty argv and
// ExitCode::kInternal when the process cannot be started for another reason
// (out of memory, too many processes).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace qwen2vl
