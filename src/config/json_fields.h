// Typed reads of config.json fields. Every failure throws qwen2vl::Error
// (ExitCode::kInvalidInput) with the file, the JSON path and the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qwen2vl::config_detail {

// Largest size the parser accepts for any dimension or count (2^31). Real
// Qwen2-VL sizes are far below it, and products of two such sizes still fit
// in int64_t.
inline constexpr int64_t kMaxSize = int64_t{1} << 31;

// One field of config.json: its value (nullptr when the key is absent or
// JSON null, because transformers writes null for unset fields) and its path.
struct Field {
  const nlohmann::json* value = nullptr;
  std::string path;

  bool present() const { return value != nullptr; }
};

// Look up `key` in `object`. `prefix` is the object's own path with a
// trailing dot ("text_config.") or empty for the top level.
Field find_field(const nlohmann::json& object, const std::string& prefix, const std::string& key);

// Short JSON text of a value for messages, cut to about 60 characters.
std::string describe_value(const nlohmann::json& value);

class FieldReader {
 public:
  explicit FieldReader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }

  // Throw for a field that is missing although the config needs it.
  [[noreturn]] void fail_missing(const Field& field, const std::string& hint) const;
  // Throw for a present field whose value is wrong. `problem` describes what
  // is wrong and how to fix it.
  [[noreturn]] void fail_value(const Field& field, const std::string& problem) const;

  int64_t read_int(const Field& field) const;
  std::optional<int64_t> read_optional_int(const Field& field) const;
  double read_number(const Field& field) const;
  std::string read_string(const Field& field) const;
  bool read_bool(const Field& field) const;
  std::vector<int64_t> read_int_list(const Field& field) const;
  // An object field, or nullptr when absent.
  const nlohmann::json* read_optional_object(const Field& field) const;

 private:
  std::string source_;
};

}  // namespace qwen2vl::config_detail
