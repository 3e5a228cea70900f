// The qwen2vl-export command line: parse, dispatch, and map every error to
// one log line and an exit code.
#pragma once

namespace qwen2vl::cli {

// Run the tool with main's arguments and return the process exit code.
int run(int argc, char** argv);

}  // namespace qwen2vl::cli
