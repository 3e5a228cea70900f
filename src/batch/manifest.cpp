#include "qwen2vl/batch/manifest.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "csv.h"
#include "qwen2vl/error.h"

namespace qwen2vl::batch {
namespace fs = std::filesystem;
namespace {

const std::vector<std::string> kColumns = {"model", "config", "task", "output"};

// A manifest larger than this is almost certainly the wrong file.
constexpr uintmax_t kMaxManifestBytes = 64ull << 20;

// One row before its paths are resolved and its values checked.
struct RawRow {
  std::string origin;
  std::map<std::string, std::string> values;  // column -> text; absent when not given
};

std::string joined(const std::vector<std::string>& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : ", ") + value;
  return text;
}

bool looks_like_json(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text.compare(first, 3, "\xEF\xBB\xBF") == 0) return looks_like_json(text.substr(first + 3));
  return first != std::string::npos && (text[first] == '[' || text[first] == '{');
}

// "an array", "a string", ... for messages.
std::string with_article(const nlohmann::json& value) {
  const std::string name = value.type_name();
  return (name[0] == 'a' || name[0] == 'o' ? "an " : "a ") + name;
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string without_exception_id(const std::string& message) {
  const size_t end = message.rfind("] ", message.find(' '));
  return message.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? message.substr(end + 2) : message;
}

// Thrown from the parser callback for a key that appears twice in one object,
// which nlohmann::json would otherwise resolve silently (the last one wins).
struct DuplicateKey {
  std::string key;
};

std::vector<RawRow> json_rows(const std::string& text, const std::string& source) {
  nlohmann::json document;
  std::vector<std::set<std::string>> keys_per_object;
  auto reject_duplicate_keys = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::object_start) {
      keys_per_object.emplace_back();
    } else if (event == nlohmann::json::parse_event_t::object_end) {
      keys_per_object.pop_back();
    } else if (event == nlohmann::json::parse_event_t::key && !keys_per_object.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!keys_per_object.back().insert(key).second) throw DuplicateKey{key};
    }
    return true;
  };
  try {
    document = nlohmann::json::parse(text, reject_duplicate_keys);
  } catch (const DuplicateKey& duplicate) {
    throw invalid_input(source + ": key \"" + duplicate.key + "\" appears twice in one object; keep one of them");
  } catch (const nlohmann::json::exception& error) {  // parse_error, or out_of_range for 1e400
    throw invalid_input(source + " is not valid JSON (" + without_exception_id(error.what()) +
                        "); a JSON manifest is an array of {\"model\", \"output\", \"config\", \"task\"} objects");
  }
  const nlohmann::json* rows = &document;
  if (document.is_object()) {
    auto found = document.find("rows");
    if (found == document.end()) {
      throw invalid_input(source + ": a JSON manifest object needs a \"rows\" array; or make the file the array itself");
    }
    rows = &*found;
    for (const auto& [key, value] : document.items()) {
      if (key != "rows") {
        throw invalid_input(source + ": unknown top-level key \"" + key + "\"; a JSON manifest object contains only "
                            "\"rows\"");
      }
    }
  }
  if (!rows->is_array()) {
    throw invalid_input(source + ": \"rows\" is " + with_article(*rows) + ", expected an array of objects");
  }
  std::vector<RawRow> result;
  for (size_t i = 0; i < rows->size(); ++i) {
    const nlohmann::json& entry = (*rows)[i];
    RawRow row;
    row.origin = source + " row " + std::to_string(i + 1);
    if (!entry.is_object()) {
      throw invalid_input(row.origin + " is " + with_article(entry) +
                          ", expected an object such as {\"model\": \"a/qwen2vl.pt\", \"output\": \"out/a\"}");
    }
    for (const auto& [key, value] : entry.items()) {
      if (std::find(kColumns.begin(), kColumns.end(), key) == kColumns.end()) {
        throw invalid_input(row.origin + ": unknown key \"" + key + "\"; the keys are " + joined(kColumns));
      }
      if (value.is_null()) continue;
      if (!value.is_string()) {
        throw invalid_input(row.origin + ": \"" + key + "\" is " + with_article(value) + ", expected a string");
      }
      const std::string& text_value = value.get_ref<const std::string&>();
      if (text_value.find('\0') != std::string::npos) {
        throw invalid_input(row.origin + ": \"" + key + "\" contains a NUL character (\\u0000), which no path may hold");
      }
      if (!text_value.empty()) row.values[key] = text_value;  // "" means absent, as an empty CSV field does
    }
    result.push_back(std::move(row));
  }
  return result;
}

std::vector<RawRow> csv_rows(const std::string& text, const std::string& source) {
  std::vector<CsvRecord> records = read_csv(text, source);
  if (records.empty()) return {};
  const CsvRecord& header = records.front();
  std::vector<std::string> columns;
  for (std::string name : header.fields) {
    if (name.rfind("\xEF\xBB\xBF", 0) == 0) name = name.substr(3);  // byte order mark
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (std::find(kColumns.begin(), kColumns.end(), name) == kColumns.end()) {
      throw invalid_input(source + " line " + std::to_string(header.line) + ": unknown column \"" + name +
                          "\"; the first line names the columns, from " + joined(kColumns));
    }
    if (std::find(columns.begin(), columns.end(), name) != columns.end()) {
      throw invalid_input(source + " line " + std::to_string(header.line) + ": column \"" + name + "\" appears twice");
    }
    columns.push_back(name);
  }
  std::vector<RawRow> result;
  for (size_t i = 1; i < records.size(); ++i) {
    const CsvRecord& record = records[i];
    RawRow row;
    row.origin = source + " line " + std::to_string(record.line);
    if (record.fields.size() != columns.size()) {
      throw invalid_input(row.origin + " has " + std::to_string(record.fields.size()) + " field(s), the header has " +
                          std::to_string(columns.size()) + " (" + joined(columns) +
                          "); leave a field empty rather than out, and quote paths that contain commas");
    }
    for (size_t c = 0; c < columns.size(); ++c) {
      if (!record.fields[c].empty()) row.values[columns[c]] = record.fields[c];
    }
    result.push_back(std::move(row));
  }
  return result;
}

fs::path resolve(const fs::path& base, const std::string& text) {
  fs::path path(text);
  if (path.is_relative()) path = base / path;
  path = path.lexically_normal();
  if (!path.has_filename() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();  // "out/a/"
  return path;
}

// The output folder as a key for duplicate detection: "out/a/" and "out/./a" are one folder.
std::string output_key(const fs::path& output) {
  fs::path normal = fs::absolute(output).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();
  return normal.string();
}

ManifestRow check_row(const RawRow& raw, int64_t number, const fs::path& base, const ManifestRules& rules) {
  auto value = [&](const std::string& column) -> std::optional<std::string> {
    auto found = raw.values.find(column);
    if (found == raw.values.end()) return std::nullopt;
    return found->second;
  };
  ManifestRow row;
  row.number = number;
  row.origin = raw.origin;
  for (const char* required : {"model", "output"}) {
    if (!value(required)) {
      throw invalid_input(raw.origin + ": " + required + " is missing or empty; every row needs a model and an output");
    }
  }
  row.model = resolve(base, *value("model"));
  row.output = resolve(base, *value("output"));
  if (auto config = value("config")) row.config = resolve(base, *config);
  row.task = value("task").value_or(rules.default_task);
  if (std::find(rules.tasks.begin(), rules.tasks.end(), row.task) == rules.tasks.end()) {
    throw invalid_input(raw.origin + ": unknown task \"" + row.task + "\"; use one of " + joined(rules.tasks));
  }
  return row;
}

}  // namespace

Manifest parse_manifest(const std::string& text, const fs::path& path, const ManifestRules& rules) {
  const std::string source = path.filename().string();
  if (text.rfind("\xFF\xFE", 0) == 0 || text.rfind("\xFE\xFF", 0) == 0) {
    throw invalid_input(source + " is UTF-16 text; save the manifest as UTF-8");
  }
  if (text.find('\0') != std::string::npos) {
    throw invalid_input(source + " contains NUL bytes, so it is not a text manifest; save it as UTF-8 CSV or JSON");
  }
  const std::string extension = path.extension().string();
  const bool json = extension == ".json" || (extension != ".csv" && looks_like_json(text));

  std::vector<RawRow> raw_rows = json ? json_rows(text, source) : csv_rows(text, source);
  if (raw_rows.empty()) {
    throw invalid_input(path.string() + " has no rows; list one export per row (" +
                        (json ? std::string("a JSON array of objects") : "a CSV header line, then one line per row") +
                        ")");
  }

  Manifest manifest;
  manifest.path = path;
  const fs::path base = fs::absolute(path).parent_path();
  std::map<std::string, std::string> outputs;  // output key -> origin of the row that writes it
  for (size_t i = 0; i < raw_rows.size(); ++i) {
    ManifestRow row = check_row(raw_rows[i], static_cast<int64_t>(i + 1), base, rules);
    auto [existing, inserted] = outputs.emplace(output_key(row.output), row.origin);
    if (!inserted) {
      throw invalid_input(row.origin + " writes to " + row.output.string() + ", which " + existing->second +
                          " writes too; give every row its own output folder");
    }
    manifest.rows.push_back(std::move(row));
  }
  return manifest;
}

Manifest read_manifest(const fs::path& path, const ManifestRules& rules) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw invalid_input("manifest not found: " + path.string() + "; pass the path of a .json or .csv manifest");
  }
  if (!fs::is_regular_file(status)) {
    throw invalid_input("manifest " + path.string() + " is not a regular file; pass a .json or .csv manifest");
  }
  const uintmax_t bytes = fs::file_size(path, error);
  if (!error && bytes > kMaxManifestBytes) {
    throw invalid_input("manifest " + path.string() + " is " + std::to_string(bytes >> 20) +
                        " MiB; a manifest lists paths, so this is probably not one (limit 64 MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw io_error("cannot read the manifest " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw io_error("cannot read the manifest " + path.string() + ": " + std::strerror(errno));
  }
  return parse_manifest(text.str(), path, rules);
}

}  // namespace qwen2vl::batch
