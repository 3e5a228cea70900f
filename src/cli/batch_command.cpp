#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "validators.h"
#include "qwen2vl/batch/batch_report.h"
#include "qwen2vl/batch/conflicts.h"
#include "qwen2vl/batch/manifest.h"
#include "qwen2vl/batch/runner.h"
#include "qwen2vl/batch/shard.h"
#include "qwen2vl/error.h"
#include "qwen2vl/export/options.h"
#include "qwen2vl/util/atomic_file.h"
#include "qwen2vl/util/logging.h"
#include "qwen2vl/util/path_checks.h"

namespace qwen2vl::cli {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kMaxJobs = 64;

// This executable, which runs every row as `qwen2vl-export export`.
fs::path own_executable() {
  std::error_code error;
  fs::path path = fs::read_symlink("/proc/self/exe", error);
  if (error) {
    throw Error(ExitCode::kInternal, "cannot find the qwen2vl-export executable (/proc/self/exe: " + error.message() + ")");
  }
  return path;
}

// The --log-level name of spdlog's current level, for the rows' command lines.
std::string current_log_level() {
  for (const std::string& name : log_level_names()) {
    if (parse_log_level(name) == spdlog::get_level()) return name;
  }
  return "error";  // spdlog's critical and off: only errors matter then
}

fs::path default_report(const batch::Shard& shard) {
  if (shard.whole()) return "batch_report.json";
  return "batch_report.shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".json";
}

// "out/batch_report.json" -> "out/batch_report.logs"
fs::path default_log_dir(const fs::path& report) {
  fs::path logs = report;
  logs.replace_extension(".logs");
  return logs;
}

void write_report(const fs::path& path, const nlohmann::json& report) {
  write_file_atomically(path, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                        "the batch report");
}

// An exclusive flock(2) on the log folder for the life of the batch, so that
// two batches with one report and log folder do not overwrite each other.
class LogFolderLock {
 public:
  explicit LogFolderLock(const fs::path& folder) {
    std::error_code error;
    fs::create_directories(folder, error);
    fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      throw io_error("cannot open the log folder " + folder.string() + ": " + std::strerror(errno) +
                     "; pass --log-dir with a writable folder");
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error(ExitCode::kUsage, "another qwen2vl-export batch is using the log folder " + folder.string() +
                                        "; wait for it to finish, or pass another --report or --log-dir");
    }
  }
  ~LogFolderLock() { ::close(fd_); }
  LogFolderLock(const LogFolderLock&) = delete;
  LogFolderLock& operator=(const LogFolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

BatchCommand::BatchCommand(CLI::App& app) {
  command_ = app.add_subcommand("batch", "run many exports listed in a JSON or CSV manifest, one process per row");
  command_->add_option("MANIFEST", manifest_, "rows of model, config, task, output (see docs/batch.md); relative "
                                              "paths are relative to the manifest's folder")
      ->type_name("FILE")
      ->required();
  command_->add_option("--jobs,-j", jobs_, "rows to export at the same time; each holds about one copy of its "
                                           "model in memory")
      ->check(whole_number_in(1, kMaxJobs))
      ->capture_default_str();
  command_->add_option("--shard", shard_, "run only shard K of N: the rows at 0-based positions p with p mod N == K "
                                          "(for Slurm job arrays, Kubernetes indexed Jobs, ...)")
      ->type_name("K/N")
      ->check(CLI::Validator(
          [](std::string& value) {
            batch::Shard shard;
            return batch::parse_shard(value, shard);
          },
          "", "shard"));
  command_->add_option("--task", default_task_, "task of the rows that do not name one")
      ->check(CLI::IsMember(supported_tasks()))
      ->capture_default_str();
  command_->add_option("--report", report_, "batch report to write (default: batch_report.json, or "
                                            "batch_report.shard-K-of-N.json with --shard, in the current folder)")
      ->type_name("FILE");
  command_->add_option("--log-dir", log_dir_, "folder for each row's log and export report (default: the report's "
                                              "path with .logs in place of .json)")
      ->type_name("DIR");
  command_->add_flag("--no-resume", no_resume_, "export every row, even one whose output already holds a finished "
                                                "export of the same inputs (replacing it needs --force)");
  command_->add_flag("--force", force_, "let rows replace output folders that exist and are not empty");
  command_->add_flag("--no-validate", no_validate_, "skip the ONNX Runtime check of every row");
  command_->add_option("--atol", atol_, "tolerance of every row's validation, as for export")
      ->check(positive_number())
      ->capture_default_str();
  command_->add_flag("--allow-static-vision", allow_static_vision_, "as for export, for every row");
  command_->add_option("--python", python_, "as for export, for every row")->type_name("PATH");
  command_->footer(
      "Each row runs as its own 'qwen2vl-export export' process, so a row that fails, crashes or runs out of memory "
      "does not stop the others. A row is skipped when its output folder already holds a finished export of the "
      "same model and config files (same size and SHA-256) with the same task and settings, so running the same "
      "command again after an interruption resumes the batch.\n\n"
      "Examples:\n"
      "  qwen2vl-export batch --jobs 2 models.csv\n"
      "  qwen2vl-export batch --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT models.json\n"
      "Exit code 8 when a row failed; see qwen2vl-export --help for the others.");
}

int BatchCommand::run() const {
  batch::Shard shard;
  if (!shard_.empty()) {
    const std::string problem = batch::parse_shard(shard_, shard);
    if (!problem.empty()) throw Error(ExitCode::kUsage, "--shard: " + problem);
  }
  const batch::Manifest manifest = batch::read_manifest(fs::absolute(manifest_), {supported_tasks(), default_task_});
  const std::vector<batch::ManifestRow> rows = batch::select_shard(manifest.rows, shard);

  batch::RunSettings settings;
  settings.executable = own_executable();
  settings.log_level = current_log_level();
  settings.jobs = jobs_;
  settings.resume = !no_resume_;
  settings.force = force_;
  settings.validate = !no_validate_;
  settings.atol = atol_;
  settings.allow_static_vision = allow_static_vision_;
  settings.python = python_;
  const fs::path report = fs::absolute(report_.empty() ? default_report(shard) : report_);
  settings.log_dir = fs::absolute(log_dir_.empty() ? default_log_dir(report) : log_dir_);

  check_report_target(report, {{manifest.path, "the manifest"}}, "--report");
  batch::check_path_conflicts(
      manifest, {{manifest.path, "the manifest"}, {report, "the batch report"}, {settings.log_dir, "the log folder"}},
      report);
  check_writable(report, "the batch report", "--report");
  const LogFolderLock lock(settings.log_dir);

  spdlog::info("batch {}: {} of {} row(s){}, {} at a time; report {}", manifest.path.string(), rows.size(),
               manifest.rows.size(), shard.whole() ? "" : " in shard " + shard.to_string(), settings.jobs,
               report.string());
  if (rows.empty()) {
    spdlog::warn("shard {} contains none of the {} rows in {}", shard.to_string(), manifest.rows.size(),
                 manifest.path.string());
  }

  // A report before the first row starts, so that a batch killed later still leaves one.
  batch::BatchResult pending;
  for (const auto& row : rows) {
    batch::RowResult result;
    result.row = row;
    pending.rows.push_back(std::move(result));
  }
  nlohmann::json initial = batch::batch_report_json(manifest, shard, settings, pending);
  initial["status"] = "running";
  write_report(report, initial);

  const batch::BatchResult result = batch::run_batch(rows, settings);
  write_report(report, batch::batch_report_json(manifest, shard, settings, result));
  spdlog::info("batch summary (report {}):\n{}", report.string(), batch::format_summary_table(result));

  if (result.interrupt_signal != 0) {
    const char* name = result.interrupt_signal == SIGTERM ? "SIGTERM" : "SIGINT";
    throw Error(ExitCode::kInterrupted, "interrupted by " + std::string(name) +
                                            "; finished rows are kept: run the same command again to resume");
  }
  if (result.count("failed") > 0) {
    spdlog::error("{} of {} row(s) failed; the log of each is in {}", result.count("failed"), rows.size(),
                  settings.log_dir.string());
    return static_cast<int>(ExitCode::kBatchRowsFailed);
  }
  return static_cast<int>(ExitCode::kSuccess);
}

}  // namespace qwen2vl::cli
