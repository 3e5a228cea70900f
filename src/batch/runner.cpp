#include "qwen2vl/batch/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "qwen2vl/batch/resume.h"
#include "qwen2vl/error.h"
#include "qwen2vl/util/format.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/subprocess.h"

namespace qwen2vl::batch {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string format_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// The last "error: ..." line of a row's log, without the prefix.
std::string last_error_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    if (line.rfind("error: ", 0) == 0) found = line.substr(7);
  }
  return found;
}

nlohmann::json read_report(const fs::path& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return nullptr;
  try {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Start `argv` with stdout and stderr appended to `log` and stdin from /dev/null.
pid_t spawn_row(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);

  std::vector<std::string> arguments = argv;
  std::vector<char*> pointers;
  for (auto& argument : arguments) pointers.push_back(argument.data());
  pointers.push_back(nullptr);

  // The row's export stops when the batch dies without a chance to stop it
  // (SIGKILL, the OOM killer); see exit_with_parent in main.cpp.
  std::vector<std::string> environment = child_environment({{kParentPidVariable, std::to_string(::getpid())}});
  std::vector<char*> environment_pointers;
  for (auto& entry : environment) environment_pointers.push_back(entry.data());
  environment_pointers.push_back(nullptr);

  pid_t pid = -1;
  const int status = posix_spawn(&pid, arguments.front().c_str(), &actions, nullptr, pointers.data(),
                                 environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  if (status != 0) {
    throw Error(ExitCode::kInternal, "cannot start " + arguments.front() + ": " + std::strerror(status));
  }
  return pid;
}

// Rows that are running, shared with the interrupt observer.
class RunningRows {
 public:
  void add(pid_t pid, size_t index) {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_[pid] = index;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return rows_.size();
  }
  // Wait for any row to end; returns its index and wait status.
  std::pair<size_t, int> wait_any() {
    while (true) {
      siginfo_t info{};
      // WNOWAIT leaves the child a zombie, so its pid cannot be reused while
      // forward() might still signal it.
      if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
        if (errno == EINTR) continue;
        throw Error(ExitCode::kInternal, std::string("waiting for a row's export failed: ") + std::strerror(errno));
      }
      std::lock_guard<std::mutex> lock(mutex_);
      int status = 0;
      waitpid(info.si_pid, &status, 0);
      auto found = rows_.find(info.si_pid);
      if (found == rows_.end()) continue;  // not one of ours
      const size_t index = found->second;
      rows_.erase(found);
      return {index, status};
    }
  }
  void forward(int signal_number) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [pid, index] : rows_) kill(pid, signal_number);
  }

 private:
  std::mutex mutex_;
  std::map<pid_t, size_t> rows_;
};

void record_exit(RowResult& result, int status, bool interrupted) {
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  if (result.exit_code == 0) {
    result.status = "ok";
  } else if (interrupted && (result.exit_code == static_cast<int>(ExitCode::kInterrupted) ||
                             result.signal == SIGINT || result.signal == SIGTERM)) {
    result.status = "interrupted";
  } else {
    result.status = "failed";
  }
  if (result.status == "ok") return;
  if (result.status == "interrupted") {
    result.detail = "stopped by the interrupt; its partial output was removed";
    return;
  }
  result.detail = last_error_line(result.log);
  if (result.detail.empty()) {
    result.detail = result.signal != 0 ? std::string("ended by signal ") + strsignal(result.signal)
                                       : "exit code " + std::to_string(result.exit_code) + " without an error line";
  }
}

std::string how_it_ended(const RowResult& result) {
  if (result.signal != 0) return std::string("signal ") + strsignal(result.signal);
  return "exit code " + std::to_string(result.exit_code);
}

std::string progress_prefix(const RowResult& result, size_t finished, size_t total) {
  return "[" + std::to_string(finished) + "/" + std::to_string(total) + "] row " + std::to_string(result.row.number);
}

}  // namespace

int64_t BatchResult::count(const std::string& status) const {
  int64_t total = 0;
  for (const auto& row : rows) total += row.status == status ? 1 : 0;
  return total;
}

std::vector<std::string> export_command_line(const ManifestRow& row, const RunSettings& settings,
                                             const fs::path& report) {
  std::vector<std::string> argv = {settings.executable.string(), "--log-level", settings.log_level, "export",
                                   "--model", row.model.string(), "--task", row.task, "--report", report.string()};
  if (!row.config.empty()) argv.insert(argv.end(), {"--config", row.config.string()});
  if (settings.validate) {
    argv.insert(argv.end(), {"--atol", format_number(settings.atol)});
  } else {
    argv.push_back("--no-validate");
  }
  if (settings.force) argv.push_back("--force");
  if (settings.allow_static_vision) argv.push_back("--allow-static-vision");
  if (!settings.python.empty()) argv.insert(argv.end(), {"--python", settings.python});
  argv.push_back(row.output.string());
  return argv;
}

BatchResult run_batch(const std::vector<ManifestRow>& rows, const RunSettings& settings) {
  const auto started = Clock::now();
  std::error_code error;
  fs::create_directories(settings.log_dir, error);
  if (error) {
    throw io_error("cannot create the log folder " + settings.log_dir.string() + ": " + error.message() +
                   "; pass --log-dir with a writable folder");
  }

  BatchResult batch;
  for (const auto& row : rows) {
    RowResult result;
    result.row = row;
    result.log = settings.log_dir / ("row-" + std::to_string(row.number) + ".log");
    batch.rows.push_back(std::move(result));
  }

  RunningRows running;
  std::atomic<int> interrupt_signal{0};
  ScopedInterruptObserver observer([&](int signal_number) {
    interrupt_signal = signal_number;
    spdlog::warn("interrupted: stopping the running rows; press Ctrl-C again to exit at once");
    running.forward(signal_number);
  });

  std::vector<Clock::time_point> row_started(rows.size());
  const size_t total = rows.size();
  size_t next = 0;
  size_t finished = 0;
  while (true) {
    while (interrupt_signal == 0 && next < total && running.size() < static_cast<size_t>(settings.jobs)) {
      RowResult& result = batch.rows[next];
      const size_t index = next++;
      if (settings.resume) {
        ResumeCheck check = check_finished_output(result.row, settings);
        if (check.up_to_date) {
          result.status = "skipped";
          result.detail = check.reason;
          result.report = read_report(result.row.output / "export_report.json");
          spdlog::info("{}: skipped, {} is up to date", progress_prefix(result, ++finished, total),
                       result.row.output.string());
          continue;
        }
        result.resume_check = check.reason;
        spdlog::debug("row {}: {}", result.row.number, check.reason);
      }
      const fs::path report = settings.log_dir / ("row-" + std::to_string(result.row.number) + ".report.json");
      fs::remove(report, error);
      row_started[index] = Clock::now();
      try {
        running.add(spawn_row(export_command_line(result.row, settings, report), result.log), index);
      } catch (const Error& failure) {
        result.status = "failed";
        result.detail = failure.what();
        spdlog::error("{}: {}", progress_prefix(result, ++finished, total), result.detail);
        continue;
      }
      spdlog::info("row {}: exporting {} ({}) to {}", result.row.number, result.row.model.string(), result.row.task,
                   result.row.output.string());
    }
    if (running.size() == 0) break;

    auto [index, status] = running.wait_any();
    RowResult& result = batch.rows[index];
    result.seconds = std::chrono::duration<double>(Clock::now() - row_started[index]).count();
    record_exit(result, status, interrupt_signal != 0);
    result.report = read_report(settings.log_dir / ("row-" + std::to_string(result.row.number) + ".report.json"));
    const std::string prefix = progress_prefix(result, ++finished, total);
    const std::string took = format_duration(std::chrono::seconds(static_cast<int64_t>(result.seconds)));
    if (result.status == "ok") {
      spdlog::info("{}: ok in {}, {}", prefix, took, result.row.output.string());
    } else if (result.status == "interrupted") {
      spdlog::warn("{}: interrupted after {}", prefix, took);
    } else {
      spdlog::error("{}: failed with {} after {}: {} (log: {})", prefix, how_it_ended(result), took,
                    result.detail, result.log.string());
    }
  }

  batch.interrupt_signal = interrupt_signal;
  batch.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return batch;
}

}  // namespace qwen2vl::batch
