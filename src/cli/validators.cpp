#include "validators.h"

#include <cmath>
#include <string>

namespace qwen2vl::cli {

CLI::Validator whole_number_in(int64_t minimum, int64_t maximum) {
  const std::string range = maximum == std::numeric_limits<int64_t>::max()
                                ? "at least " + std::to_string(minimum)
                                : "from " + std::to_string(minimum) + " to " + std::to_string(maximum);
  return CLI::Validator(
      [minimum, maximum, range](std::string& value) -> std::string {
        int64_t number = 0;
        if (!CLI::detail::lexical_cast(value, number) || number < minimum || number > maximum) {
          return "expected a whole number " + range + ", got '" + value + "'";
        }
        return "";
      },
      "", range);
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double number = 0;
        if (!CLI::detail::lexical_cast(value, number) || !std::isfinite(number) || number <= 0) {
          return "expected a finite number greater than 0, got '" + value + "'";
        }
        return "";
      },
      "", "greater than 0");
}

}  // namespace qwen2vl::cli
