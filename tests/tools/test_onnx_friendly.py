"""tools/onnx_friendly.py against the transformers code it replaces, in eager mode (no trace)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids

from example_inputs import InputSpec, make_inputs
from onnx_friendly import (
    DynamicVisionEncoder,
    build_causal_mask,
    cache_from_flat,
    flat_from_cache,
    frame_attention_mask,
    merge_image_features,
    vision_patch_layout,
)

VISION_TOLERANCE = 1e-5

# (t, h, w) in patches per image; t > 1 is a video.
VISION_CASES = {
    "one_image_4x4": [(1, 4, 4)],
    "three_images_mixed": [(1, 4, 4), (1, 8, 12), (1, 6, 2)],
    "video_two_frames_and_image": [(2, 4, 6), (1, 4, 4)],
    "video_four_frames": [(4, 4, 4)],
    "image_64x64": [(1, 64, 64)],
    "zero_images": [],
}


def vision_inputs(grids, seed=0, patch_features=1176):
    generator = torch.Generator().manual_seed(seed)
    grid_thw = torch.tensor(grids, dtype=torch.int64).reshape(-1, 3)
    num_patches = int(grid_thw.prod(dim=1).sum())
    pixel_values = torch.randn(num_patches, patch_features, generator=generator)
    return pixel_values, grid_thw


@pytest.mark.parametrize("case", [name for name, grids in VISION_CASES.items() if grids])
def test_patch_layout_matches_transformers(case):
    grids = VISION_CASES[case]
    grid_thw = torch.tensor(grids, dtype=torch.int64)
    num_patches = int(grid_thw.prod(dim=1).sum())

    position_ids, frame_ids = vision_patch_layout(grid_thw, num_patches, merge_size=2)

    expected_positions = get_vision_position_ids(grid_thw, 2)
    assert torch.equal(position_ids, expected_positions)
    # Frames are the attention segments of transformers: patches share a frame id
    # exactly when they lie between the same two cu_seqlens boundaries.
    boundaries = get_vision_cu_seqlens(grid_thw).to(torch.int64)
    segment = torch.bucketize(torch.arange(num_patches), boundaries[1:], right=True)
    same_segment = segment.unsqueeze(0) == segment.unsqueeze(1)
    same_frame = frame_ids.unsqueeze(0) == frame_ids.unsqueeze(1)
    assert torch.equal(same_frame, same_segment)


def test_frame_mask_blocks_other_frames():
    frame_ids = torch.tensor([0, 0, 2, 2, 2])
    mask = frame_attention_mask(frame_ids, torch.float32)
    minimum = torch.finfo(torch.float32).min
    assert mask[0, 1] == 0
    assert mask[2, 4] == 0
    assert mask[0, 2] == minimum
    assert mask[4, 1] == minimum


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("case", list(VISION_CASES))
def test_vision_encoder_matches_transformers(case, attention, eager_model, sdpa_model):
    model = eager_model if attention == "eager" else sdpa_model
    pixel_values, grid_thw = vision_inputs(VISION_CASES[case])
    encoder = DynamicVisionEncoder(model.model.visual, attention=attention)

    with torch.no_grad():
        features = encoder(pixel_values, grid_thw)

    hidden_size = model.config.vision_config.hidden_size
    assert features.shape == (pixel_values.shape[0] // 4, hidden_size)
    if pixel_values.shape[0] == 0:
        return  # transformers' vision forward cannot run on zero images
    with torch.no_grad():
        expected = model.model.visual(pixel_values, grid_thw=grid_thw).pooler_output
    assert expected.abs().max() > 1.0, "reference features are too small to compare"
    max_diff = (features - expected).abs().max().item()
    assert max_diff <= VISION_TOLERANCE, f"max abs diff {max_diff:.3g} for {case} ({attention})"


def test_vision_encoder_rejects_unknown_attention(eager_model):
    with pytest.raises(ValueError, match="attention must be one of"):
        DynamicVisionEncoder(eager_model.model.visual, attention="flash")


MASK_CASES = {
    # name: (batch, query_length, past_length, left padding per row)
    "no_padding": (2, 5, 0, [0, 0]),
    "left_padding": (3, 6, 0, [0, 2, 5]),
    "past_and_padding": (2, 4, 7, [3, 0]),
    "single_query_with_past": (3, 1, 9, [0, 4, 9]),
}


def padding_mask(batch, total_length, padding):
    mask = torch.ones(batch, total_length, dtype=torch.int64)
    for row, count in enumerate(padding):
        mask[row, :count] = 0
    return mask


def reference_mask(config, batch, query_length, past_length, mask_2d):
    """transformers' own 4-D mask for the same inputs, never skipped for SDPA."""
    embeds = torch.zeros(batch, query_length, config.hidden_size)
    cache = None
    if past_length:
        shape = (batch, config.num_key_value_heads, past_length, config.hidden_size // config.num_attention_heads)
        pairs = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(config.num_hidden_layers)]
        cache = DynamicCache(ddp_cache_data=pairs, config=config)
    return create_causal_mask(
        config=config,
        inputs_embeds=embeds,
        attention_mask=mask_2d,
        cache=cache,
        allow_is_causal_skip=False,
    )


@pytest.mark.parametrize("case", list(MASK_CASES))
def test_additive_mask_matches_eager_mask(case, eager_model):
    batch, query_length, past_length, padding = MASK_CASES[case]
    mask_2d = padding_mask(batch, past_length + query_length, padding)

    ours = build_causal_mask(mask_2d, query_length, torch.float32)
    expected = reference_mask(eager_model.config.text_config, batch, query_length, past_length, mask_2d)

    assert ours.shape == (batch, 1, query_length, past_length + query_length)
    assert torch.equal(ours, expected)


@pytest.mark.parametrize("case", list(MASK_CASES))
def test_boolean_mask_matches_sdpa_mask(case, sdpa_model):
    batch, query_length, past_length, padding = MASK_CASES[case]
    mask_2d = padding_mask(batch, past_length + query_length, padding)

    ours = build_causal_mask(mask_2d, query_length, torch.float32, boolean=True)
    expected = reference_mask(sdpa_model.config.text_config, batch, query_length, past_length, mask_2d)

    assert ours.dtype == torch.bool
    assert torch.equal(ours, expected.expand_as(ours))


def test_additive_mask_fully_masked_row_has_no_nan():
    mask_2d = padding_mask(1, 4, [2])
    mask = build_causal_mask(mask_2d, 4, torch.float32)
    scores = torch.randn(1, 1, 4, 4) + mask
    weights = torch.softmax(scores, dim=-1)
    assert bool((mask[0, 0, 0] == torch.finfo(torch.float32).min).all())
    assert not torch.isnan(weights).any()


@pytest.mark.parametrize("grids", [[(1, 4, 4), (1, 2, 6)], []], ids=["two_images", "zero_images"])
def test_merge_image_features_matches_masked_scatter(grids, sizes):
    inputs = make_inputs(InputSpec(batch=2, sequence=12, grids=grids, seed=3), sizes)
    input_ids = torch.from_numpy(inputs["input_ids"])
    inputs_embeds = torch.from_numpy(inputs["inputs_embeds"])
    num_tokens = int((input_ids == sizes.image_token_id).sum())
    features = torch.randn(num_tokens, sizes.hidden_size)

    merged = merge_image_features(inputs_embeds, input_ids, features, sizes.image_token_id)

    image_mask = (input_ids == sizes.image_token_id).unsqueeze(-1).expand_as(inputs_embeds)
    expected = inputs_embeds.masked_scatter(image_mask, features)
    assert torch.equal(merged, expected)


@pytest.mark.parametrize("past_length", [0, 3])
def test_cache_round_trip_appends_new_states(past_length, eager_model):
    config = eager_model.config.text_config
    head_dim = config.hidden_size // config.num_attention_heads
    past = [torch.randn(2, config.num_key_value_heads, past_length, head_dim) for _ in range(2 * config.num_hidden_layers)]
    new_key = torch.randn(2, config.num_key_value_heads, 4, head_dim)
    new_value = torch.randn(2, config.num_key_value_heads, 4, head_dim)

    cache = cache_from_flat(past, config)
    assert cache.get_seq_length() == past_length
    cache.update(new_key, new_value, layer_idx=0)
    flat = flat_from_cache(cache)

    assert len(flat) == 2 * config.num_hidden_layers
    assert torch.equal(flat[0], torch.cat([past[0], new_key], dim=2))
    assert torch.equal(flat[1], torch.cat([past[1], new_value], dim=2))
    assert torch.equal(flat[2], past[2])


def test_cache_from_flat_rejects_wrong_count(eager_model):
    config = eager_model.config.text_config
    with pytest.raises(ValueError, match="past tensors"):
        cache_from_flat([torch.zeros(1, 2, 0, 16)], config)


def test_example_inputs_reject_images_that_do_not_fit(sizes):
    with pytest.raises(ValueError, match="sequence length"):
        make_inputs(InputSpec(batch=1, sequence=5, grids=[(1, 4, 4)]), sizes)
    with pytest.raises(ValueError, match="merge size"):
        make_inputs(InputSpec(batch=1, sequence=30, grids=[(1, 3, 4)]), sizes)


def test_example_positions_match_transformers_rope_index(sizes, eager_model):
    spec = InputSpec(batch=2, sequence=30, grids=[(1, 4, 4), (1, 6, 8), (1, 2, 2)], left_padding=[3, 0], seed=5)
    inputs = make_inputs(spec, sizes)
    input_ids = torch.from_numpy(inputs["input_ids"])
    token_types = (input_ids == sizes.image_token_id).to(torch.int32)

    expected, _ = eager_model.model.get_rope_index(
        input_ids,
        mm_token_type_ids=token_types,
        image_grid_thw=torch.from_numpy(inputs["image_grid_thw"]),
        attention_mask=torch.from_numpy(inputs["attention_mask"]),
    )
    np.testing.assert_array_equal(inputs["position_ids"], expected.numpy())
