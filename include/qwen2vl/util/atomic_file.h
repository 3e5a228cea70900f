// Small files (reports) written so that a reader sees the old contents or the
// new ones, never a half-written file.
#pragma once

#include <filesystem>
#include <string>

namespace qwen2vl {

// Write `contents` to a temporary file beside `path`, then rename it over
// `path`. `what` names the file in messages ("the report"). Throws
// qwen2vl::Error (kIo) naming the path and the cause; the temporary file is
// removed on failure and `path` keeps its earlier contents.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents, const std::string& what);

}  // namespace qwen2vl
