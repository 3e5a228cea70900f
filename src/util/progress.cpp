#include "qwen2vl/util/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "qwen2vl/util/format.h"

namespace qwen2vl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kBarRedrawInterval = std::chrono::milliseconds(100);

std::atomic<ProgressMode> g_mode{ProgressMode::kAuto};
std::atomic<int64_t> g_line_interval_ms{5000};

// Terminal state, guarded by detail::terminal_mutex(). Bars are stacked: only
// the newest unfinished one is drawn.
std::vector<Progress*> g_bars;
bool g_bar_visible = false;

int terminal_width() {
  struct winsize size {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  if (const char* columns = std::getenv("COLUMNS")) {
    const int value = std::atoi(columns);
    if (value > 0) {
      return value;
    }
  }
  return 80;
}

bool stderr_is_terminal() {
  if (!isatty(STDERR_FILENO)) {
    return false;
  }
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

ProgressMode resolve_mode() {
  const ProgressMode mode = g_mode.load();
  if (mode == ProgressMode::kOff || !spdlog::default_logger()->should_log(spdlog::level::info)) {
    return ProgressMode::kOff;
  }
  if (mode == ProgressMode::kAuto) {
    return stderr_is_terminal() ? ProgressMode::kBar : ProgressMode::kLines;
  }
  return mode;
}

std::string format_amount(uint64_t value, ProgressUnit unit) {
  return unit == ProgressUnit::kBytes ? format_bytes(value) : format_count(value);
}

int percent(const ProgressSnapshot& snapshot) {
  if (snapshot.total == 0) {
    return 0;
  }
  const double fraction = static_cast<double>(std::min(snapshot.done, snapshot.total)) / snapshot.total;
  return static_cast<int>(fraction * 100.0);
}

// "ETA 0:07" while running, the elapsed time once done, "ETA --:--" until the
// rate is known (after one second and some progress).
std::string format_eta(const ProgressSnapshot& snapshot) {
  const auto elapsed_s = std::chrono::duration_cast<std::chrono::seconds>(snapshot.elapsed);
  if (snapshot.total > 0 && snapshot.done >= snapshot.total) {
    return format_duration(elapsed_s);
  }
  if (snapshot.total == 0 || snapshot.done == 0 || snapshot.elapsed < std::chrono::seconds(1)) {
    return "ETA --:--";
  }
  const double remaining = static_cast<double>(snapshot.total - snapshot.done) / snapshot.done *
                           static_cast<double>(snapshot.elapsed.count()) / 1000.0;
  return "ETA " + format_duration(std::chrono::seconds(static_cast<int64_t>(remaining + 0.5)));
}

void write_stderr(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void set_progress_mode(ProgressMode mode) { g_mode = mode; }

void set_progress_line_interval(std::chrono::milliseconds interval) { g_line_interval_ms = interval.count(); }

std::string render_progress_bar(const ProgressSnapshot& snapshot, int width) {
  std::string amount = format_amount(snapshot.done, snapshot.unit);
  if (snapshot.total > 0) {
    amount += "/" + format_amount(snapshot.total, snapshot.unit);
  }

  std::string tail;
  if (snapshot.total > 0) {
    char pct[8];
    std::snprintf(pct, sizeof(pct), "%3d%%", percent(snapshot));
    tail = std::string(pct) + "  " + amount + "  " + format_eta(snapshot);
  } else {
    tail = amount + "  " + format_duration(std::chrono::duration_cast<std::chrono::seconds>(snapshot.elapsed));
  }

  // Leave the last column free: writing into it makes some terminals wrap.
  const int usable = std::max(width - 1, 20);
  const int bar_width = std::min(40, usable - static_cast<int>(snapshot.label.size() + tail.size()) - 5);

  std::string line = snapshot.label;
  if (snapshot.total > 0 && bar_width >= 10) {
    const int filled = percent(snapshot) * bar_width / 100;
    std::string bar(static_cast<size_t>(bar_width), ' ');
    std::fill_n(bar.begin(), filled, '=');
    if (filled < bar_width) {
      bar[static_cast<size_t>(filled)] = '>';
    }
    line += " [" + bar + "]";
  }
  line += "  " + tail;

  if (static_cast<int>(line.size()) > usable) {
    line.resize(static_cast<size_t>(usable));
  }
  return line;
}

std::string render_progress_line(const ProgressSnapshot& snapshot) {
  if (snapshot.total == 0) {
    return snapshot.label + ": " + format_amount(snapshot.done, snapshot.unit) + " done";
  }
  return snapshot.label + ": " + std::to_string(percent(snapshot)) + "% (" +
         format_amount(snapshot.done, snapshot.unit) + " of " + format_amount(snapshot.total, snapshot.unit) +
         "), " + format_eta(snapshot);
}

Progress::Progress(std::string label, uint64_t total, ProgressUnit unit)
    : mode_(resolve_mode()), start_(Clock::now()), last_report_(start_) {
  state_.label = std::move(label);
  state_.total = total;
  state_.unit = unit;

  if (mode_ == ProgressMode::kBar) {
    std::lock_guard<std::recursive_mutex> lock(detail::terminal_mutex());
    detail::clear_progress_line();
    g_bars.push_back(this);
    detail::redraw_progress_line();
  }
}

Progress::~Progress() { stop(false); }

void Progress::advance(uint64_t amount) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.done += amount;
  }
  report(false);
}

void Progress::update(uint64_t done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.done = done;
  }
  report(false);
}

void Progress::set_total(uint64_t total) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.total = total;
  }
  report(true);
}

ProgressSnapshot Progress::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ProgressSnapshot result = state_;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_);
  return result;
}

void Progress::report(bool force) {
  if (mode_ == ProgressMode::kOff) {
    return;
  }

  const auto now = Clock::now();
  const auto interval = mode_ == ProgressMode::kBar ? std::chrono::milliseconds(kBarRedrawInterval)
                                                    : std::chrono::milliseconds(g_line_interval_ms.load());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_ || (!force && now - last_report_ < interval)) {
      return;
    }
    last_report_ = now;
  }

  if (mode_ == ProgressMode::kBar) {
    std::lock_guard<std::recursive_mutex> lock(detail::terminal_mutex());
    detail::redraw_progress_line();
  } else {
    spdlog::info("{}", render_progress_line(snapshot()));
  }
}

void Progress::finish() { stop(true); }

void Progress::stop(bool log_done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) {
      return;
    }
    finished_ = true;
  }

  if (mode_ == ProgressMode::kBar) {
    std::lock_guard<std::recursive_mutex> lock(detail::terminal_mutex());
    detail::clear_progress_line();
    g_bars.erase(std::remove(g_bars.begin(), g_bars.end(), this), g_bars.end());
    detail::redraw_progress_line();
  }
  if (mode_ == ProgressMode::kOff || !log_done) {
    return;
  }

  const ProgressSnapshot final_state = snapshot();
  const std::string took = format_duration(std::chrono::duration_cast<std::chrono::seconds>(final_state.elapsed));
  spdlog::info("{}: done, {} in {}", final_state.label, format_amount(final_state.done, final_state.unit), took);
}

namespace detail {

std::recursive_mutex& terminal_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

void clear_progress_line() {
  std::lock_guard<std::recursive_mutex> lock(terminal_mutex());
  if (g_bar_visible) {
    write_stderr("\r\033[K");
    g_bar_visible = false;
  }
}

void redraw_progress_line() {
  std::lock_guard<std::recursive_mutex> lock(terminal_mutex());
  if (g_bars.empty()) {
    return;
  }
  write_stderr("\r" + render_progress_bar(g_bars.back()->snapshot(), terminal_width()) + "\033[K");
  g_bar_visible = true;
}

}  // namespace detail

}  // namespace qwen2vl
