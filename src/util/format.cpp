#include "qwen2vl/util/format.h"

#include <array>
#include <cctype>
#include <cstdio>

namespace qwen2vl {

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }

  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }

  // Three significant digits: "1.50 KiB", "13.5 MiB", "512 GiB".
  const char* format = value < 10.0 ? "%.2f %s" : value < 100.0 ? "%.1f %s" : "%.0f %s";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), format, value, kUnits[unit]);
  return buffer;
}

std::string format_duration(std::chrono::seconds duration) {
  long long total = duration.count();
  if (total < 0) {
    total = 0;
  }
  const long long hours = total / 3600;
  const long long minutes = (total / 60) % 60;
  const long long seconds = total % 60;

  char buffer[32];
  if (hours > 0) {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", hours, minutes, seconds);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", minutes, seconds);
  }
  return buffer;
}

std::string format_count(uint64_t count) {
  std::string digits = std::to_string(count);
  std::string result;
  result.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      result.push_back(',');
    }
    result.push_back(digits[i]);
  }
  return result;
}

std::string one_line(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      pending_space = !result.empty();
      continue;
    }
    if (pending_space) {
      result.push_back(' ');
      pending_space = false;
    }
    result.push_back(c);
  }
  return result;
}

}  // namespace qwen2vl
