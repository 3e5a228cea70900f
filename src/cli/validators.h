// CLI11 validators whose messages name the accepted values in plain words.
// CLI11's PositiveNumber and NonNegativeNumber name a range up to the largest
// double, which is 300 digits long.
#pragma once

#include <cstdint>
#include <limits>

#include <CLI/CLI.hpp>

namespace qwen2vl::cli {

// A whole number from `minimum` to `maximum`.
CLI::Validator whole_number_in(int64_t minimum, int64_t maximum = std::numeric_limits<int64_t>::max());

// A whole number of at least `minimum`.
inline CLI::Validator at_least(int64_t minimum) { return whole_number_in(minimum); }

// A finite number greater than 0.
CLI::Validator positive_number();

}  // namespace qwen2vl::cli
