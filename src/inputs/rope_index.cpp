// get_rope_index: a port of Qwen2VLModel.get_rope_index and
// get_vision_position_ids from transformers 5.25
// (models/qwen2_vl/modeling_qwen2_vl.py).
//
// For each batch row, the attended tokens are split into runs of the same
// type: text, image placeholders or video placeholders.
//
// A text run continues from the current position, with equal values in all
// three rope rows. A vision run takes the next grid of its type. With t,
// h / merge and w / merge merged patches, token (i, j, k) in t-major order
// gets (current + i, current + j, current + k). After the run, the current
// position advances by max(h, w) / merge.
//
// transformers 4.x continued after a vision run at current + max(t, h / merge,
// w / merge) instead. The two differ for videos with more frames than merged
// rows or columns, and this port follows 5.25. The rope delta of a row is its
// largest position + 1 - its number of attended tokens.
#include <algorithm>
#include <cstddef>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <torch/types.h>

#include "qwen2vl/error.h"
#include "qwen2vl/inputs/dummy_inputs.h"

namespace qwen2vl {

namespace {

enum class TokenType { kText, kImage, kVideo };

struct Grid {
  int64_t t = 0;
  int64_t h = 0;
  int64_t w = 0;
};

std::vector<Grid> read_grids(const std::optional<torch::Tensor>& grid_thw, const char* name) {
  std::vector<Grid> grids;
  if (!grid_thw || !grid_thw->defined()) {
    return grids;
  }
  if (grid_thw->dim() != 2 || grid_thw->size(1) != 3) {
    throw invalid_input(fmt::format("get_rope_index: {} has shape {}, expected [count, 3] with rows (t, h, w)", name,
                                    fmt::join(grid_thw->sizes(), "x")));
  }
  torch::Tensor values = grid_thw->to(torch::kCPU, torch::kLong).contiguous();
  auto rows = values.accessor<int64_t, 2>();
  for (int64_t i = 0; i < values.size(0); ++i) {
    Grid grid{rows[i][0], rows[i][1], rows[i][2]};
    if (grid.t < 1 || grid.h < 1 || grid.w < 1) {
      throw invalid_input(fmt::format("get_rope_index: {} row {} is ({}, {}, {}); t, h and w must be positive", name,
                                      i, grid.t, grid.h, grid.w));
    }
    grids.push_back(grid);
  }
  return grids;
}

// Positions of one row's attended tokens, one vector per rope row.
struct RowPositions {
  std::vector<int64_t> rows[3];

  void append(int64_t temporal, int64_t height, int64_t width) {
    rows[0].push_back(temporal);
    rows[1].push_back(height);
    rows[2].push_back(width);
  }
};

class RowIndexer {
 public:
  RowIndexer(const ModelConfig& config, std::vector<Grid> image_grids, std::vector<Grid> video_grids)
      : config_(config), image_grids_(std::move(image_grids)), video_grids_(std::move(video_grids)) {}

  TokenType type_of(int64_t id) const {
    if (id == config_.tokens.image_token_id) {
      return TokenType::kImage;
    }
    if (id == config_.tokens.video_token_id) {
      return TokenType::kVideo;
    }
    return TokenType::kText;
  }

  // Compute the positions of `ids`, the attended tokens of batch row `row`.
  // `columns` maps them back to input_ids columns for messages.
  RowPositions index_row(int64_t row, const std::vector<int64_t>& ids, const std::vector<int64_t>& columns) {
    RowPositions positions;
    int64_t current = 0;
    std::size_t begin = 0;
    while (begin < ids.size()) {
      TokenType type = type_of(ids[begin]);
      std::size_t end = begin + 1;
      while (end < ids.size() && type_of(ids[end]) == type) {
        ++end;
      }
      auto length = static_cast<int64_t>(end - begin);
      if (type == TokenType::kText) {
        for (int64_t i = 0; i < length; ++i) {
          positions.append(current + i, current + i, current + i);
        }
        current += length;
      } else {
        current = append_vision_run(type, row, columns[begin], length, current, positions);
      }
      begin = end;
    }
    return positions;
  }

 private:
  // Append the positions of one placeholder run and return the position that
  // the next run starts from.
  int64_t append_vision_run(TokenType type, int64_t row, int64_t column, int64_t length, int64_t current,
                            RowPositions& positions) {
    bool image = type == TokenType::kImage;
    const char* kind = image ? "image" : "video";
    const char* grid_name = image ? "image_grid_thw" : "video_grid_thw";
    std::vector<Grid>& grids = image ? image_grids_ : video_grids_;
    std::size_t& next = image ? next_image_ : next_video_;
    if (next >= grids.size()) {
      throw invalid_input(fmt::format(
          "get_rope_index: input_ids row {} has {} placeholder tokens from column {}, but {} has only {} rows; pass "
          "one grid per {} in the order they appear",
          row, kind, column, grid_name, grids.size(), kind));
    }
    const Grid& grid = grids[next++];

    int64_t merge = config_.vision.spatial_merge_size;
    int64_t grid_t = grid.t;
    int64_t grid_h = grid.h / merge;
    int64_t grid_w = grid.w / merge;
    if (grid_t * grid_h * grid_w != length) {
      throw invalid_input(fmt::format(
          "get_rope_index: input_ids row {} has {} {} placeholder tokens from column {}, but {} row {} ({}, {}, {}) "
          "needs t * (h / {}) * (w / {}) = {}; make the placeholder count match the grid",
          row, length, kind, column, grid_name, next - 1, grid.t, grid.h, grid.w, merge, merge,
          grid_t * grid_h * grid_w));
    }
    for (int64_t t = 0; t < grid_t; ++t) {
      for (int64_t h = 0; h < grid_h; ++h) {
        for (int64_t w = 0; w < grid_w; ++w) {
          positions.append(current + t, current + h, current + w);
        }
      }
    }
    return current + std::max(grid.h, grid.w) / merge;
  }

  const ModelConfig& config_;
  std::vector<Grid> image_grids_;
  std::vector<Grid> video_grids_;
  std::size_t next_image_ = 0;
  std::size_t next_video_ = 0;
};

}  // namespace

RopeIndex get_rope_index(const ModelConfig& config, const torch::Tensor& input_ids,
                         const std::optional<torch::Tensor>& image_grid_thw,
                         const std::optional<torch::Tensor>& video_grid_thw,
                         const std::optional<torch::Tensor>& attention_mask) {
  if (!input_ids.defined() || input_ids.dim() != 2) {
    throw invalid_input("get_rope_index: input_ids must be a 2-D tensor [batch, sequence]");
  }
  const int64_t batch = input_ids.size(0);
  const int64_t length = input_ids.size(1);
  torch::Tensor ids = input_ids.to(torch::kCPU, torch::kLong).contiguous();

  torch::Tensor attended;
  if (attention_mask && attention_mask->defined()) {
    if (attention_mask->sizes() != input_ids.sizes()) {
      throw invalid_input(fmt::format(
          "get_rope_index: attention_mask has shape {} but input_ids has {}; pass the mask columns of these tokens",
          fmt::join(attention_mask->sizes(), "x"), fmt::join(input_ids.sizes(), "x")));
    }
    attended = attention_mask->to(torch::kCPU).ne(0).contiguous();
  } else {
    attended = torch::ones({batch, length}, torch::kBool);
  }

  RowIndexer indexer(config, read_grids(image_grid_thw, "image_grid_thw"),
                     read_grids(video_grid_thw, "video_grid_thw"));
  torch::Tensor position_ids = torch::zeros({3, batch, length}, torch::kLong);
  torch::Tensor rope_deltas = torch::zeros({batch, 1}, torch::kLong);
  auto id_rows = ids.accessor<int64_t, 2>();
  auto attended_rows = attended.accessor<bool, 2>();
  auto positions_out = position_ids.accessor<int64_t, 3>();
  auto deltas_out = rope_deltas.accessor<int64_t, 2>();

  for (int64_t row = 0; row < batch; ++row) {
    std::vector<int64_t> columns;
    std::vector<int64_t> row_ids;
    for (int64_t column = 0; column < length; ++column) {
      if (attended_rows[row][column]) {
        columns.push_back(column);
        row_ids.push_back(id_rows[row][column]);
      }
    }
    // transformers fails on such a row too (torch.cat of an empty list).
    if (columns.empty()) {
      throw invalid_input(fmt::format(
          "get_rope_index: attention_mask row {} has no attended token; every row needs at least one 1", row));
    }

    RowPositions positions = indexer.index_row(row, row_ids, columns);
    int64_t max_position = 0;
    for (int rope_row = 0; rope_row < 3; ++rope_row) {
      for (std::size_t i = 0; i < columns.size(); ++i) {
        positions_out[rope_row][row][columns[i]] = positions.rows[rope_row][i];
        max_position = std::max(max_position, positions.rows[rope_row][i]);
      }
    }
    deltas_out[row][0] = max_position + 1 - static_cast<int64_t>(columns.size());
  }
  return RopeIndex{position_ids, rope_deltas};
}

}  // namespace qwen2vl
