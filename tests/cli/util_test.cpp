// Unit tests of src/util: formatting, log levels and progress rendering.
#include <memory>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "qwen2vl/util/format.h"
#include "qwen2vl/util/logging.h"
#include "qwen2vl/util/progress.h"

namespace qwen2vl {
namespace {

TEST(Format, BytesUseBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.00 KiB");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(uint64_t{27} * 512 * 1024), "13.5 MiB");
  EXPECT_EQ(format_bytes(uint64_t{512} << 30), "512 GiB");
}

TEST(Format, DurationMinutesAndHours) {
  EXPECT_EQ(format_duration(std::chrono::seconds(0)), "0:00");
  EXPECT_EQ(format_duration(std::chrono::seconds(65)), "1:05");
  EXPECT_EQ(format_duration(std::chrono::seconds(3661)), "1:01:01");
  EXPECT_EQ(format_duration(std::chrono::seconds(-5)), "0:00");
}

TEST(Format, CountThousandsSeparators) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(999), "999");
  EXPECT_EQ(format_count(1000), "1,000");
  EXPECT_EQ(format_count(2208985600), "2,208,985,600");
}

TEST(Format, OneLineCollapsesWhitespace) {
  EXPECT_EQ(one_line("  first\n  second\r\n\tthird  "), "first second third");
  EXPECT_EQ(one_line(""), "");
  EXPECT_EQ(one_line("\n\n"), "");
}

TEST(Logging, ParsesEveryLevelName) {
  EXPECT_EQ(log_level_names(), (std::vector<std::string>{"trace", "debug", "info", "warn", "error"}));
  EXPECT_EQ(parse_log_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("debug"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("info"), spdlog::level::info);
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_FALSE(parse_log_level("warning").has_value());
  EXPECT_FALSE(parse_log_level("INFO").has_value());
}

ProgressSnapshot half_done_bytes() {
  ProgressSnapshot snapshot;
  snapshot.label = "writing weights";
  snapshot.unit = ProgressUnit::kBytes;
  snapshot.total = uint64_t{30} << 20;
  snapshot.done = uint64_t{15} << 20;
  snapshot.elapsed = std::chrono::seconds(10);
  return snapshot;
}

TEST(ProgressRender, BarShowsPercentAmountAndEta) {
  const std::string bar = render_progress_bar(half_done_bytes(), 100);
  EXPECT_NE(bar.find("writing weights ["), std::string::npos) << bar;
  EXPECT_NE(bar.find(" 50%"), std::string::npos) << bar;
  EXPECT_NE(bar.find("15.0 MiB/30.0 MiB"), std::string::npos) << bar;
  EXPECT_NE(bar.find("ETA 0:10"), std::string::npos) << bar;
  EXPECT_LT(bar.size(), 100u);
}

TEST(ProgressRender, BarFitsNarrowTerminal) {
  for (int width : {20, 40, 60}) {
    const std::string bar = render_progress_bar(half_done_bytes(), width);
    EXPECT_LE(static_cast<int>(bar.size()), std::max(width - 1, 20)) << bar;
  }
}

TEST(ProgressRender, UnknownTotalHasNoBar) {
  ProgressSnapshot snapshot;
  snapshot.label = "lowering";
  snapshot.done = 1234;
  const std::string bar = render_progress_bar(snapshot, 100);
  EXPECT_EQ(bar.find('['), std::string::npos) << bar;
  EXPECT_NE(bar.find("1,234"), std::string::npos) << bar;
  EXPECT_EQ(render_progress_line(snapshot), "lowering: 1,234 done");
}

TEST(ProgressRender, LineShowsPercentAndEta) {
  EXPECT_EQ(render_progress_line(half_done_bytes()), "writing weights: 50% (15.0 MiB of 30.0 MiB), ETA 0:10");

  ProgressSnapshot items;
  items.label = "validation";
  items.total = 4;
  items.done = 1;
  EXPECT_EQ(render_progress_line(items), "validation: 25% (1 of 4), ETA --:--");
}

// Captures what spdlog's default logger writes while alive.
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level) : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_pattern("%l: %v");
    logger->set_level(level);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

TEST(Progress, LinesModeLogsStepsAndDone) {
  CapturedLog log(spdlog::level::info);
  set_progress_mode(ProgressMode::kLines);
  set_progress_line_interval(std::chrono::milliseconds(0));
  {
    Progress progress("validation", 2);
    progress.advance();
    progress.advance();
    progress.finish();
  }
  set_progress_mode(ProgressMode::kAuto);
  set_progress_line_interval(std::chrono::milliseconds(5000));

  const std::string text = log.text();
  EXPECT_NE(text.find("info: validation: 50% (1 of 2)"), std::string::npos) << text;
  EXPECT_NE(text.find("info: validation: done, 2 in 0:00"), std::string::npos) << text;
}

TEST(Progress, DestructorWithoutFinishLogsNoDone) {
  CapturedLog log(spdlog::level::info);
  set_progress_mode(ProgressMode::kLines);
  {
    Progress progress("loading", 10);
    progress.advance(3);
  }
  set_progress_mode(ProgressMode::kAuto);
  EXPECT_EQ(log.text().find("done"), std::string::npos) << log.text();
}

TEST(Progress, QuietLevelShowsNothing) {
  CapturedLog log(spdlog::level::warn);
  set_progress_mode(ProgressMode::kLines);
  set_progress_line_interval(std::chrono::milliseconds(0));
  {
    Progress progress("loading", 10);
    progress.advance(5);
    progress.finish();
  }
  set_progress_mode(ProgressMode::kAuto);
  set_progress_line_interval(std::chrono::milliseconds(5000));
  EXPECT_EQ(log.text(), "");
}

}  // namespace
}  // namespace qwen2vl
