// StagedOutputDir: commit, rollback, --force, and removal on SIGINT/SIGTERM
// (in a child process, cli_staged_dir_helper).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <gtest/gtest.h>

#include "cli_test_support.h"
#include "qwen2vl/error.h"
#include "qwen2vl/util/staged_dir.h"

extern char** environ;

namespace qwen2vl {
namespace {

namespace fs = std::filesystem;
using cli_test::list_names;
using cli_test::read_file;
using cli_test::TempDir;
using cli_test::write_file;

std::string staging_name(const std::string& target_name) {
  return "." + target_name + ".partial-" + std::to_string(getpid());
}

TEST(StagedOutputDir, CommitMovesStagingIntoPlace) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  {
    StagedOutputDir output(target, false);
    EXPECT_EQ(output.path(), dir.path() / staging_name("out"));
    EXPECT_TRUE(fs::is_directory(output.path()));
    EXPECT_FALSE(fs::exists(target));
    write_file(output.path() / "model.onnx", "graph");
    output.commit();
    EXPECT_TRUE(output.committed());
  }
  EXPECT_EQ(read_file(target / "model.onnx"), "graph");
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

TEST(StagedOutputDir, ExceptionRemovesStaging) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  try {
    StagedOutputDir output(target, false);
    write_file(output.path() / "model.onnx", "partial");
    throw std::runtime_error("lowering failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(list_names(dir.path()).empty());
}

TEST(StagedOutputDir, RejectsNonEmptyTargetWithoutForce) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  fs::create_directory(target);
  write_file(target / "old.txt", "old");

  try {
    StagedOutputDir output(target, false);
    FAIL() << "expected qwen2vl::Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(error.what()).find(target.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("--force"), std::string::npos) << error.what();
  }
  EXPECT_EQ(read_file(target / "old.txt"), "old");
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

TEST(StagedOutputDir, EmptyTargetNeedsNoForce) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  fs::create_directory(target);
  {
    StagedOutputDir output(target, false);
    write_file(output.path() / "model.onnx", "graph");
    output.commit();
  }
  EXPECT_EQ(list_names(target), std::vector<std::string>{"model.onnx"});
}

TEST(StagedOutputDir, ForceReplacesNonEmptyTarget) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  fs::create_directory(target);
  write_file(target / "old.txt", "old");
  {
    StagedOutputDir output(target, true);
    EXPECT_EQ(read_file(target / "old.txt"), "old") << "the old folder must stay until commit";
    write_file(output.path() / "new.txt", "new");
    output.commit();
  }
  EXPECT_EQ(list_names(target), std::vector<std::string>{"new.txt"});
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

TEST(StagedOutputDir, ForceWithExceptionKeepsOldTarget) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  fs::create_directory(target);
  write_file(target / "old.txt", "old");
  try {
    StagedOutputDir output(target, true);
    write_file(output.path() / "new.txt", "new");
    throw std::runtime_error("validation failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(list_names(target), std::vector<std::string>{"old.txt"});
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

TEST(StagedOutputDir, RejectsFileTargetEvenWithForce) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  write_file(target, "a file");
  for (bool force : {false, true}) {
    try {
      StagedOutputDir output(target, force);
      FAIL() << "expected qwen2vl::Error with force " << force;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ExitCode::kUsage);
      EXPECT_NE(std::string(error.what()).find("not a folder"), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(read_file(target), "a file");
}

TEST(StagedOutputDir, CreatesParentsAndAcceptsTrailingSlash) {
  TempDir dir;
  const fs::path target = dir.path() / "a" / "b" / "out";
  {
    StagedOutputDir output(target.string() + "/", false);
    EXPECT_EQ(output.target(), target);
    EXPECT_EQ(output.path().parent_path(), target.parent_path());
    output.commit();
  }
  EXPECT_TRUE(fs::is_directory(target));
}

TEST(StagedOutputDir, SecondWriterOfSameTargetIsRejected) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  StagedOutputDir first(target, false);
  EXPECT_THROW(StagedOutputDir second(target, false), Error);
  EXPECT_TRUE(fs::is_directory(first.path()));
}

TEST(CheckOutputTarget, AcceptsMissingAndEmpty) {
  TempDir dir;
  EXPECT_NO_THROW(check_output_target(dir.path() / "missing", false));
  fs::create_directory(dir.path() / "empty");
  EXPECT_NO_THROW(check_output_target(dir.path() / "empty", false));
  fs::create_directory(dir.path() / "full");
  write_file(dir.path() / "full" / "x", "x");
  EXPECT_THROW(check_output_target(dir.path() / "full", false), Error);
  EXPECT_NO_THROW(check_output_target(dir.path() / "full", true));
}

// A running cli_staged_dir_helper with its stdout connected to a pipe.
class HelperProcess {
 public:
  explicit HelperProcess(const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);

    std::vector<std::string> argv_storage = {QWEN2VL_STAGED_DIR_HELPER};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_storage) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    const int status = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    stdout_fd_ = pipe_fds[0];
    if (status != 0) {
      ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(status);
      pid_ = -1;
    }
  }

  ~HelperProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) {
      close(stdout_fd_);
    }
  }

  // The first line the helper prints, or "" after 30 s.
  std::string read_line() {
    std::string line;
    while (line.empty() || line.back() != '\n') {
      pollfd poll_fd{stdout_fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, 30000) <= 0) {
        return "";
      }
      char c = 0;
      if (read(stdout_fd_, &c, 1) != 1) {
        return "";
      }
      line.push_back(c);
    }
    line.pop_back();
    return line;
  }

  // Send `signal_number` and return the exit status, or -1 when the helper
  // did not exit normally.
  int signal_and_wait(int signal_number) {
    kill(pid_, signal_number);
    return wait_for_exit();
  }

  int wait_for_exit() {
    int status = 0;
    const pid_t waited = waitpid(pid_, &status, 0);
    pid_ = -1;
    if (waited <= 0 || !WIFEXITED(status)) {
      return -1;
    }
    return WEXITSTATUS(status);
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

void expect_interrupt_keeps_old_target(int signal_number) {
  TempDir dir;
  const fs::path target = dir.path() / "out";
  fs::create_directory(target);
  write_file(target / "old.txt", "old");

  HelperProcess helper({target.string(), "wait", "--force"});
  const fs::path staging = helper.read_line();
  ASSERT_FALSE(staging.empty()) << "the helper printed no staging folder";
  EXPECT_EQ(staging.parent_path(), dir.path());
  EXPECT_TRUE(fs::exists(staging / "new.txt"));

  EXPECT_EQ(helper.signal_and_wait(signal_number), static_cast<int>(ExitCode::kInterrupted));
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
  EXPECT_EQ(list_names(target), std::vector<std::string>{"old.txt"});
  EXPECT_EQ(read_file(target / "old.txt"), "old");
}

TEST(StagedOutputInterrupt, SigintRemovesStagingKeepsOldTarget) { expect_interrupt_keeps_old_target(SIGINT); }

TEST(StagedOutputInterrupt, SigtermRemovesStagingKeepsOldTarget) { expect_interrupt_keeps_old_target(SIGTERM); }

TEST(StagedOutputInterrupt, SigintWithoutTargetLeavesNothing) {
  TempDir dir;
  HelperProcess helper({(dir.path() / "out").string(), "wait"});
  ASSERT_FALSE(helper.read_line().empty());
  EXPECT_EQ(helper.signal_and_wait(SIGINT), static_cast<int>(ExitCode::kInterrupted));
  EXPECT_TRUE(list_names(dir.path()).empty());
}

TEST(StagedOutputInterrupt, HelperCommitsWithoutSignal) {
  TempDir dir;
  HelperProcess helper({(dir.path() / "out").string(), "commit"});
  ASSERT_FALSE(helper.read_line().empty());
  EXPECT_EQ(helper.wait_for_exit(), 0);
  EXPECT_EQ(read_file(dir.path() / "out" / "new.txt"), "new\n");
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"out"});
}

}  // namespace
}  // namespace qwen2vl
