"""Trace-friendly replacements for the parts of transformers' Qwen2-VL that freeze sizes.

`torch.jit.trace` records tensor operations only. Python loops over `grid_thw`,
`.tolist()`, `.item()` and Python `if` on tensor values run once at trace time, and
their results become constants of the graph. The code here computes the same values
as transformers 5.x with tensor operations only, so sizes stay dynamic in the trace:

* `DynamicVisionEncoder` runs the vision tower of a Qwen2-VL model for any number
  of images and videos. It derives the rotary (h, w) positions and the per-frame
  attention restriction from `grid_thw` with arithmetic, gather and comparisons.
* `build_causal_mask` turns the 2-D padding mask into the 4-D mask that the
  language model accepts as already prepared.
* `cache_from_flat` and `flat_from_cache` carry past and present key/values between
  flat tensors and a transformers `DynamicCache`.
* `merge_image_features` places image features at the image tokens with cumsum,
  gather and where in place of `masked_scatter`.

The tests run all of it in float32 at many batch, sequence, past and patch counts,
including zero images (`pixel_values` [0, patch_features], `grid_thw` [0, 3]).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.cache_utils import DynamicCache
from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb_vision

ATTENTION_KINDS = ("eager", "sdpa")


def _floor_div(numerator: torch.Tensor, denominator: torch.Tensor | int) -> torch.Tensor:
    return torch.div(numerator, denominator, rounding_mode="floor")


def vision_patch_layout(
    grid_thw: torch.Tensor, num_patches: int | torch.Tensor, merge_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute the rotary positions and the frame id of every vision patch.

    Patches come in the order of Qwen2-VL's image processor: image by image, frame by
    frame, and inside a frame by `merge_size` x `merge_size` merge block (block rows,
    then block columns, then the rows and columns inside a block). A frame is one step
    of the grid's t axis, so temporal_patch_size video frames.

    Returns `position_ids` int64 [num_patches, 2] with the (row, column) of each patch
    in its frame, and `frame_ids` int64 [num_patches] that is equal for two patches
    exactly when they belong to the same frame of the same image. `num_patches` must
    equal the sum of t * h * w over `grid_thw`; pass `pixel_values.shape[0]` so that a
    trace keeps it dynamic.
    """
    grid = grid_thw.to(torch.int64)
    frames, heights, widths = grid[:, 0], grid[:, 1], grid[:, 2]
    frame_sizes = heights * widths
    image_ends = torch.cumsum(frames * frame_sizes, dim=0)
    image_starts = image_ends - frames * frame_sizes

    patch = torch.arange(num_patches, dtype=torch.int64, device=grid.device)
    # A patch belongs to the first image whose end lies beyond it.
    image_index = (patch.unsqueeze(1) >= image_ends.unsqueeze(0)).sum(dim=1)

    start = torch.index_select(image_starts, 0, image_index)
    frame_size = torch.index_select(frame_sizes, 0, image_index)
    width = torch.index_select(widths, 0, image_index)

    offset_in_image = patch - start
    frame = _floor_div(offset_in_image, frame_size)
    offset_in_frame = torch.remainder(offset_in_image, frame_size)

    # Decode the offset in the frame as (block_row, block_col, row_in_block, col_in_block).
    block_area = merge_size * merge_size
    blocks_per_row = _floor_div(width, merge_size)
    col_in_block = torch.remainder(offset_in_frame, merge_size)
    row_in_block = torch.remainder(_floor_div(offset_in_frame, merge_size), merge_size)
    block = _floor_div(offset_in_frame, block_area)
    block_col = torch.remainder(block, blocks_per_row)
    block_row = _floor_div(block, blocks_per_row)

    rows = block_row * merge_size + row_in_block
    cols = block_col * merge_size + col_in_block
    position_ids = torch.stack([rows, cols], dim=1)

    # The first patch index of the frame identifies the frame uniquely.
    frame_ids = start + frame * frame_size
    return position_ids, frame_ids


def frame_attention_mask(frame_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Build the additive [num_patches, num_patches] mask that keeps attention inside each frame.

    Entries are 0 where query and key patch share a frame and `torch.finfo(dtype).min`
    elsewhere. Every patch attends to at least itself, so no softmax row is fully masked.
    """
    same_frame = frame_ids.unsqueeze(1) == frame_ids.unsqueeze(0)
    zero = torch.zeros((), dtype=dtype, device=frame_ids.device)
    return torch.where(same_frame, zero, torch.finfo(dtype).min)


class DynamicVisionEncoder(nn.Module):
    """Vision tower of Qwen2-VL computed with tensor operations only.

    Wraps `model.model.visual` (a `Qwen2VisionTransformerPretrainedModel`) and shares
    its parameters. transformers' own forward splits the patches per frame with
    `cu_seqlens.tolist()` and builds the rotary positions in a Python loop over
    `grid_thw`. This module replaces both: one attention over all patches with a
    block-diagonal mask, and positions from `vision_patch_layout`. The result matches
    transformers' `pooler_output` up to float rounding.
    """

    def __init__(self, visual: nn.Module, attention: str = "eager") -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        self.visual = visual
        self.attention = attention
        self.merge_size = int(visual.spatial_merge_size)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """Return the merged image features [sum(t * h * w) / merge_size^2, hidden_size]."""
        visual = self.visual
        pixel_values = pixel_values.to(visual.patch_embed.proj.weight.dtype)
        hidden_states = visual.patch_embed(pixel_values)

        position_ids, frame_ids = vision_patch_layout(grid_thw, pixel_values.shape[0], self.merge_size)
        cos, sin = visual.rotary_pos_emb(hidden_states, position_ids)
        mask = frame_attention_mask(frame_ids, hidden_states.dtype)

        for block in visual.blocks:
            hidden_states = hidden_states + self._attend(block.attn, block.norm1(hidden_states), cos, sin, mask)
            hidden_states = hidden_states + block.mlp(block.norm2(hidden_states))

        return visual.merger(hidden_states)

    def _attend(
        self, attn: nn.Module, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        num_patches = hidden_states.shape[0]
        # Explicit sizes, not -1: a reshape of zero patches cannot infer a dimension.
        qkv = attn.qkv(hidden_states).reshape(num_patches, 3, attn.num_heads, attn.head_dim).permute(1, 0, 2, 3)
        query, key, value = qkv.unbind(0)
        query, key = apply_rotary_pos_emb_vision(query, key, cos, sin)

        # [patches, heads, head_dim] -> [heads, patches, head_dim]
        query = query.transpose(0, 1)
        key = key.transpose(0, 1)
        value = value.transpose(0, 1)

        if self.attention == "sdpa":
            output = nn.functional.scaled_dot_product_attention(
                query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0), attn_mask=mask, scale=attn.scaling
            ).squeeze(0)
        else:
            scores = torch.matmul(query, key.transpose(1, 2)) * attn.scaling + mask
            weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
            output = torch.matmul(weights, value)

        output = output.transpose(0, 1).reshape(num_patches, attn.num_heads * attn.head_dim)
        return attn.proj(output)


def build_causal_mask(
    attention_mask: torch.Tensor, query_length: int | torch.Tensor, dtype: torch.dtype, boolean: bool = False
) -> torch.Tensor:
    """Build the 4-D causal mask [batch, 1, query_length, past + query_length] from a 2-D padding mask.

    `attention_mask` is [batch, past + query_length] with 1 for real tokens and 0 for
    padding. Query i sits at absolute position past + i, and key j is visible to it iff
    j <= past + i and attention_mask[b, j] == 1.

    With `boolean=False` the mask is additive: 0 where visible and
    `torch.finfo(dtype).min` elsewhere, the mask that transformers builds for eager
    attention. A query row with no visible key (a left-padding position) then
    averages all values, as in transformers' eager path. With `boolean=True` the mask
    is True where visible, the mask that transformers builds for SDPA. PyTorch's SDPA
    returns zeros for a fully masked row (checked with torch 2.13), as transformers
    does with SDPA. Either way no NaN appears.
    """
    key_length = attention_mask.shape[1]
    past_length = key_length - query_length
    device = attention_mask.device

    query_positions = torch.arange(query_length, dtype=torch.int64, device=device) + past_length
    key_positions = torch.arange(key_length, dtype=torch.int64, device=device)
    causal = key_positions.unsqueeze(0) <= query_positions.unsqueeze(1)  # [query, key]
    not_padding = attention_mask.unsqueeze(1) != 0  # [batch, 1, key]
    visible = torch.logical_and(causal.unsqueeze(0), not_padding).unsqueeze(1)

    if boolean:
        return visible
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(visible, zero, torch.finfo(dtype).min)


def cache_from_flat(past_key_values: list[torch.Tensor] | tuple[torch.Tensor, ...], config) -> DynamicCache:
    """Build a DynamicCache from flat past tensors key_0, value_0, key_1, value_1, ...

    Each tensor is [batch, num_key_value_heads, past_length, head_dim], and the past
    length may be 0. The layers are filled directly, because `DynamicLayer.update` on
    an empty layer concatenates a constant empty 1-D tensor, which a trace would keep
    as a rank-mismatched Concat. `config` is the text config of the model.
    """
    num_layers = config.num_hidden_layers
    if len(past_key_values) != 2 * num_layers:
        raise ValueError(f"expected {2 * num_layers} past tensors for {num_layers} layers, got {len(past_key_values)}")
    cache = DynamicCache(config=config)
    if len(cache.layers) != num_layers:
        raise ValueError(f"DynamicCache built {len(cache.layers)} layers for a config with {num_layers}")
    for index, layer in enumerate(cache.layers):
        key, value = past_key_values[2 * index], past_key_values[2 * index + 1]
        layer.device = key.device
        layer.keys = key
        layer.values = value
        layer.is_initialized = True
    return cache


def flat_from_cache(cache: DynamicCache) -> list[torch.Tensor]:
    """Return the cache contents as flat tensors key_0, value_0, key_1, value_1, ..."""
    flat = []
    for layer in cache.layers:
        flat.append(layer.keys)
        flat.append(layer.values)
    return flat


def merge_image_features(
    inputs_embeds: torch.Tensor, input_ids: torch.Tensor, image_features: torch.Tensor, image_token_id: int
) -> torch.Tensor:
    """Replace the embeddings of image tokens with image features in batch-major order.

    Equal to transformers' `inputs_embeds.masked_scatter(image_mask, image_features)`
    when the number of image tokens equals image_features.shape[0]. transformers
    raises on any other count, but a trace cannot test a tensor value. Here surplus
    features are ignored, and of surplus image tokens the first gets zeros and any
    further one fails with an index-out-of-range error in the gather.
    """
    is_image = input_ids == image_token_id  # [batch, seq]
    feature_index = torch.cumsum(is_image.to(torch.int64).reshape(-1), dim=0) - 1
    # A zero row after the features keeps the gather valid when there are no images.
    zero_row = torch.zeros(1, image_features.shape[1], dtype=inputs_embeds.dtype, device=inputs_embeds.device)
    features = torch.cat([image_features.to(inputs_embeds.dtype), zero_row], dim=0)
    # Tokens before the first image token have index -1, and where() discards their rows.
    feature_index = torch.clamp(feature_index, min=0)
    gathered = torch.index_select(features, 0, feature_index).reshape(inputs_embeds.shape)
    return torch.where(is_image.unsqueeze(-1), gathered, inputs_embeds)
