"""The image-text-to-text layout (vision_encoder, embed_tokens, decoder_model_merged) against transformers.

A runtime such as transformers.js runs the three graphs in turn: the vision
encoder on the patches, the token embedding, the image features in place of the
image tokens' embeddings, then the decoder with past key/values. That loop must
generate transformers' greedy tokens. The vision encoder alone must match
transformers' vision tower within 1e-4 on images, videos and a large image.
"""

from __future__ import annotations

import numpy as np
import pytest

from export_support import (
    GENERATION_GRIDS,
    TOLERANCE,
    compare_outputs,
    greedy_decode,
    ort_session,
    run_session,
    split_graph_step,
)
from example_inputs import InputSpec, image_tokens, make_inputs
from hf_reference import compute_reference

# Grids (t, h, w) in patches for the vision encoder alone. t > 1 is a video.
VISION_GRIDS = {
    "one_image_4x4": [(1, 4, 4)],
    "three_images": [(1, 2, 2), (1, 8, 12), (1, 4, 6)],
    "two_frame_video_and_image": [(2, 6, 4), (1, 4, 8)],
    "four_frame_video": [(4, 4, 6)],
    "one_image_64x64": [(1, 64, 64)],
    "zero_images": [],
}


@pytest.fixture(scope="module")
def split_dir(task_exports):
    return task_exports.output_dir("image-text-to-text")


@pytest.fixture(scope="module")
def run_step(split_dir, sizes):
    names = ("vision_encoder", "embed_tokens", "decoder_model_merged")
    sessions = [ort_session(str(split_dir / "onnx" / f"{name}.onnx")) for name in names]
    return split_graph_step(*sessions, sizes)


@pytest.mark.parametrize("case_name", list(GENERATION_GRIDS))
def test_split_greedy_tokens_match_generate(case_name, run_step, generation_cases, sizes):
    case = generation_cases[case_name]
    tokens, _ = greedy_decode(run_step, case, sizes)
    assert tokens == case.tokens


@pytest.mark.parametrize("case_name", list(GENERATION_GRIDS))
def test_split_step_logits_match_generate(case_name, run_step, generation_cases, sizes):
    case = generation_cases[case_name]
    _, logits = greedy_decode(run_step, case, sizes, forced_tokens=case.tokens)
    assert logits.shape == case.logits.shape
    max_diff = float(np.abs(logits - case.logits).max())
    assert max_diff <= TOLERANCE, f"max abs diff {max_diff:.3g} over {len(case.tokens)} steps"


@pytest.mark.parametrize("grids_name", list(VISION_GRIDS))
def test_vision_encoder_matches_transformers(grids_name, split_dir, eager_model, sizes):
    grids = VISION_GRIDS[grids_name]
    # The vision encoder reads only pixel_values and grid_thw, so the sequence just fits the image tokens.
    sequence = sum(image_tokens(grid, sizes.merge_size) + 2 for grid in grids) + 1
    inputs = make_inputs(InputSpec(batch=1, sequence=sequence, grids=grids, seed=51), sizes)
    expected = compute_reference(eager_model, "vision_encoder", inputs)

    session = ort_session(str(split_dir / "onnx" / "vision_encoder.onnx"))
    outputs = run_session(session, inputs)

    compare_outputs(outputs, expected, f"vision_encoder at {grids_name}")


def test_embed_tokens_matches_transformers(split_dir, eager_model, sizes):
    inputs = make_inputs(InputSpec(batch=3, sequence=37, seed=52), sizes)
    expected = compute_reference(eager_model, "embed_tokens", inputs)

    session = ort_session(str(split_dir / "onnx" / "embed_tokens.onnx"))
    outputs = run_session(session, inputs)

    compare_outputs(outputs, expected, "embed_tokens at batch 3, sequence 37")
