// Child process for the interrupt tests: writes into a StagedOutputDir and
// either commits or waits for a signal.
//
// Usage: cli_staged_dir_helper TARGET wait|commit [--force]
// Prints the staging folder on stdout once a file was written into it.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/logging.h"
#include "qwen2vl/util/staged_dir.h"

int main(int argc, char** argv) {
  qwen2vl::setup_logging(spdlog::level::info);
  if (argc < 3) {
    spdlog::error("usage: {} TARGET wait|commit [--force]", argv[0]);
    return 2;
  }
  qwen2vl::install_interrupt_handler();

  const std::string mode = argv[2];
  const bool force = argc > 3 && std::string(argv[3]) == "--force";
  try {
    qwen2vl::StagedOutputDir output(argv[1], force);
    std::ofstream(output.path() / "new.txt") << "new\n";
    std::printf("%s\n", output.path().c_str());
    std::fflush(stdout);

    if (mode == "commit") {
      output.commit();
      return 0;
    }
    while (true) {
      pause();  // the interrupt handler's thread ends the process
    }
  } catch (const qwen2vl::Error& error) {
    spdlog::error("{}", error.what());
    return static_cast<int>(error.code());
  }
}
