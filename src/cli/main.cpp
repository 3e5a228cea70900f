// Entry point of the qwen2vl-export command-line tool.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include "app.h"
#include "qwen2vl/batch/runner.h"
#include "qwen2vl/util/interrupt.h"
#include "qwen2vl/util/logging.h"

namespace {

// A row of `qwen2vl-export batch` gets SIGTERM when the batch process ends,
// so a batch killed with SIGKILL leaves no export running on its own. The
// SIGTERM goes through the interrupt handler, which removes partial output.
void exit_with_parent() {
  const char* parent = std::getenv(qwen2vl::batch::kParentPidVariable);
  if (parent == nullptr) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The batch may have died before prctl took effect.
  if (std::to_string(::getppid()) != parent) ::raise(SIGTERM);
}

}  // namespace

int main(int argc, char** argv) {
  qwen2vl::setup_logging(spdlog::level::info);
  qwen2vl::install_interrupt_handler();
  exit_with_parent();
  // A write past the file size limit (RLIMIT_FSIZE, `ulimit -f`) raises SIGXFSZ,
  // whose default action ends the process before it can remove its staging
  // folder. Ignored, the write fails with EFBIG instead, which is reported as an
  // I/O error after the cleanup. Spawned processes get the default action back.
  signal(SIGXFSZ, SIG_IGN);
  qwen2vl::exit_process(qwen2vl::cli::run(argc, argv));
}
