#!/usr/bin/env python3
"""Compute the outputs of one contract method with unmodified transformers, as the numeric reference.

The reference runs Qwen2VLForConditionalGeneration in float32 exactly as transformers
ships it: its own vision code, its own mask from the 2-D attention_mask, a
DynamicCache for past key/values and masked_scatter for image features. Nothing from
onnx_friendly.py is used, so a test that compares a trace with this reference checks
the replacements too.

Inputs and outputs are .npy files named as in docs/torchscript-contract.md
(input_ids.npy, past_key_values.0.key.npy, logits.npy, present.0.key.npy, ...).
`compute_reference` does the same in-process and returns a dict of arrays.

Usage:
    hf_reference.py --checkpoint DIR --method NAME --inputs IN_DIR --outputs OUT_DIR [--attn eager|sdpa]
"""

from __future__ import annotations

import argparse
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from example_inputs import METHODS, WITH_PAST_METHODS, input_names, output_names, past_names  # noqa: E402


@lru_cache(maxsize=4)
def load_reference_model(checkpoint: str, attn_implementation: str = "eager"):
    """Load the checkpoint in float32 from local files, once per checkpoint and attention implementation."""
    from transformers import Qwen2VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = Qwen2VLForConditionalGeneration.from_pretrained(
        checkpoint, local_files_only=True, dtype=torch.float32, attn_implementation=attn_implementation
    )
    return model.eval()


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _build_cache(inputs: dict[str, np.ndarray], config):
    from transformers import DynamicCache

    names = past_names(config.text_config.num_hidden_layers)
    pairs = [(_tensor(inputs[names[i]]), _tensor(inputs[names[i + 1]])) for i in range(0, len(names), 2)]
    return DynamicCache(ddp_cache_data=pairs, config=config.text_config)


def _presents(cache) -> list[np.ndarray]:
    arrays = []
    for layer in cache.layers:
        arrays += [layer.keys.numpy(), layer.values.numpy()]
    return arrays


def _image_arguments(inputs: dict[str, np.ndarray], config) -> dict:
    """Return the image keyword arguments for transformers; None when there are no patches."""
    pixel_values = inputs["pixel_values"]
    if pixel_values.shape[0] == 0:
        return {"pixel_values": None, "image_grid_thw": None, "mm_token_type_ids": None}
    input_ids = inputs["input_ids"]
    token_types = (input_ids == config.image_token_id).astype(np.int32)
    token_types += 2 * (input_ids == config.video_token_id).astype(np.int32)
    return {
        "pixel_values": _tensor(pixel_values),
        "image_grid_thw": _tensor(inputs["image_grid_thw"]),
        "mm_token_type_ids": _tensor(token_types),
    }


def compute_reference(model, method: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `method` on `inputs` with unmodified transformers and return its outputs by contract name.

    `model` is a Qwen2VLForConditionalGeneration in float32. `inputs` must contain
    every input name of the method. For zero images (grid_thw [0, 3]) the vision
    reference is an empty [0, hidden_size] array, because transformers' vision
    forward cannot run on zero images (it concatenates an empty list).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    config = model.config
    num_layers = config.text_config.num_hidden_layers
    missing = [name for name in input_names(method, num_layers) if name not in inputs]
    if missing:
        raise ValueError(f"method {method} is missing inputs: {', '.join(missing)}")

    with torch.no_grad():
        outputs = _run(model, method, inputs)
    names = output_names(method, num_layers)
    if len(outputs) != len(names):
        raise RuntimeError(f"method {method} produced {len(outputs)} outputs, expected {len(names)}")
    return dict(zip(names, outputs))


def _run(model, method: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    config = model.config
    if method == "vision_encoder":
        grid = _tensor(inputs["grid_thw"])
        if grid.shape[0] == 0:
            return [np.zeros((0, config.vision_config.hidden_size), dtype=np.float32)]
        features = model.model.visual(_tensor(inputs["pixel_values"]), grid_thw=grid).pooler_output
        return [features.numpy()]

    if method == "embed_tokens":
        return [model.get_input_embeddings()(_tensor(inputs["input_ids"])).numpy()]

    cache = _build_cache(inputs, config) if method in WITH_PAST_METHODS else None
    common = {
        "attention_mask": _tensor(inputs["attention_mask"]),
        "position_ids": _tensor(inputs["position_ids"]),
        "cache": cache,
        "use_cache": cache is not None,
    }

    if method == "decoder":
        result = model(inputs_embeds=_tensor(inputs["inputs_embeds"]), **common)
        return [result.logits.numpy()] + _presents(cache)

    arguments = {"input_ids": _tensor(inputs["input_ids"]), **_image_arguments(inputs, config), **common}
    if method.startswith("feature_extraction"):
        first = model.model(**arguments).last_hidden_state
    else:
        first = model(**arguments).logits
    presents = _presents(cache) if cache is not None else []
    return [first.numpy()] + presents


def read_inputs(directory: Path, method: str, num_layers: int) -> dict[str, np.ndarray]:
    """Read the .npy inputs of `method` from `directory`; raise FileNotFoundError naming a missing file."""
    inputs = {}
    for name in input_names(method, num_layers):
        path = directory / f"{name}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"missing input {path} for method {method}")
        inputs[name] = np.load(path)
    return inputs


def write_outputs(directory: Path, outputs: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in outputs.items():
        np.save(directory / f"{name}.npy", array)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compute reference outputs of one method with unmodified transformers.")
    parser.add_argument("--checkpoint", type=Path, required=True, help="Qwen2-VL checkpoint folder")
    parser.add_argument("--method", required=True, choices=METHODS, help="contract method to compute")
    parser.add_argument("--inputs", type=Path, required=True, help="folder with the method's input .npy files")
    parser.add_argument("--outputs", type=Path, required=True, help="folder to write the output .npy files to")
    parser.add_argument(
        "--attn", choices=("eager", "sdpa"), default="eager", help="transformers attention implementation (default eager)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.checkpoint / "config.json").is_file():
        print(f"error: {args.checkpoint} has no config.json; pass a Qwen2-VL checkpoint folder", file=sys.stderr)
        return 2
    model = load_reference_model(str(args.checkpoint), args.attn)
    try:
        inputs = read_inputs(args.inputs, args.method, model.config.text_config.num_hidden_layers)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    outputs = compute_reference(model, args.method, inputs)
    write_outputs(args.outputs, outputs)
    print(f"wrote {', '.join(name + '.npy' for name in outputs)} to {args.outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
