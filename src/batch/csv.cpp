#include "csv.h"

#include "qwen2vl/error.h"

namespace qwen2vl::batch {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && is_blank(text[begin])) ++begin;
  while (end > begin && is_blank(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

// Reads records one at a time; `position` always points at the start of a field.
class CsvReader {
 public:
  CsvReader(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  std::vector<CsvRecord> read_all() {
    std::vector<CsvRecord> records;
    while (position_ < text_.size()) {
      if (skip_line_if_empty_or_comment()) continue;
      CsvRecord record;
      record.line = line_;
      read_record(record.fields);
      records.push_back(std::move(record));
    }
    return records;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw invalid_input(source_ + " line " + std::to_string(line_) + ": " + problem);
  }

  bool skip_line_if_empty_or_comment() {
    size_t scan = position_;
    while (scan < text_.size() && is_blank(text_[scan])) ++scan;
    const bool at_end_of_line = scan >= text_.size() || text_[scan] == '\n' || text_[scan] == '\r';
    if (!at_end_of_line && text_[scan] != '#') return false;
    while (scan < text_.size() && text_[scan] != '\n') ++scan;
    position_ = scan + 1;
    ++line_;
    return true;
  }

  void read_record(std::vector<std::string>& fields) {
    while (true) {
      fields.push_back(read_field());
      if (position_ >= text_.size()) return;
      const char separator = text_[position_];
      if (separator == ',') {
        ++position_;
        continue;
      }
      // End of line: "\n" or "\r\n".
      if (separator == '\r') ++position_;
      if (position_ < text_.size() && text_[position_] == '\n') ++position_;
      ++line_;
      return;
    }
  }

  std::string read_field() {
    size_t scan = position_;
    while (scan < text_.size() && is_blank(text_[scan])) ++scan;
    if (scan < text_.size() && text_[scan] == '"') {
      position_ = scan + 1;
      return read_quoted();
    }
    const size_t end = text_.find_first_of(",\r\n", position_);
    const size_t stop = end == std::string::npos ? text_.size() : end;
    std::string field = trim(text_.substr(position_, stop - position_));
    position_ = stop;
    return field;
  }

  std::string read_quoted() {
    const int64_t opened_on = line_;
    std::string field;
    while (true) {
      if (position_ >= text_.size()) {
        line_ = opened_on;
        fail("a quoted field is never closed; end it with \"");
      }
      const char c = text_[position_++];
      if (c == '"') {
        if (position_ < text_.size() && text_[position_] == '"') {
          field += '"';
          ++position_;
          continue;
        }
        break;
      }
      if (c == '\n') ++line_;
      field += c;
    }
    while (position_ < text_.size() && is_blank(text_[position_])) ++position_;
    if (position_ < text_.size() && text_[position_] != ',' && text_[position_] != '\r' && text_[position_] != '\n') {
      fail("unexpected text after a closing quote; quote the whole field and write a quote inside it as \"\"");
    }
    return field;
  }

  const std::string& text_;
  const std::string& source_;
  size_t position_ = 0;
  int64_t line_ = 1;
};

}  // namespace

std::vector<CsvRecord> read_csv(const std::string& text, const std::string& source) {
  return CsvReader(text, source).read_all();
}

}  // namespace qwen2vl::batch
