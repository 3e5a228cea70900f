#include <cctype>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "validators.h"
#include "qwen2vl/error.h"
#include "qwen2vl/util/staged_dir.h"

namespace qwen2vl::cli {
namespace {

// The only opset the lowering registry emits.
constexpr int64_t kImplementedOpset = 18;

std::string join(const std::vector<std::string>& values) {
  std::string joined;
  for (const auto& value : values) {
    joined += (joined.empty() ? "" : ", ") + value;
  }
  return joined;
}

}  // namespace

std::string check_image_grid(const std::string& text) {
  int64_t values[3] = {0, 0, 0};
  size_t position = 0;
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (position >= text.size() || text[position] != ',') {
        return "expected T,H,W (three positive integers separated by commas), got '" + text + "'";
      }
      ++position;
    }
    const size_t start = position;
    while (position < text.size() && std::isdigit(static_cast<unsigned char>(text[position]))) {
      ++position;
    }
    if (position == start || position - start > 9) {
      return "expected T,H,W (three positive integers separated by commas), got '" + text + "'";
    }
    values[i] = std::stoll(text.substr(start, position - start));
    if (values[i] <= 0) {
      return "T, H and W in --image-grid must be positive, got '" + text + "'";
    }
  }
  if (position != text.size()) {
    return "expected T,H,W (three positive integers separated by commas), got '" + text + "'";
  }
  return "";
}

GridThw parse_image_grid(const std::string& text) {
  const std::string problem = check_image_grid(text);
  if (!problem.empty()) {
    throw Error(ExitCode::kUsage, "--image-grid: " + problem);
  }
  GridThw grid;
  const size_t first = text.find(',');
  const size_t second = text.find(',', first + 1);
  grid.t = std::stoll(text.substr(0, first));
  grid.h = std::stoll(text.substr(first + 1, second - first - 1));
  grid.w = std::stoll(text.substr(second + 1));
  return grid;
}

ExportCommand::ExportCommand(CLI::App& app) {
  command_ = app.add_subcommand("export", "convert a TorchScript archive to validated ONNX graphs in OUTPUT_DIR");

  command_->add_option("OUTPUT_DIR", options_.output_dir, "folder to create; it must not exist or be empty, "
                                                          "unless --force is given")
      ->type_name("DIR")
      ->required();
  command_->add_option("--model,-m", options_.model, "TorchScript archive (.pt), as written by tools/trace_model.py")
      ->type_name("FILE")
      ->required();
  command_->add_option("--config", options_.config, "config.json of the checkpoint (default: config.json beside the "
                                                    "model)")
      ->type_name("FILE");
  command_->add_option("--task", options_.task, "what to export: " + join(supported_tasks()))
      ->check(CLI::IsMember(supported_tasks()))
      ->capture_default_str();
  command_->add_option("--opset", options_.opset, "ONNX opset of the graphs; only 18 is implemented")
      ->capture_default_str();
  command_->add_option("--atol", options_.atol, "largest absolute difference per output element allowed between "
                                                "ONNX Runtime and LibTorch")
      ->check(positive_number())
      ->capture_default_str();

  batch_size_option_ = command_->add_option("--batch-size", batch_size_, "batch size of the dummy inputs")
                           ->check(at_least(1));
  sequence_length_option_ = command_->add_option("--sequence-length", sequence_length_,
                                                 "tokens per row of the dummy inputs, image tokens included")
                                ->check(at_least(1));
  past_sequence_length_option_ = command_->add_option("--past-sequence-length", past_sequence_length_,
                                                      "cached tokens of the dummy inputs for the -with-past tasks")
                                     ->check(at_least(0));
  num_images_option_ = command_->add_option("--num-images", num_images_, "images in the dummy inputs; 0 for text only")
                           ->check(at_least(0));
  image_grid_option_ =
      command_->add_option("--image-grid", image_grid_,
                           "size of each dummy image in patches: T frames, H x W patches; H and W must be "
                           "divisible by the config's spatial_merge_size")
          ->type_name("T,H,W")
          ->check(CLI::Validator([](std::string& value) { return check_image_grid(value); }, "", "image grid"));

  command_->add_flag("--no-validate", no_validate_, "skip the ONNX Runtime check against LibTorch");
  command_->add_flag("--allow-static-vision", options_.allow_static_vision,
                     "export a plain trace whose vision encoder has a frozen image count (metadata vision "
                     "\"static\"), with a warning, instead of failing");
  command_->add_flag("--force", options_.force, "replace OUTPUT_DIR if it exists and is not empty");
  command_->add_option("--report", options_.report, "also write a machine-readable report of the run to this JSON "
                                                    "file")
      ->type_name("FILE");
  command_->add_option("--python", options_.python, "Python interpreter with onnxruntime for the validation "
                                                    "(default: $QWEN2VL_PYTHON, else the one set at build time)")
      ->type_name("PATH");
  command_->footer(
      "Loads MODEL with LibTorch, reads config.json, lowers each traced method of the task to an opset-18 ONNX "
      "graph with its weights in an external data file, and compares ONNX Runtime with LibTorch on fresh dummy "
      "inputs. Everything is written into a staging folder beside OUTPUT_DIR, which is moved into place only when "
      "every step succeeded.\n\n"
      "Example:\n"
      "  qwen2vl-export export --model ckpt/qwen2vl.pt --task text-generation-with-past out/qwen2vl\n"
      "Exit codes: see qwen2vl-export --help.");
}

ExportOptions ExportCommand::to_options() const {
  ExportOptions options = options_;
  if (options.opset != kImplementedOpset) {
    throw unsupported("--opset " + std::to_string(options.opset) + " is not supported: this version writes opset " +
                      std::to_string(kImplementedOpset) + " only; drop --opset or pass --opset 18");
  }
  options.validate = !no_validate_;

  if (batch_size_option_->count() > 0) {
    options.batch_size = batch_size_;
  }
  if (sequence_length_option_->count() > 0) {
    options.sequence_length = sequence_length_;
  }
  if (past_sequence_length_option_->count() > 0) {
    options.past_sequence_length = past_sequence_length_;
  }
  if (num_images_option_->count() > 0) {
    options.num_images = num_images_;
  }
  if (image_grid_option_->count() > 0) {
    // NOTE: H and W are checked against spatial_merge_size only once the
    // exporter has read config.json.
    options.image_grid = parse_image_grid(image_grid_);
  }
  return options;
}

void ExportCommand::run() const {
  const ExportOptions options = to_options();

  // Fail before the model is loaded, which can take minutes; run_export checks again.
  check_output_target(options.output_dir, options.force);

  spdlog::info("exporting {} for task {} to {}", options.model.string(), options.task, options.output_dir.string());
  run_export(options);
}

}  // namespace qwen2vl::cli
