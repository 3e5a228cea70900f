#include "json_fields.h"

#include <limits>

#include <spdlog/fmt/fmt.h>

#include "qwen2vl/error.h"

namespace qwen2vl::config_detail {

using nlohmann::json;

namespace {

// Value and JSON type for messages: `"64" (a string)`.
std::string describe_with_type(const json& value) {
  if (value.is_null()) {
    return "null";
  }
  const char* type_name = value.type_name();
  if (value.is_number_integer()) {
    type_name = "integer";
  } else if (value.is_number_float()) {
    type_name = "floating-point number";
  }
  const char* article = (type_name[0] == 'a' || type_name[0] == 'i' || type_name[0] == 'o') ? "an" : "a";
  return fmt::format("{} ({} {})", describe_value(value), article, type_name);
}

// Append the compact JSON text of `value` (as json::dump(-1) writes it) to
// `out`, and stop soon after `out` grows past `max_chars`. Every nesting level
// appends at least one character, so the recursion is at most max_chars + 1
// levels deep, even for a value nested thousands of levels deep that
// json::dump would serialize recursively until the stack overflows.
void append_json_prefix(const json& value, std::size_t max_chars, std::string& out) {
  if (value.is_array()) {
    out += '[';
    for (auto it = value.begin(); it != value.end() && out.size() <= max_chars; ++it) {
      if (it != value.begin()) {
        out += ',';
      }
      append_json_prefix(*it, max_chars, out);
    }
    out += ']';
  } else if (value.is_object()) {
    out += '{';
    for (auto it = value.begin(); it != value.end() && out.size() <= max_chars; ++it) {
      if (it != value.begin()) {
        out += ',';
      }
      out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace);
      out += ':';
      append_json_prefix(it.value(), max_chars, out);
    }
    out += '}';
  } else {
    out += value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

}  // namespace

Field find_field(const json& object, const std::string& prefix, const std::string& key) {
  Field field;
  field.path = prefix + key;
  if (!object.is_object()) {
    return field;
  }
  auto it = object.find(key);
  if (it != object.end() && !it->is_null()) {
    field.value = &*it;
  }
  return field;
}

std::string describe_value(const json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text;
  append_json_prefix(value, kMaxChars, text);
  if (text.size() > kMaxChars) {
    text = text.substr(0, kMaxChars) + "...";
  }
  return text;
}

void FieldReader::fail_missing(const Field& field, const std::string& hint) const {
  throw invalid_input(fmt::format("{}: required field {} is missing; {}", source_, field.path, hint));
}

void FieldReader::fail_value(const Field& field, const std::string& problem) const {
  throw invalid_input(fmt::format("{}: {} is {}; {}", source_, field.path, describe_value(*field.value), problem));
}

int64_t FieldReader::read_int(const Field& field) const {
  if (!field.present()) {
    fail_missing(field, "add it to config.json (every Qwen2-VL config from the Hugging Face hub or transformers has it)");
  }
  const json& value = *field.value;
  if (value.is_number_unsigned()) {
    auto number = value.get<uint64_t>();
    if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_value(field, fmt::format("it must be an integer from 1 to {} (2^31)", kMaxSize));
    }
    return static_cast<int64_t>(number);
  }
  if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  throw invalid_input(fmt::format("{}: {} is {}, expected an integer; write it as a JSON number such as 64",
                                  source_, field.path, describe_with_type(value)));
}

std::optional<int64_t> FieldReader::read_optional_int(const Field& field) const {
  if (!field.present()) {
    return std::nullopt;
  }
  return read_int(field);
}

double FieldReader::read_number(const Field& field) const {
  const json& value = *field.value;
  if (!value.is_number()) {
    throw invalid_input(fmt::format("{}: {} is {}, expected a number; write it as a JSON number such as 1e-06",
                                    source_, field.path, describe_with_type(value)));
  }
  return value.get<double>();
}

std::string FieldReader::read_string(const Field& field) const {
  const json& value = *field.value;
  if (!value.is_string()) {
    throw invalid_input(fmt::format("{}: {} is {}, expected a string; put the value in double quotes",
                                    source_, field.path, describe_with_type(value)));
  }
  return value.get<std::string>();
}

bool FieldReader::read_bool(const Field& field) const {
  const json& value = *field.value;
  if (!value.is_boolean()) {
    throw invalid_input(fmt::format("{}: {} is {}, expected true or false", source_, field.path,
                                    describe_with_type(value)));
  }
  return value.get<bool>();
}

std::vector<int64_t> FieldReader::read_int_list(const Field& field) const {
  const json& value = *field.value;
  if (!value.is_array()) {
    throw invalid_input(fmt::format("{}: {} is {}, expected a list of integers such as [16, 24, 24]", source_,
                                    field.path, describe_with_type(value)));
  }
  std::vector<int64_t> result;
  for (std::size_t i = 0; i < value.size(); ++i) {
    Field element{&value[i], fmt::format("{}[{}]", field.path, i)};
    result.push_back(read_int(element));
  }
  return result;
}

const json* FieldReader::read_optional_object(const Field& field) const {
  if (!field.present()) {
    return nullptr;
  }
  if (!field.value->is_object()) {
    throw invalid_input(fmt::format("{}: {} is {}, expected a JSON object {{...}}", source_, field.path,
                                    describe_with_type(*field.value)));
  }
  return field.value;
}

}  // namespace qwen2vl::config_detail
