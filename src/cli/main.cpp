// Entry point of the qwen2vl-export command-line tool.
#include <signal.h>

#include <spdlog/spdlog.h>

#include "app.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/logging.h"

int main(int argc, char** argv) {
  qwen2vl::setup_logging(spdlog::level::info);
  qwen2vl::install_interrupt_handler();
  // A write past the file size limit (RLIMIT_FSIZE, `ulimit -f`) raises SIGXFSZ,
  // whose default action ends the process before it can remove its staging
  // folder. Ignored, the write fails with EFBIG instead, which is reported as an
  // I/O error after the cleanup. Spawned processes get the default action back.
  signal(SIGXFSZ, SIG_IGN);
  qwen2vl::exit_process(qwen2vl::cli::run(argc, argv));
}
