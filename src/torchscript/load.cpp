#include "qwen2vl/torchscript/load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <caffe2/serialize/read_adapter_interface.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include "qwen2vl/error.h"
#include "qwen2vl/util/format.h"
#include "qwen2vl/util/progress.h"

namespace qwen2vl {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMetadataFile = "qwen2vl_export.json";
constexpr const char* kRetraceHint = "trace the checkpoint again with tools/trace_model.py";

// Methods of docs/torchscript-contract.md, in the order of its table.
const std::vector<std::string>& contract_methods() {
  static const std::vector<std::string> methods = {
      "feature_extraction", "feature_extraction_with_past", "text_generation", "text_generation_with_past",
      "vision_encoder",     "embed_tokens",                 "decoder",
  };
  return methods;
}

// Closes a file descriptor on scope exit.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads the archive with pread(2) and reports the bytes read to a progress
// bar. The ZIP reader revisits some records, so the count is capped at the
// file size.
class ProgressReadAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  ProgressReadAdapter(int fd, uint64_t size, Progress& progress) : fd_(fd), size_(size), progress_(progress) {}

  size_t size() const override { return size_; }

  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t count = pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
      if (count < 0 && errno == EINTR) {
        continue;
      }
      if (count <= 0) {
        break;  // the ZIP reader reports the short read as a damaged archive
      }
      done += static_cast<size_t>(count);
    }
    const uint64_t total = bytes_read_.fetch_add(done) + done;
    progress_.update(std::min(total, size_));
    return done;
  }

 private:
  int fd_;
  uint64_t size_;
  Progress& progress_;
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// Read `length` bytes at `offset`; returns fewer at the end of the file.
std::string read_at(int fd, uint64_t offset, size_t length) {
  std::string buffer(length, '\0');
  size_t done = 0;
  while (done < length) {
    const ssize_t count = pread(fd, buffer.data() + done, length - done, static_cast<off_t>(offset + done));
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count <= 0) {
      break;
    }
    done += static_cast<size_t>(count);
  }
  buffer.resize(done);
  return buffer;
}

// A TorchScript archive is a ZIP file. Check its first local header and its
// end-of-central-directory record, which together catch empty, foreign and
// truncated files with a clearer message than the ZIP reader gives.
void check_zip_framing(int fd, uint64_t size, const fs::path& path) {
  const std::string head = read_at(fd, 0, 4);
  if (head != std::string("PK\x03\x04", 4)) {
    throw invalid_input(path.string() + " is not a TorchScript archive (not a ZIP file); pass the .pt that "
                        "torch.jit.save wrote, or " + kRetraceHint);
  }

  // The end-of-central-directory record (22 bytes plus a comment of at most
  // 65535 bytes) closes every ZIP file, ZIP64 ones included.
  const uint64_t window = std::min<uint64_t>(size, 22 + 65535);
  const std::string tail = read_at(fd, size - window, static_cast<size_t>(window));
  if (tail.rfind(std::string("PK\x05\x06", 4)) == std::string::npos) {
    throw invalid_input(path.string() + " is truncated or damaged: the end of its ZIP archive is missing (" +
                        format_bytes(size) + " on disk); copy the file again or " + kRetraceHint);
  }
}

// The first line of a LibTorch error message without the "[enforce fail at file:line]"
// prefix and the advice paragraph that PyTorch's ZIP reader appends.
std::string torch_error_summary(const std::string& message) {
  std::string text = message;
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) {
    text.resize(newline);
  }
  if (text.rfind("[enforce fail at ", 0) == 0) {
    const size_t end = text.find("] ");
    if (end != std::string::npos) {
      text.erase(0, end + 2);
    }
    if (text.rfind(". ", 0) == 0) {
      text.erase(0, 2);
    }
  }
  const size_t advice = text.find(" This is an internal miniz error");
  if (advice != std::string::npos) {
    text.resize(advice);
  }
  text = one_line(text);
  while (!text.empty() && text.back() == '.') {
    text.pop_back();
  }
  return text;
}

// The message of `summary` (from torch_error_summary) as a user-facing error
// that names the path and the fix.
Error load_error(const std::string& summary, const fs::path& path) {
  if (summary.find("constants.pkl") != std::string::npos && summary.find("not found") != std::string::npos) {
    return invalid_input(path.string() + " is a PyTorch archive but not TorchScript (it has no constants.pkl, "
                         "as files written by torch.save); " + kRetraceHint);
  }
  if (summary.find("not in a subdirectory") != std::string::npos) {
    return invalid_input(path.string() + " is a ZIP file but not a TorchScript archive; " + kRetraceHint);
  }
  return invalid_input("failed to load TorchScript archive " + path.string() + ": " + summary + "; " + kRetraceHint +
                       " (this build uses LibTorch " TORCH_VERSION ")");
}

nlohmann::json parse_metadata(const std::string& text, const fs::path& path) {
  if (text.empty()) {
    spdlog::warn("{} has no {}: it was not written by tools/trace_model.py, so methods are found by name only",
                 path.string(), kMetadataFile);
    return nlohmann::json::object();
  }

  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw invalid_input(path.string() + ": " + kMetadataFile + " is not valid JSON (" + error.what() + "); " +
                        kRetraceHint);
  }
  if (!metadata.is_object()) {
    throw invalid_input(path.string() + ": " + kMetadataFile + " is not a JSON object; " + kRetraceHint);
  }

  const auto version = metadata.find("contract_version");
  if (version != metadata.end() && !(version->is_number_integer() && version->get<int64_t>() == 1)) {
    spdlog::warn("{}: {} has contract_version {}, and this build reads version 1; the export may fail",
                 path.string(), kMetadataFile, version->dump());
  }
  return metadata;
}

// The module's methods: those of the contract first, in its order, then any
// others by name.
std::vector<std::string> list_methods(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const auto& method : module.get_methods()) {
    names.push_back(method.name());
  }

  std::vector<std::string> ordered;
  for (const auto& name : contract_methods()) {
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      ordered.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (std::find(ordered.begin(), ordered.end(), name) == ordered.end()) {
      ordered.push_back(name);
    }
  }
  return ordered;
}

void warn_about_missing_methods(const nlohmann::json& metadata, const std::vector<std::string>& methods,
                                const fs::path& path) {
  const auto listed = metadata.find("methods");
  if (listed == metadata.end() || !listed->is_array()) {
    return;
  }
  for (const auto& entry : *listed) {
    if (entry.is_string() && std::find(methods.begin(), methods.end(), entry.get<std::string>()) == methods.end()) {
      spdlog::warn("{}: {} lists method {}, which the module does not have", path.string(), kMetadataFile,
                   entry.get<std::string>());
    }
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) {
    joined += (joined.empty() ? "" : ", ") + name;
  }
  return joined;
}

}  // namespace

void check_model_path(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw invalid_input("model file not found: " + path.string() +
                        "; pass the .pt file that tools/trace_model.py wrote");
  }
  if (fs::is_directory(status)) {
    throw invalid_input(path.string() + " is a folder, not a TorchScript file; pass the .pt file inside it "
                        "(tools/trace_model.py writes qwen2vl.pt)");
  }
  if (!fs::is_regular_file(status)) {
    throw invalid_input(path.string() + " is not a regular file; pass the .pt file that tools/trace_model.py wrote");
  }
}

LoadedModule load_torchscript(const fs::path& path) {
  check_model_path(path);

  const FileDescriptor file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    throw io_error("failed to open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat info {};
  if (fstat(file.get(), &info) != 0) {
    throw io_error("failed to read the size of " + path.string() + ": " + std::strerror(errno));
  }
  const auto size = static_cast<uint64_t>(info.st_size);
  if (size == 0) {
    throw invalid_input(path.string() + " is empty (0 bytes); " + kRetraceHint);
  }
  check_zip_framing(file.get(), size, path);

  LoadedModule loaded;
  loaded.path = path;
  loaded.file_bytes = size;

  torch::jit::ExtraFilesMap extra_files{{kMetadataFile, ""}};
  {
    Progress progress("loading " + path.filename().string(), size, ProgressUnit::kBytes);
    auto adapter = std::make_shared<ProgressReadAdapter>(file.get(), size, progress);
    try {
      loaded.module = torch::jit::load(adapter, torch::kCPU, extra_files);
    } catch (const c10::Error& failure) {
      spdlog::debug("torch::jit::load({}) failed: {}", path.string(), failure.what());
      throw load_error(torch_error_summary(failure.what_without_backtrace()), path);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& failure) {
      // TorchScript compilation errors (torch::jit::ErrorReport) for code
      // that this LibTorch cannot read, such as an operator from a newer release.
      spdlog::debug("torch::jit::load({}) failed: {}", path.string(), failure.what());
      throw load_error(torch_error_summary(failure.what()), path);
    }
    progress.update(size);
    progress.finish();
  }
  loaded.module.eval();

  loaded.metadata = parse_metadata(extra_files[kMetadataFile], path);
  loaded.methods = list_methods(loaded.module);
  if (loaded.methods.empty()) {
    throw invalid_input(path.string() + " has no methods to export; " + kRetraceHint);
  }
  warn_about_missing_methods(loaded.metadata, loaded.methods, path);

  spdlog::debug("loaded {}: {} methods ({})", path.string(), loaded.methods.size(), join_names(loaded.methods));
  return loaded;
}

}  // namespace qwen2vl
