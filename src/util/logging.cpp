#include "qwen2vl/util/logging.h"

#include <cstdlib>
#include <memory>
#include <mutex>

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include "qwen2vl/util/progress.h"

namespace qwen2vl {
namespace {

// Forwards to a colored stderr sink with the progress bar line cleared, so a
// log line never lands in the middle of a bar.
class ProgressAwareSink : public spdlog::sinks::sink {
 public:
  explicit ProgressAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& message) override {
    detail::with_progress_cleared([&] { inner_->log(message); });
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

struct LevelName {
  const char* name;
  spdlog::level::level_enum level;
};

constexpr LevelName kLevels[] = {
    {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},   {"error", spdlog::level::err},
};

spdlog::color_mode color_mode_from_environment() {
  // https://no-color.org: any non-empty NO_COLOR turns colors off.
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') {
    return spdlog::color_mode::never;
  }
  return spdlog::color_mode::automatic;
}

}  // namespace

const std::vector<std::string>& log_level_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> result;
    for (const auto& entry : kLevels) {
      result.emplace_back(entry.name);
    }
    return result;
  }();
  return names;
}

std::optional<spdlog::level::level_enum> parse_log_level(const std::string& name) {
  for (const auto& entry : kLevels) {
    if (name == entry.name) {
      return entry.level;
    }
  }
  return std::nullopt;
}

void setup_logging(spdlog::level::level_enum level) {
  static std::mutex setup_mutex;
  static std::shared_ptr<spdlog::logger> logger;
  std::lock_guard<std::mutex> lock(setup_mutex);

  if (!logger) {
    auto colored = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(color_mode_from_environment());
    logger = std::make_shared<spdlog::logger>("qwen2vl", std::make_shared<ProgressAwareSink>(colored));
    spdlog::set_default_logger(logger);
  }

  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  if (level <= spdlog::level::debug) {
    logger->set_pattern("[%H:%M:%S.%e] %^%l%$: %v");
  } else {
    logger->set_pattern("%^%l%$: %v");
  }
}

}  // namespace qwen2vl
