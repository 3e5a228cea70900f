#include "qwen2vl/util/subprocess.h"

#include <signal.h>

#include <chrono>

#include <gtest/gtest.h>

#include "qwen2vl/error.h"

namespace qwen2vl {
namespace {

TEST(Subprocess, CapturesStdoutStderrAndExitCode) {
  ProcessResult result = run_process({"/bin/sh", "-c", "printf out; printf err >&2; exit 4"});
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_EQ(result.signal, 0);
  EXPECT_FALSE(result.timed_out);
  EXPECT_FALSE(result.succeeded());
  EXPECT_EQ(result.stdout_text, "out");
  EXPECT_EQ(result.stderr_text, "err");
}

TEST(Subprocess, ArgumentsPassedWithoutShell) {
  ProcessResult result = run_process({"printf", "%s|", "a b", "$HOME", "*"});
  EXPECT_TRUE(result.succeeded());
  EXPECT_EQ(result.stdout_text, "a b|$HOME|*|");
}

TEST(Subprocess, LargeOutputOnBothStreams) {
  // More than a pipe buffer (64 KiB) on each stream at once must not deadlock.
  ProcessResult result =
      run_process({"/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2; head -c 300000 /dev/zero"});
  EXPECT_TRUE(result.succeeded());
  EXPECT_EQ(result.stdout_text.size(), 600000u);
  EXPECT_EQ(result.stderr_text.size(), 200000u);
}

TEST(Subprocess, EnvironmentOverride) {
  ProcessOptions options;
  options.environment = {{"QWEN2VL_SUBPROCESS_TEST", "set by the test"}, {"HOME", "/replaced"}};
  ProcessResult result = run_process({"/bin/sh", "-c", "printf '%s,%s' \"$QWEN2VL_SUBPROCESS_TEST\" \"$HOME\""}, options);
  EXPECT_EQ(result.stdout_text, "set by the test,/replaced");
}

TEST(Subprocess, StdinIsEmpty) {
  ProcessResult result = run_process({"cat"});
  EXPECT_TRUE(result.succeeded());
  EXPECT_EQ(result.stdout_text, "");
}

TEST(Subprocess, MissingExecutableThrows) {
  try {
    run_process({"qwen2vl-no-such-program", "--version"});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kMissingDependency);
    EXPECT_NE(std::string(error.what()).find("qwen2vl-no-such-program"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("not found"), std::string::npos) << error.what();
  }
  try {
    run_process({"/nonexistent/bin/python3"});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kMissingDependency);
  }
}

TEST(Subprocess, EmptyArgvThrows) {
  EXPECT_THROW(run_process({}), Error);
}

TEST(Subprocess, SignalReported) {
  ProcessResult result = run_process({"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(result.signal, SIGTERM);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_FALSE(result.succeeded());
}

TEST(Subprocess, TimeoutKillsChild) {
  ProcessOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  ProcessResult result = run_process({"sleep", "30"}, options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(Subprocess, TimeoutAfterOutputClosed) {
  // The child closes both pipes and keeps running: the deadline still applies.
  ProcessOptions options;
  options.timeout = std::chrono::milliseconds(200);
  ProcessResult result = run_process({"/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"}, options);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.signal, SIGKILL);
}

TEST(Subprocess, FastChildWithinTimeout) {
  ProcessOptions options;
  options.timeout = std::chrono::seconds(30);
  ProcessResult result = run_process({"/bin/sh", "-c", "printf done; exit 3"}, options);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.stdout_text, "done");
}

}  // namespace
}  // namespace qwen2vl
