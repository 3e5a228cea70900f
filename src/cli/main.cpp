// Entry point of the qwen2vl-export command-line tool.
#include <spdlog/spdlog.h>

#include "app.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/logging.h"

int main(int argc, char** argv) {
  qwen2vl::setup_logging(spdlog::level::info);
  qwen2vl::install_interrupt_handler();
  return qwen2vl::cli::run(argc, argv);
}
