"""A --plain-vision trace freezes the image layout, which the exporter must detect.

transformers' vision forward splits patches with `cu_seqlens.tolist()` and builds
rotary positions in a loop over `grid_thw`, so the trace keeps the traced grids as
constants. At another image count it fails or returns wrong features.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from example_inputs import InputSpec, make_inputs
from hf_reference import compute_reference
import trace_model
from trace_model import TRACE_VISION_GRIDS


@pytest.fixture(scope="module")
def plain_trace(tiny_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("plain") / "plain.pt"
    arguments = [str(tiny_dir), "--output", str(output), "--plain-vision", "--methods", "vision_encoder"]
    assert trace_model.main(arguments) == 0
    return output


def vision_case(grids, sizes, seed=31):
    inputs = make_inputs(InputSpec(batch=1, sequence=200, grids=grids, seed=seed), sizes)
    return inputs, [torch.from_numpy(inputs["pixel_values"]), torch.from_numpy(inputs["grid_thw"])]


def test_plain_trace_metadata_says_static(plain_trace):
    with zipfile.ZipFile(plain_trace) as archive:
        name = next(entry for entry in archive.namelist() if entry.endswith("extra/qwen2vl_export.json"))
        metadata = json.loads(archive.read(name))
    assert metadata["vision"] == "static"
    assert metadata["methods"] == ["vision_encoder"]


def test_plain_trace_is_right_at_traced_grids(plain_trace, eager_model, sizes):
    traced = torch.jit.load(str(plain_trace))
    inputs, arguments = vision_case(TRACE_VISION_GRIDS, sizes)
    with torch.no_grad():
        features = traced.vision_encoder(*arguments).numpy()
    expected = compute_reference(eager_model, "vision_encoder", inputs)["image_features"]
    assert float(np.abs(features - expected).max()) <= 1e-5


@pytest.mark.parametrize(
    "grids",
    [[(1, 4, 4)], [(1, 8, 12), (1, 4, 4), (1, 2, 2)], [(2, 6, 8), (1, 4, 4)]],
    ids=["one_image", "three_images", "video_and_image"],
)
def test_plain_trace_fails_at_other_image_count(grids, plain_trace, sizes):
    traced = torch.jit.load(str(plain_trace))
    _, arguments = vision_case(grids, sizes)
    with pytest.raises(RuntimeError), torch.no_grad():
        traced.vision_encoder(*arguments)


def test_plain_trace_is_wrong_for_same_patch_count(plain_trace, eager_model, sizes):
    # The traced grids in the other order: the same 80 patches, laid out differently.
    grids = list(reversed(TRACE_VISION_GRIDS))
    traced = torch.jit.load(str(plain_trace))
    inputs, arguments = vision_case(grids, sizes)
    with torch.no_grad():
        features = traced.vision_encoder(*arguments).numpy()
    expected = compute_reference(eager_model, "vision_encoder", inputs)["image_features"]
    assert features.shape == expected.shape
    assert float(np.abs(features - expected).max()) > 1e-2
