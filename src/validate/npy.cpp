#include "qwen2vl/validate/npy.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "qwen2vl/error.h"

namespace qwen2vl::validate {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy files are written in host byte order, little-endian");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kHeaderAlignment = 64;  // numpy pads the header so the data starts 64-byte aligned

struct DtypeEntry {
  torch::ScalarType type;
  const char* descr;  // as numpy writes it
};

constexpr DtypeEntry kDtypes[] = {
    {torch::kFloat32, "<f4"}, {torch::kFloat16, "<f2"}, {torch::kFloat64, "<f8"},
    {torch::kInt64, "<i8"},   {torch::kInt32, "<i4"},   {torch::kInt16, "<i2"},
    {torch::kInt8, "|i1"},    {torch::kUInt8, "|u1"},   {torch::kBool, "|b1"},
};

using FilePointer = std::unique_ptr<FILE, int (*)(FILE*)>;

Error io_failure(const char* action, const std::filesystem::path& path, int error_number) {
  return io_error(std::string(action) + " " + path.string() + " failed: " + std::strerror(error_number));
}

Error malformed(const std::filesystem::path& path, const std::string& detail) {
  return invalid_input(path.string() + " is not a valid .npy file: " + detail);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (int64_t size : shape) {
    text += std::to_string(size) + ", ";
  }
  if (shape.size() == 1) {
    text.pop_back();  // "(3,)" is a one-element tuple in Python
  } else if (!shape.empty()) {
    text.resize(text.size() - 2);
  }
  return text + ")";
}

std::string build_header(const char* descr, const std::vector<int64_t>& shape) {
  std::string dict =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  auto padded_total = [&dict](size_t prefix) {
    return (prefix + dict.size() + 1 + kHeaderAlignment - 1) / kHeaderAlignment * kHeaderAlignment;
  };
  size_t prefix = kMagicSize + 2 + 2;  // magic, version, 2-byte header length
  if (padded_total(prefix) - prefix > 65535) {
    prefix += 2;  // format 2.0 has a 4-byte header length
  }
  size_t header_size = padded_total(prefix) - prefix;
  dict.append(header_size - dict.size() - 1, ' ');
  dict.push_back('\n');

  std::string bytes(kMagic, kMagicSize);
  if (prefix == kMagicSize + 2 + 2) {
    bytes += '\x01';
    bytes += '\x00';
    bytes += static_cast<char>(header_size & 0xff);
    bytes += static_cast<char>((header_size >> 8) & 0xff);
  } else {
    bytes += '\x02';
    bytes += '\x00';
    for (int shift = 0; shift < 32; shift += 8) {
      bytes += static_cast<char>((header_size >> shift) & 0xff);
    }
  }
  return bytes + dict;
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Returns the text after `'key':`, with leading spaces skipped.
size_t find_value(const std::string& dict, const std::string& key, const std::filesystem::path& path) {
  size_t position = dict.find("'" + key + "'");
  if (position == std::string::npos) {
    position = dict.find("\"" + key + "\"");
  }
  if (position == std::string::npos) {
    throw malformed(path, "the header has no '" + key + "' entry");
  }
  position = dict.find(':', position + key.size() + 2);
  if (position == std::string::npos) {
    throw malformed(path, "the header's '" + key + "' entry has no value");
  }
  position = dict.find_first_not_of(' ', position + 1);
  if (position == std::string::npos) {
    throw malformed(path, "the header's '" + key + "' entry has no value");
  }
  return position;
}

Header parse_header(const std::string& dict, const std::filesystem::path& path) {
  Header header;

  size_t position = find_value(dict, "descr", path);
  char quote = dict[position];
  size_t end = (quote == '\'' || quote == '"') ? dict.find(quote, position + 1) : std::string::npos;
  if (end == std::string::npos) {
    throw malformed(path, "the header's 'descr' is not a quoted string (structured dtypes are not supported)");
  }
  header.descr = dict.substr(position + 1, end - position - 1);

  position = find_value(dict, "fortran_order", path);
  if (dict.compare(position, 4, "True") == 0) {
    header.fortran_order = true;
  } else if (dict.compare(position, 5, "False") != 0) {
    throw malformed(path, "the header's 'fortran_order' is neither True nor False");
  }

  position = find_value(dict, "shape", path);
  end = dict.find(')', position);
  if (dict[position] != '(' || end == std::string::npos) {
    throw malformed(path, "the header's 'shape' is not a tuple");
  }
  std::string tuple = dict.substr(position + 1, end - position - 1);
  size_t cursor = 0;
  while (cursor < tuple.size()) {
    size_t next = tuple.find(',', cursor);
    std::string item = tuple.substr(cursor, next == std::string::npos ? std::string::npos : next - cursor);
    size_t first = item.find_first_not_of(' ');
    if (first != std::string::npos) {
      size_t last = item.find_last_not_of(' ');
      item = item.substr(first, last - first + 1);
      if (!item.empty() && item.back() == 'L') {
        item.pop_back();  // Python 2 long literal, e.g. (3L, 4L)
      }
      size_t used = 0;
      long long size = -1;
      try {
        size = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != item.size() || size < 0) {
        throw malformed(path, "the header's shape entry '" + item + "' is not a size");
      }
      header.shape.push_back(size);
    }
    if (next == std::string::npos) {
      break;
    }
    cursor = next + 1;
  }
  return header;
}

torch::ScalarType scalar_type_for(const std::string& descr, const std::filesystem::path& path) {
  if (!descr.empty() && descr[0] == '>' && descr.size() > 2 && descr.substr(2) != "1") {
    throw invalid_input(path.string() + " stores big-endian data ('" + descr +
                        "'); save it little-endian, e.g. with array.astype(array.dtype.newbyteorder('<'))");
  }
  for (const DtypeEntry& entry : kDtypes) {
    std::string known = entry.descr;
    // Single-byte types are the same in any byte order: accept '|', '<', '>' and '='.
    bool single_byte = known[0] == '|';
    if (descr == known || (single_byte && descr.size() == 3 && descr.substr(1) == known.substr(1)) ||
        (!single_byte && descr == "=" + known.substr(1))) {
      return entry.type;
    }
  }
  throw invalid_input(path.string() + " has dtype '" + descr +
                      "', which is not supported; use float32, float16, float64, int64, int32, int16, int8, "
                      "uint8 or bool");
}

void read_exactly(FILE* file, void* buffer, size_t size, const std::filesystem::path& path, const char* what) {
  if (size == 0) {
    return;
  }
  if (std::fread(buffer, 1, size, file) != size) {
    if (std::ferror(file)) {
      throw io_failure("reading", path, errno);
    }
    throw malformed(path, std::string("the file ends inside the ") + what);
  }
}

}  // namespace

void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor) {
  const char* descr = nullptr;
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.type == tensor.scalar_type()) {
      descr = entry.descr;
    }
  }
  if (descr == nullptr) {
    throw unsupported(std::string("cannot write a ") + c10::toString(tensor.scalar_type()) + " tensor to " +
                      path.string() + ": .npy supports float32, float16, float64, int64, int32, int16, int8, uint8 "
                      "and bool; convert it first");
  }

  torch::Tensor data = tensor.to(torch::kCPU).contiguous();
  std::string header = build_header(descr, data.sizes().vec());
  size_t data_size = static_cast<size_t>(data.numel()) * data.element_size();

  FilePointer file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) {
    throw io_failure("creating", path, errno);
  }
  if (std::fwrite(header.data(), 1, header.size(), file.get()) != header.size() ||
      (data_size > 0 && std::fwrite(data.data_ptr(), 1, data_size, file.get()) != data_size)) {
    throw io_failure("writing", path, errno);
  }
  if (std::fclose(file.release()) != 0) {
    throw io_failure("closing", path, errno);
  }
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  FilePointer file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    throw io_failure("opening", path, errno);
  }

  char prefix[kMagicSize + 2];
  read_exactly(file.get(), prefix, sizeof(prefix), path, "magic string");
  if (std::memcmp(prefix, kMagic, kMagicSize) != 0) {
    throw malformed(path, "it does not start with the magic string \\x93NUMPY");
  }
  unsigned major = static_cast<unsigned char>(prefix[kMagicSize]);
  if (major < 1 || major > 3) {
    throw malformed(path, "format version " + std::to_string(major) + " is not 1, 2 or 3");
  }

  size_t length_size = major == 1 ? 2 : 4;
  unsigned char length_bytes[4] = {0, 0, 0, 0};
  read_exactly(file.get(), length_bytes, length_size, path, "header length");
  size_t header_size = 0;
  for (size_t i = 0; i < length_size; ++i) {
    header_size |= static_cast<size_t>(length_bytes[i]) << (8 * i);
  }
  std::string dict(header_size, '\0');
  read_exactly(file.get(), dict.data(), header_size, path, "header");

  Header header = parse_header(dict, path);
  torch::ScalarType type = scalar_type_for(header.descr, path);

  std::vector<int64_t> storage_shape = header.shape;
  if (header.fortran_order) {
    std::reverse(storage_shape.begin(), storage_shape.end());
  }
  torch::Tensor tensor = torch::empty(storage_shape, torch::TensorOptions().dtype(type));
  read_exactly(file.get(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()) * tensor.element_size(), path,
               "data");

  if (header.fortran_order && tensor.dim() > 1) {
    std::vector<int64_t> order(static_cast<size_t>(tensor.dim()));
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = static_cast<int64_t>(order.size() - 1 - i);
    }
    tensor = tensor.permute(order).contiguous();
  }
  return tensor;
}

}  // namespace qwen2vl::validate
