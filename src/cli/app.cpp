#include "app.h"

#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include "commands.h"
#include "exit_codes.h"
#include "qwen2vl/error.h"
#include "qwen2vl/util/format.h"
#include "qwen2vl/util/logging.h"

#ifndef QWEN2VL_VERSION
#error "QWEN2VL_VERSION must be defined by the build (src/cli/CMakeLists.txt)"
#endif

namespace qwen2vl::cli {
namespace {

constexpr const char* kDebugHint = "re-run with --log-level debug for details, and report it if it persists";

std::string version_text() {
  return "qwen2vl-export " QWEN2VL_VERSION " (LibTorch " TORCH_VERSION ", ONNX opset 18)";
}

// Name of the subcommand being parsed, for the usage hint of a parse error.
std::string command_path(const CLI::App& app) {
  const std::vector<CLI::App*> selected = app.get_subcommands();
  return selected.empty() ? "qwen2vl-export" : "qwen2vl-export " + selected.front()->get_name();
}

int report_internal_error(const std::string& message) {
  spdlog::error("internal error: {}; {}", one_line(message), kDebugHint);
  return static_cast<int>(ExitCode::kInternal);
}

// The first line of a c10::Error, without LibTorch's C++ stack trace.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

int run(int argc, char** argv) {
  CLI::App app(
      "Convert TorchScript traces of Qwen2-VL checkpoints into ONNX graphs (opset 18, weights in external data "
      "files) and check them against LibTorch with ONNX Runtime.",
      "qwen2vl-export");
  app.set_version_flag("--version", version_text(), "print the version of qwen2vl-export and LibTorch, then exit");
  app.require_subcommand(1);
  app.fallthrough();  // global flags are accepted after the subcommand too
  app.get_formatter()->column_width(34);
  app.footer(
      "Examples:\n"
      "  qwen2vl-export inspect ckpt/qwen2vl.pt\n"
      "  qwen2vl-export export --model ckpt/qwen2vl.pt out/qwen2vl\n"
      "  qwen2vl-export batch --jobs 2 models.csv\n\n" +
      exit_code_help() + "\nRun 'qwen2vl-export COMMAND --help' for the flags of a command.");

  std::string log_level = "info";
  bool quiet = false;
  app.add_option("--log-level", log_level, "most verbose messages to show on stderr")
      ->check(CLI::IsMember(log_level_names()))
      ->capture_default_str();
  app.add_flag("--quiet,-q", quiet, "show warnings and errors only (the same as --log-level warn)");

  InspectCommand inspect(app);
  ExportCommand export_command(app);
  BatchCommand batch_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) {
      return app.exit(error);  // --help or --version: printed to stdout
    }
    spdlog::error("{}; run '{} --help' for usage", one_line(error.what()), command_path(app));
    return static_cast<int>(ExitCode::kUsage);
  }

  spdlog::level::level_enum level = parse_log_level(log_level).value_or(spdlog::level::info);
  if (quiet && level < spdlog::level::warn) {
    level = spdlog::level::warn;
  }
  setup_logging(level);

  try {
    if (inspect.selected()) {
      inspect.run();
    } else if (export_command.selected()) {
      export_command.run();
    } else if (batch_command.selected()) {
      return batch_command.run();
    }
    return static_cast<int>(ExitCode::kSuccess);
  } catch (const Error& error) {
    spdlog::error("{}", one_line(error.what()));
    return static_cast<int>(error.code());
  } catch (const c10::Error& error) {
    spdlog::debug("LibTorch error: {}", error.what());
    return report_internal_error(first_line(error.what_without_backtrace()));
  } catch (const std::exception& error) {
    return report_internal_error(error.what());
  }
}

}  // namespace qwen2vl::cli
