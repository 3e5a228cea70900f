// Human-readable formatting shared by logs, progress output and reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qwen2vl {

// Format a byte count with binary units: "512 B", "1.5 KiB", "8.80 GiB".
std::string format_bytes(uint64_t bytes);

// Format a duration as "m:ss", or "h:mm:ss" from one hour on.
std::string format_duration(std::chrono::seconds duration);

// Format an integer with thousands separators: "2,208,985,600".
std::string format_count(uint64_t count);

// Collapse `text` to one line: line breaks and runs of whitespace become one
// space, and leading and trailing whitespace is removed. Error messages pass
// through it because every message the CLI prints is one line.
std::string one_line(const std::string& text);

}  // namespace qwen2vl
