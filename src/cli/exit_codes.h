// The exit-code table that `--help` prints and docs/cli.md repeats.
#pragma once

#include <string>

namespace qwen2vl::cli {

// "Exit codes:" followed by one indented line per qwen2vl::ExitCode value.
std::string exit_code_help();

}  // namespace qwen2vl::cli
