// Logging setup for the command-line tool: spdlog's default logger, writing
// one line per message to stderr.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <spdlog/common.h>

namespace qwen2vl {

// Values that --log-level accepts, most verbose first: trace, debug, info, warn, error.
const std::vector<std::string>& log_level_names();

// Parse a --log-level value. Returns nullopt for a name not in log_level_names().
std::optional<spdlog::level::level_enum> parse_log_level(const std::string& name);

// Replace spdlog's default logger with one that writes "LEVEL: message" lines
// to stderr, colored when stderr is a terminal, and redraws an active progress
// bar below each message. At debug and trace level each line starts with the
// time of day. Safe to call more than once, for example once with a default
// level before the command line is parsed and again after.
void setup_logging(spdlog::level::level_enum level);

}  // namespace qwen2vl
