"""Compute Qwen2-VL rope indices with transformers' own get_rope_index.

The C++ test of the get_rope_index port writes its cases to CASES_JSON, runs
this script and compares the output exactly.

Usage: rope_index_reference.py CASES_JSON OUTPUT_JSON

CASES_JSON:
    {"image_token_id": int, "video_token_id": int,
     "vision_start_token_id": int, "vision_end_token_id": int,
     "spatial_merge_size": int,
     "cases": [{"name": str, "input_ids": [[int]],
                "image_grid_thw": [[t, h, w]] or null,
                "video_grid_thw": [[t, h, w]] or null,
                "attention_mask": [[int]] or null}]}

OUTPUT_JSON:
    {"transformers_version": str,
     "cases": [{"name": str, "position_ids": [[[int]]], "rope_deltas": [[int]]}]}

get_rope_index in transformers 5 takes mm_token_type_ids. This script derives
them from input_ids as the Qwen2-VL processor does: 1 for image tokens, 2 for
video tokens and 0 otherwise.
"""

import json
import sys

import torch
import transformers
from transformers import Qwen2VLConfig
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel


def build_model(spec):
    """Build a small random Qwen2VLModel whose token ids and merge size match the cases."""
    token_ids = [spec["image_token_id"], spec["video_token_id"], spec["vision_start_token_id"],
                 spec["vision_end_token_id"]]
    config = Qwen2VLConfig(
        text_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 64,
            "vocab_size": max(token_ids) + 1,
            "bos_token_id": 0,
            "eos_token_id": 0,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        },
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "num_heads": 2,
            "hidden_size": 32,
            "spatial_merge_size": spec["spatial_merge_size"],
        },
        image_token_id=spec["image_token_id"],
        video_token_id=spec["video_token_id"],
        vision_start_token_id=spec["vision_start_token_id"],
        vision_end_token_id=spec["vision_end_token_id"],
    )
    return Qwen2VLModel(config).eval()


def optional_tensor(value):
    return None if value is None else torch.tensor(value, dtype=torch.long)


def run_case(model, spec, case):
    input_ids = torch.tensor(case["input_ids"], dtype=torch.long)
    mm_token_type_ids = torch.zeros_like(input_ids, dtype=torch.int)
    mm_token_type_ids[input_ids == spec["image_token_id"]] = 1
    mm_token_type_ids[input_ids == spec["video_token_id"]] = 2
    with torch.no_grad():
        position_ids, rope_deltas = model.get_rope_index(
            input_ids,
            mm_token_type_ids=mm_token_type_ids,
            image_grid_thw=optional_tensor(case.get("image_grid_thw")),
            video_grid_thw=optional_tensor(case.get("video_grid_thw")),
            attention_mask=optional_tensor(case.get("attention_mask")),
        )
    return {
        "name": case["name"],
        "position_ids": position_ids.tolist(),
        "rope_deltas": rope_deltas.reshape(-1, 1).tolist(),
    }


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: rope_index_reference.py CASES_JSON OUTPUT_JSON")
    with open(sys.argv[1], encoding="utf-8") as stream:
        spec = json.load(stream)
    model = build_model(spec)
    results = [run_case(model, spec, case) for case in spec["cases"]]
    with open(sys.argv[2], "w", encoding="utf-8") as stream:
        json.dump({"transformers_version": transformers.__version__, "cases": results}, stream)


if __name__ == "__main__":
    main()
