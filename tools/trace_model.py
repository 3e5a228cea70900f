#!/usr/bin/env python3
"""Trace a Qwen2-VL checkpoint into the TorchScript archive that qwen2vl-export converts.

The archive has the seven methods of docs/torchscript-contract.md, traced with
`torch.jit.trace_module` so that they share one copy of the weights. The vision tower,
the attention mask, the image merge and the cache come from `onnx_friendly.py`, so
batch, sequence, past length and image count stay dynamic. `--plain-vision` traces
transformers' own vision code instead, whose image count and sizes freeze at trace
time. The exporter's tests use that archive as a negative case.

Usage:
    trace_model.py CHECKPOINT_DIR --output FILE.pt [--attn eager|sdpa] [--plain-vision]
                   [--methods a,b,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from example_inputs import (  # noqa: E402
    METHODS,
    WITH_PAST_METHODS,
    InputSpec,
    ModelSizes,
    input_names,
    make_inputs,
    output_names,
    select_inputs,
)
from onnx_friendly import (  # noqa: E402
    DynamicVisionEncoder,
    build_causal_mask,
    cache_from_flat,
    flat_from_cache,
    merge_image_features,
)

CONTRACT_VERSION = 1
METADATA_FILE = "qwen2vl_export.json"

# Example sizes for the trace. No dimension is 0 or 1, and the two images differ in
# shape, so the tracer cannot fold a size into a constant that happens to be right.
# The vision example has a two-frame video (t = 2) and one image.
TRACE_SPEC = InputSpec(batch=2, sequence=24, past=0, grids=[(1, 4, 4), (1, 6, 8)], left_padding=[2, 0], seed=7)
TRACE_PAST_LENGTH = 5
TRACE_VISION_GRIDS = [(2, 4, 4), (1, 6, 8)]


class PlainVisionEncoder(nn.Module):
    """transformers' own vision forward, whose per-image Python loops freeze in a trace."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        return self.visual(pixel_values, grid_thw=grid_thw).pooler_output


class Qwen2VLTraceModule(nn.Module):
    """The seven contract methods over one Qwen2VLForConditionalGeneration."""

    def __init__(self, model: nn.Module, attn_implementation: str, plain_vision: bool) -> None:
        super().__init__()
        self.model = model
        if plain_vision:
            self.vision = PlainVisionEncoder(model.model.visual)
        else:
            self.vision = DynamicVisionEncoder(model.model.visual, attention=attn_implementation)
        # transformers builds a boolean mask for SDPA and an additive one for eager
        # attention. The trace does the same, so that padded rows match transformers.
        self.boolean_mask = attn_implementation == "sdpa"
        self.image_token_id = int(model.config.image_token_id)
        self.text_config = model.config.text_config

    def _run_language_model(self, inputs_embeds, attention_mask, position_ids, past_key_values):
        mask = build_causal_mask(attention_mask, inputs_embeds.shape[1], inputs_embeds.dtype, self.boolean_mask)
        cache = cache_from_flat(past_key_values, self.text_config) if past_key_values is not None else None
        outputs = self.model.model.language_model(
            input_ids=None,
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
        )
        presents = flat_from_cache(cache) if cache is not None else []
        return outputs.last_hidden_state, presents

    def _embed_with_images(self, input_ids, pixel_values, image_grid_thw):
        inputs_embeds = self.model.model.language_model.embed_tokens(input_ids)
        image_features = self.vision(pixel_values, image_grid_thw)
        return merge_image_features(inputs_embeds, input_ids, image_features, self.image_token_id)

    def feature_extraction(self, input_ids, attention_mask, position_ids, pixel_values, image_grid_thw):
        inputs_embeds = self._embed_with_images(input_ids, pixel_values, image_grid_thw)
        hidden, _ = self._run_language_model(inputs_embeds, attention_mask, position_ids, None)
        return hidden

    def feature_extraction_with_past(self, input_ids, attention_mask, position_ids, pixel_values, image_grid_thw, *past):
        inputs_embeds = self._embed_with_images(input_ids, pixel_values, image_grid_thw)
        hidden, presents = self._run_language_model(inputs_embeds, attention_mask, position_ids, list(past))
        return (hidden, *presents)

    def text_generation(self, input_ids, attention_mask, position_ids, pixel_values, image_grid_thw):
        hidden = self.feature_extraction(input_ids, attention_mask, position_ids, pixel_values, image_grid_thw)
        return self.model.lm_head(hidden)

    def text_generation_with_past(self, input_ids, attention_mask, position_ids, pixel_values, image_grid_thw, *past):
        hidden, *presents = self.feature_extraction_with_past(
            input_ids, attention_mask, position_ids, pixel_values, image_grid_thw, *past
        )
        return (self.model.lm_head(hidden), *presents)

    def vision_encoder(self, pixel_values, grid_thw):
        return self.vision(pixel_values, grid_thw)

    def embed_tokens(self, input_ids):
        return self.model.model.language_model.embed_tokens(input_ids)

    def decoder(self, inputs_embeds, attention_mask, position_ids, *past):
        hidden, presents = self._run_language_model(inputs_embeds, attention_mask, position_ids, list(past))
        return (self.model.lm_head(hidden), *presents)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Trace a Qwen2-VL checkpoint into a TorchScript archive.")
    parser.add_argument("checkpoint", type=Path, help="folder with config.json and safetensors weights")
    parser.add_argument("--output", type=Path, required=True, help="path of the .pt archive to write")
    parser.add_argument(
        "--attn",
        choices=("eager", "sdpa"),
        default="eager",
        help="attention implementation of the traced graphs (default eager: matmul and softmax)",
    )
    parser.add_argument(
        "--plain-vision",
        action="store_true",
        help="trace transformers' own vision code, which freezes the image count (negative test input)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated methods to trace (default all: {','.join(METHODS)})",
    )
    return parser.parse_args(argv)


def check_checkpoint(checkpoint: Path) -> dict:
    """Return the parsed config.json, or raise ValueError saying what is wrong with the folder."""
    if not checkpoint.is_dir():
        raise ValueError(f"checkpoint folder not found: {checkpoint}")
    config_path = checkpoint / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{checkpoint} has no config.json; pass a Hugging Face checkpoint folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from error
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "qwen2_vl":
        raise ValueError(
            f"{config_path} has model_type {model_type!r}; this tool traces Qwen2-VL checkpoints (model_type 'qwen2_vl')"
        )
    return config


def parse_methods(text: str) -> list[str]:
    methods = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ValueError(f"invalid --methods {text!r}; choose from {', '.join(METHODS)}")
    # Keep the contract's order, whatever order the user gave.
    return [name for name in METHODS if name in methods]


def load_model(checkpoint: Path, attn_implementation: str):
    from transformers import Qwen2VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = Qwen2VLForConditionalGeneration.from_pretrained(
        checkpoint, local_files_only=True, dtype=torch.float32, attn_implementation=attn_implementation
    )
    # Frozen parameters make the traced methods return tensors without autograd history.
    model.requires_grad_(False)
    return model.eval()


def example_arguments(methods: list[str], sizes: ModelSizes) -> dict[str, tuple[torch.Tensor, ...]]:
    """Build the example inputs of each method for the trace."""
    step = make_inputs(TRACE_SPEC, sizes)
    with_past_spec = InputSpec(**{**TRACE_SPEC.__dict__, "past": TRACE_PAST_LENGTH, "seed": TRACE_SPEC.seed + 1})
    with_past = make_inputs(with_past_spec, sizes)
    vision_spec = InputSpec(batch=1, sequence=32, grids=TRACE_VISION_GRIDS, seed=TRACE_SPEC.seed + 2)
    vision = make_inputs(vision_spec, sizes)

    arguments = {}
    for method in methods:
        source = with_past if method in WITH_PAST_METHODS else step
        if method == "vision_encoder":
            source = vision
        arrays = select_inputs(method, source, sizes.num_layers)
        arguments[method] = tuple(torch.from_numpy(array) for array in arrays)
    return arguments


def build_metadata(methods, sizes, args, arguments) -> dict:
    import transformers

    return {
        "contract_version": CONTRACT_VERSION,
        "methods": methods,
        "num_hidden_layers": sizes.num_layers,
        "vision": "static" if args.plain_vision else "dynamic",
        "attn_implementation": args.attn,
        "causal_mask": "boolean" if args.attn == "sdpa" else "additive",
        "image_token_id": sizes.image_token_id,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "traced_shapes": {method: [list(tensor.shape) for tensor in arguments[method]] for method in methods},
        # A plain trace accepts only these grids; the exporter profiles it at them.
        "traced_image_grids": {
            method: [list(grid) for grid in (TRACE_VISION_GRIDS if method == "vision_encoder" else TRACE_SPEC.grids)]
            for method in methods
            if method not in ("embed_tokens", "decoder")
        },
        "input_names": {method: input_names(method, sizes.num_layers) for method in methods},
        "output_names": {method: output_names(method, sizes.num_layers) for method in methods},
    }


def trace(module: Qwen2VLTraceModule, arguments: dict[str, tuple[torch.Tensor, ...]]) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # Every shape comparison in transformers' Python code raises a TracerWarning. The
        # tests check the trace at other sizes, which is where a frozen size would show.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The tracer reads every module attribute, including this deprecated property of transformers 5.x.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        with torch.no_grad():
            return torch.jit.trace_module(module, arguments, check_trace=False)


def save_archive(traced: torch.jit.ScriptModule, output: Path, metadata: dict) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    torch.jit.save(traced, str(partial), _extra_files={METADATA_FILE: json.dumps(metadata, indent=2)})
    os.replace(partial, output)


def copy_config(checkpoint: Path, output: Path) -> None:
    """Copy config.json beside the archive when the archive is in another folder."""
    if output.parent.resolve() != checkpoint.resolve():
        shutil.copyfile(checkpoint / "config.json", output.parent / "config.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_checkpoint(args.checkpoint)
        methods = parse_methods(args.methods)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    try:
        model = load_model(args.checkpoint, args.attn)
    except (OSError, ValueError) as error:
        print(f"error: cannot load {args.checkpoint} with transformers: {error}", file=sys.stderr)
        return 1

    sizes = ModelSizes.from_config(model.config)
    module = Qwen2VLTraceModule(model, args.attn, args.plain_vision).eval()
    arguments = example_arguments(methods, sizes)
    traced = trace(module, arguments)
    metadata = build_metadata(methods, sizes, args, arguments)
    save_archive(traced, args.output, metadata)
    copy_config(args.checkpoint, args.output)
    print(f"wrote {args.output} ({', '.join(methods)}; vision {metadata['vision']}, attention {args.attn})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
