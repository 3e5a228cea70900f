"""Random inputs for the traced Qwen2-VL methods, named as in docs/torchscript-contract.md.

`trace_model.py` traces on these inputs, and the tests compare the trace with
`hf_reference.py` on them. Arrays are numpy, so they can be written as .npy files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = (
    "feature_extraction",
    "feature_extraction_with_past",
    "text_generation",
    "text_generation_with_past",
    "vision_encoder",
    "embed_tokens",
    "decoder",
)

WITH_PAST_METHODS = ("feature_extraction_with_past", "text_generation_with_past", "decoder")


def past_names(num_layers: int) -> list[str]:
    names = []
    for layer in range(num_layers):
        names += [f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"]
    return names


def present_names(num_layers: int) -> list[str]:
    names = []
    for layer in range(num_layers):
        names += [f"present.{layer}.key", f"present.{layer}.value"]
    return names


def input_names(method: str, num_layers: int) -> list[str]:
    """Return the positional argument names of `method`, in contract order."""
    multimodal = ["input_ids", "attention_mask", "position_ids", "pixel_values", "image_grid_thw"]
    if method in ("feature_extraction", "text_generation"):
        return multimodal
    if method in ("feature_extraction_with_past", "text_generation_with_past"):
        return multimodal + past_names(num_layers)
    if method == "vision_encoder":
        return ["pixel_values", "grid_thw"]
    if method == "embed_tokens":
        return ["input_ids"]
    if method == "decoder":
        return ["inputs_embeds", "attention_mask", "position_ids"] + past_names(num_layers)
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def output_names(method: str, num_layers: int) -> list[str]:
    """Return the output names of `method`, in contract order."""
    if method == "feature_extraction":
        return ["last_hidden_state"]
    if method == "feature_extraction_with_past":
        return ["last_hidden_state"] + present_names(num_layers)
    if method == "text_generation":
        return ["logits"]
    if method in ("text_generation_with_past", "decoder"):
        return ["logits"] + present_names(num_layers)
    if method == "vision_encoder":
        return ["image_features"]
    if method == "embed_tokens":
        return ["inputs_embeds"]
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


@dataclass
class ModelSizes:
    """The config values that input shapes and token ids depend on."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_key_value_heads: int
    head_dim: int
    patch_features: int
    merge_size: int
    image_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    special_token_ids: tuple[int, ...]

    @classmethod
    def from_config(cls, config) -> "ModelSizes":
        """Read the sizes from a transformers Qwen2VLConfig."""
        text, vision = config.text_config, config.vision_config
        specials = {
            config.image_token_id,
            config.video_token_id,
            config.vision_start_token_id,
            config.vision_end_token_id,
        }
        specials |= {value for value in (text.bos_token_id, text.eos_token_id, text.pad_token_id) if value is not None}
        return cls(
            vocab_size=text.vocab_size,
            hidden_size=text.hidden_size,
            num_layers=text.num_hidden_layers,
            num_key_value_heads=text.num_key_value_heads,
            head_dim=text.hidden_size // text.num_attention_heads,
            patch_features=vision.in_channels * vision.temporal_patch_size * vision.patch_size**2,
            merge_size=vision.spatial_merge_size,
            image_token_id=config.image_token_id,
            vision_start_token_id=config.vision_start_token_id,
            vision_end_token_id=config.vision_end_token_id,
            special_token_ids=tuple(sorted(specials)),
        )


@dataclass
class InputSpec:
    """Sizes of one input set.

    `grids` lists (t, h, w) in patches per image. Images go to batch rows in order,
    image i to row i * batch // len(grids), so their tokens appear in batch-major
    order. `left_padding[b]` positions at the start of row b (past first, then the
    new tokens) have attention_mask 0.
    """

    batch: int = 2
    sequence: int = 24
    past: int = 0
    grids: list[tuple[int, int, int]] = field(default_factory=list)
    left_padding: list[int] = field(default_factory=list)
    seed: int = 0


def image_tokens(grid: tuple[int, int, int], merge_size: int) -> int:
    t, h, w = grid
    return t * h * w // (merge_size * merge_size)


def _row_layout(spec: InputSpec) -> list[list[int]]:
    rows: list[list[int]] = [[] for _ in range(spec.batch)]
    for index in range(len(spec.grids)):
        rows[index * spec.batch // len(spec.grids)].append(index)
    return rows


def _rope_positions(
    tokens: np.ndarray, grids: list[tuple[int, int, int]], sizes: ModelSizes, start: int
) -> np.ndarray:
    """Compute the 3-D M-RoPE positions [3, len(tokens)] of one unpadded row of text and image tokens.

    Text tokens advance all three rows by 1. An image of t x h x w patches takes a
    (t, h / m, w / m) grid of positions offset by the current position. The next
    position is then the current one plus max(h, w) / m. This follows transformers'
    Qwen2VLModel.get_rope_index (5.x).
    """
    positions = np.zeros((3, len(tokens)), dtype=np.int64)
    current = start
    index = 0
    image = 0
    while index < len(tokens):
        if tokens[index] != sizes.image_token_id:
            positions[:, index] = current
            current += 1
            index += 1
            continue
        t, h, w = grids[image]
        m = sizes.merge_size
        tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h // m), np.arange(w // m), indexing="ij")
        count = tt.size
        positions[0, index : index + count] = tt.reshape(-1) + current
        positions[1, index : index + count] = hh.reshape(-1) + current
        positions[2, index : index + count] = ww.reshape(-1) + current
        current += max(h, w) // m
        index += count
        image += 1
    return positions


def make_inputs(spec: InputSpec, sizes: ModelSizes) -> dict[str, np.ndarray]:
    """Build every input of every method for `spec`, keyed by contract name.

    Raises ValueError when the images of a row do not fit in the sequence after its
    padding, or a grid is not divisible by the merge size.
    """
    rng = np.random.default_rng(spec.seed)
    batch, sequence, past = spec.batch, spec.sequence, spec.past
    padding = list(spec.left_padding) + [0] * (batch - len(spec.left_padding))
    for grid in spec.grids:
        if grid[1] % sizes.merge_size or grid[2] % sizes.merge_size:
            raise ValueError(f"grid {grid} is not divisible by merge size {sizes.merge_size}")

    ordinary = np.setdiff1d(np.arange(sizes.vocab_size), np.array(sizes.special_token_ids))
    input_ids = rng.choice(ordinary, size=(batch, sequence)).astype(np.int64)
    attention_mask = np.ones((batch, past + sequence), dtype=np.int64)
    position_ids = np.zeros((3, batch, sequence), dtype=np.int64)

    for row, images in enumerate(_row_layout(spec)):
        attention_mask[row, : padding[row]] = 0
        first_real = max(padding[row] - past, 0)  # first unpadded position among the new tokens
        needed = sum(image_tokens(spec.grids[i], sizes.merge_size) + 2 for i in images)
        if first_real + needed > sequence:
            raise ValueError(
                f"row {row} needs {needed} tokens for images {images} after {first_real} padded ones,"
                f" but the sequence length is {sequence}"
            )
        cursor = first_real
        for image in images:
            count = image_tokens(spec.grids[image], sizes.merge_size)
            input_ids[row, cursor] = sizes.vision_start_token_id
            input_ids[row, cursor + 1 : cursor + 1 + count] = sizes.image_token_id
            input_ids[row, cursor + 1 + count] = sizes.vision_end_token_id
            cursor += count + 2
        real_tokens = input_ids[row, first_real:]
        real_past = past - min(padding[row], past)
        grids = [spec.grids[i] for i in images]
        position_ids[:, row, first_real:] = _rope_positions(real_tokens, grids, sizes, start=real_past)

    num_patches = sum(t * h * w for t, h, w in spec.grids)
    grid_array = np.array(spec.grids, dtype=np.int64).reshape(-1, 3)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "pixel_values": rng.standard_normal((num_patches, sizes.patch_features), dtype=np.float32),
        "image_grid_thw": grid_array,
        "grid_thw": grid_array.copy(),
        "inputs_embeds": rng.standard_normal((batch, sequence, sizes.hidden_size), dtype=np.float32),
    }
    kv_shape = (batch, sizes.num_key_value_heads, past, sizes.head_dim)
    for name in past_names(sizes.num_layers):
        inputs[name] = rng.standard_normal(kv_shape, dtype=np.float32)
    return inputs


def select_inputs(method: str, inputs: dict[str, np.ndarray], num_layers: int) -> list[np.ndarray]:
    """Return the arguments of `method` from `inputs`, in contract order."""
    return [inputs[name] for name in input_names(method, num_layers)]
