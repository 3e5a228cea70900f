// Small files (reports) written so that a reader sees the old contents or the
// new ones, never a half-written file.
#pragma once

#include <filesystem>
#include <string>

namespace qwen2vl {

// Write `contents` to a temporary file beside `path`, then rename it over
// `path`. `description` names the file in messages ("the report"). Throws
// qwen2vl::Error (kIo) naming the path and the cause; the temporary file is
// removed on failure and `path` keeps its earlier contents.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           const std::string& description);

// Create the parent folders of `path` and check that a file can be created
// beside it, so that a report that cannot be written fails a run before its
// work rather than after. Throws qwen2vl::Error (kIo) naming the path, the
// cause and `flag`, the option to change.
void check_writable(const std::filesystem::path& path, const std::string& description, const std::string& flag);

}  // namespace qwen2vl
