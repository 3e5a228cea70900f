// Progress of long steps (loading, lowering, writing weights, validation).
//
// On a terminal, a bar with percentage, amount done and ETA is redrawn in
// place on stderr. Elsewhere (CI logs, pipes), a plain info-level log line is
// written at most once per interval and once when the step finishes. Nothing
// is shown when the log level is above info (--quiet).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace qwen2vl {

enum class ProgressUnit { kItems, kBytes };

enum class ProgressMode {
  kAuto,   // kBar when stderr is a terminal and TERM is not "dumb", else kLines
  kBar,    // redraw a bar in place
  kLines,  // periodic log lines
  kOff,    // show nothing
};

// Set how every Progress created afterwards is shown. The default is kAuto.
void set_progress_mode(ProgressMode mode);

// Set the minimum time between two log lines in kLines mode (default 5 s).
void set_progress_line_interval(std::chrono::milliseconds interval);

// State of one step, as rendered.
struct ProgressSnapshot {
  std::string label;
  uint64_t done = 0;
  uint64_t total = 0;  // 0 when the total is unknown
  ProgressUnit unit = ProgressUnit::kItems;
  std::chrono::milliseconds elapsed{0};
};

// Render the bar line for a terminal `width` columns wide, for example
// "writing weights [=========>          ]  45%  13.5 MiB/30.0 MiB  ETA 0:07".
std::string render_progress_bar(const ProgressSnapshot& snapshot, int width);

// Render one plain progress line, for example
// "writing weights: 45% (13.5 MiB of 30.0 MiB), ETA 0:07".
std::string render_progress_line(const ProgressSnapshot& snapshot);

// One step with a known (or unknown: 0) total. Thread-safe: several threads
// may call advance(). Only the most recently created unfinished Progress is
// drawn on the terminal.
class Progress {
 public:
  Progress(std::string label, uint64_t total, ProgressUnit unit = ProgressUnit::kItems);
  // Removes the bar without a closing line, as for a step that threw; call
  // finish() for a step that completed.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(uint64_t amount = 1);
  void update(uint64_t done);
  void set_total(uint64_t total);

  // Mark the step done: remove the bar, or write the closing log line with the
  // total time. Later calls do nothing.
  void finish();

  ProgressSnapshot snapshot() const;

 private:
  void report(bool force);
  void stop(bool log_done);

  mutable std::mutex mutex_;
  ProgressSnapshot state_;
  ProgressMode mode_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_report_;
  bool finished_ = false;
};

namespace detail {

void clear_progress_line();
void redraw_progress_line();
std::recursive_mutex& terminal_mutex();

// Run `write` with the progress bar line cleared, then draw the bar again.
// The logging sink calls it so that log lines never land inside the bar.
template <typename Write>
void with_progress_cleared(Write&& write) {
  std::lock_guard<std::recursive_mutex> lock(terminal_mutex());
  clear_progress_line();
  write();
  redraw_progress_line();
}

}  // namespace detail

}  // namespace qwen2vl
