#!/usr/bin/env python3
"""Write a random Qwen2-VL checkpoint in the Hugging Face layout, for tests and benchmarks.

The default is a tiny model (text hidden 64, 2 layers, GQA with 4 query and 2 key/value
heads, a 2-block vision tower) with a locally trained byte-level BPE tokenizer, a chat
template and an image processor config. `--real-2b` writes the sizes of
Qwen2-VL-2B-Instruct with random weights and no tokenizer.

Weights are float32 and drawn from a seeded generator: the same seed and config give
byte-identical weights on the same torch version. Rerunning over an existing folder
replaces the files that this script writes and leaves other files alone.

Usage:
    make_tiny_model.py OUT_DIR [--seed N] [--config-json FILE]
    make_tiny_model.py OUT_DIR --real-2b [--seed N]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
from pathlib import Path

# Tiny defaults. Special tokens sit at the top of the vocabulary, in the order that
# Qwen2-VL uses from id 151643 on, so their ids fit inside vocab_size 512.
TINY_CONFIG = {
    "model_type": "qwen2_vl",
    "architectures": ["Qwen2VLForConditionalGeneration"],
    "tie_word_embeddings": True,
    "image_token_id": 506,
    "video_token_id": 507,
    "vision_start_token_id": 503,
    "vision_end_token_id": 504,
    "text_config": {
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "use_sliding_window": False,
        "bos_token_id": 500,
        "eos_token_id": 502,
        "pad_token_id": 500,
    },
    "vision_config": {
        "depth": 2,
        "embed_dim": 32,
        "num_heads": 4,
        "mlp_ratio": 2,
        "hidden_size": 64,
        "hidden_act": "quick_gelu",
        "in_channels": 3,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
    },
}

# Sizes and token ids of Qwen2-VL-2B-Instruct's config.json.
REAL_2B_CONFIG = {
    "model_type": "qwen2_vl",
    "architectures": ["Qwen2VLForConditionalGeneration"],
    "tie_word_embeddings": True,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "text_config": {
        "vocab_size": 151936,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 28,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
    },
    "vision_config": {
        "depth": 32,
        "embed_dim": 1280,
        "num_heads": 16,
        "mlp_ratio": 4,
        "hidden_size": 1536,
        "hidden_act": "quick_gelu",
        "in_channels": 3,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
    },
}

# CLIP normalization, which Qwen2-VL's image processor uses.
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]

# Special tokens of the tiny tokenizer, with the config key that fixes each id. A token
# without a key takes the id after its neighbor in Qwen2-VL's layout when that id is
# free, else the highest free id.
SPECIAL_TOKENS = [
    ("<|endoftext|>", "bos_token_id"),
    ("<|im_end|>", "eos_token_id"),
    ("<|vision_start|>", "vision_start_token_id"),
    ("<|vision_end|>", "vision_end_token_id"),
    ("<|image_pad|>", "image_token_id"),
    ("<|video_pad|>", "video_token_id"),
]
UNKEYED_SPECIAL_TOKENS = [
    ("<|im_start|>", "<|endoftext|>"),
    ("<|vision_pad|>", "<|vision_end|>"),
]

# Jinja chat template in the ChatML form that Qwen2-VL's processor expects: each image or
# video part becomes <|vision_start|><|image_pad|><|vision_end|> (or <|video_pad|>), and the
# processor expands the pad token to one token per merged patch.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Words for the tokenizer's training text. The text only has to give BPE enough merges.
TOKENIZER_WORDS = (
    "the a an of to in and or is are was be this that it with for on at by from as not "
    "image images picture photo video frame frames pixel pixels patch patches token tokens "
    "describe show tell what where which who how why when many much count color colour "
    "red green blue yellow black white gray orange purple brown pink dark light bright "
    "cat dog bird horse fish car bus train plane boat tree flower house street road city "
    "person people man woman child children hand face eye eyes head sky sun cloud water "
    "left right top bottom middle center front back near far above below inside outside "
    "one two three four five six seven eight nine ten first second third last next "
    "small large big little tall short long wide narrow round square old new young "
    "sitting standing walking running holding looking wearing eating playing driving "
    "text word words letter letters number numbers sign table chart graph document page "
    "user assistant system question answer please thank you yes no there here some all "
    "model vision language export graph tensor shape batch sequence length position "
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write a random Qwen2-VL checkpoint (config, safetensors, tokenizer).")
    parser.add_argument("out_dir", type=Path, help="output folder, created if missing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument(
        "--config-json",
        type=Path,
        help="JSON file whose keys override the tiny defaults (text_config and vision_config merge key by key)",
    )
    parser.add_argument(
        "--real-2b",
        action="store_true",
        help="write the sizes of Qwen2-VL-2B-Instruct (about 8.9 GB of float32 weights) and no tokenizer",
    )
    return parser.parse_args(argv)


def merge_config(base: dict, overrides: dict) -> dict:
    """Return `base` with `overrides` applied. text_config and vision_config merge key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if key in ("text_config", "vision_config") and isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


INTEGER_TEXT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)
INTEGER_VISION_FIELDS = (
    "depth",
    "embed_dim",
    "num_heads",
    "hidden_size",
    "in_channels",
    "patch_size",
    "temporal_patch_size",
    "spatial_merge_size",
)


def validate_config(config_dict: dict) -> None:
    """Raise ValueError naming the field when the sizes or token ids cannot make a working Qwen2-VL.

    transformers checks the types of the fields but builds models whose attention or
    rotary sizes do not fit together, which fail only when run.
    """
    if config_dict.get("model_type", "qwen2_vl") != "qwen2_vl":
        raise ValueError(f"model_type must be 'qwen2_vl', got {config_dict['model_type']!r}")
    text, vision = config_dict["text_config"], config_dict["vision_config"]
    integer_fields = [("text_config", text, key) for key in INTEGER_TEXT_FIELDS]
    integer_fields += [("vision_config", vision, key) for key in INTEGER_VISION_FIELDS]
    for section, values, key in integer_fields:
        value = values.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{section}.{key} must be a positive integer, got {value!r}")

    hidden, heads, kv_heads = text["hidden_size"], text["num_attention_heads"], text["num_key_value_heads"]
    if hidden % heads:
        raise ValueError(f"text_config.hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    if heads % kv_heads:
        raise ValueError(f"text_config.num_attention_heads {heads} is not divisible by num_key_value_heads {kv_heads}")
    mrope_section = text.get("rope_parameters", {}).get("mrope_section")
    if mrope_section is None or 2 * sum(mrope_section) != hidden // heads:
        raise ValueError(f"text_config.rope_parameters.mrope_section {mrope_section} must sum to head_dim / 2")

    if vision["embed_dim"] % vision["num_heads"]:
        raise ValueError(f"vision_config.embed_dim {vision['embed_dim']} is not divisible by num_heads")
    if vision["hidden_size"] != hidden:
        raise ValueError(f"vision_config.hidden_size {vision['hidden_size']} must equal text_config.hidden_size {hidden}")

    vocab_size = text["vocab_size"]
    token_ids = {key: config_dict.get(key) for key in ("image_token_id", "video_token_id")}
    token_ids.update({key: config_dict.get(key) for key in ("vision_start_token_id", "vision_end_token_id")})
    token_ids.update({key: text.get(key) for key in ("bos_token_id", "eos_token_id", "pad_token_id")})
    for key, value in token_ids.items():
        if value is not None and not 0 <= value < vocab_size:
            raise ValueError(f"{key} {value} is outside vocab_size {vocab_size}")


def build_config(config_dict: dict):
    from huggingface_hub.errors import StrictDataclassError
    from transformers import Qwen2VLConfig

    validate_config(config_dict)
    fields = {key: value for key, value in config_dict.items() if key not in ("model_type", "architectures")}
    try:
        config = Qwen2VLConfig(**fields)
    except StrictDataclassError as error:
        raise ValueError(str(error)) from error
    config.architectures = list(config_dict.get("architectures", ["Qwen2VLForConditionalGeneration"]))
    return config


def initialize_weights(model, seed: int) -> None:
    """Fill every parameter from a generator seeded with `seed`.

    transformers' default init (std 0.02) makes activations and logits so small that
    numeric comparisons pass almost trivially. Here matrices get std 1 / sqrt(fan_in),
    biases std 0.1 and norm weights 1 + N(0, 0.1), so activations and logits have a
    magnitude near 1. Tied parameters appear once in named_parameters().
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            values = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
            if name.endswith("bias"):
                values = 0.1 * values
            elif parameter.ndim == 1:
                # Every 1-D weight belongs to an RMSNorm or LayerNorm.
                values = 1.0 + 0.1 * values
            else:
                fan_in = math.prod(parameter.shape[1:])
                values = values / math.sqrt(fan_in)
            parameter.copy_(values.to(parameter.dtype))


def build_model(config, seed: int):
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    from transformers.initialization import no_init_weights

    torch.manual_seed(seed)
    with no_init_weights():
        model = Qwen2VLForConditionalGeneration(config)
    model = model.to(torch.float32).eval()
    if config.tie_word_embeddings:
        model.tie_weights()
        if model.lm_head.weight is not model.get_input_embeddings().weight:
            raise RuntimeError("lm_head.weight is not tied to embed_tokens.weight after tie_weights()")
    initialize_weights(model, seed)
    return model


def remove_stale_weights(out_dir: Path) -> None:
    """Delete safetensors shards of an earlier run, which an index file could still point to."""
    for path in list(out_dir.glob("model*.safetensors")) + list(out_dir.glob("model.safetensors.index.json")):
        path.unlink()


def remove_tokenizer(out_dir: Path) -> None:
    """Delete tokenizer files of an earlier run, which would not match a new vocabulary."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out_dir / name).unlink(missing_ok=True)


def special_token_ids(config_dict: dict) -> dict[str, int]:
    """Map each special token of the tokenizer to its id (see SPECIAL_TOKENS)."""
    text = config_dict["text_config"]
    vocab_size = text["vocab_size"]
    known = {
        "bos_token_id": text.get("bos_token_id"),
        "eos_token_id": text.get("eos_token_id"),
        "vision_start_token_id": config_dict.get("vision_start_token_id"),
        "vision_end_token_id": config_dict.get("vision_end_token_id"),
        "image_token_id": config_dict.get("image_token_id"),
        "video_token_id": config_dict.get("video_token_id"),
    }
    ids: dict[str, int] = {}
    for token, key in SPECIAL_TOKENS:
        value = known[key]
        if not isinstance(value, int) or not 0 <= value < vocab_size:
            raise ValueError(f"{key} = {value!r} must be an id inside vocab_size {vocab_size}")
        ids[token] = value
    if len(set(ids.values())) != len(ids):
        raise ValueError(f"special token ids must be distinct, got {ids}")
    for token, neighbor in UNKEYED_SPECIAL_TOKENS:
        taken = set(ids.values())
        preferred = ids[neighbor] + 1
        if preferred < vocab_size and preferred not in taken:
            ids[token] = preferred
        else:
            ids[token] = max(set(range(vocab_size)) - taken)
    return ids


def training_text() -> list[str]:
    words = TOKENIZER_WORDS.split()
    rng = random.Random(1234)
    lines = []
    for _ in range(2000):
        count = rng.randint(4, 12)
        lines.append(" ".join(rng.choice(words) for _ in range(count)))
        lines.append(f"{rng.randint(0, 9999)} {rng.choice(words).capitalize()}, {rng.choice(words)}.")
    return lines


def build_tokenizer(special_ids: dict[str, int], vocab_size: int):
    """Train a byte-level BPE on generated text and lay it out over `vocab_size` ids.

    Regular tokens fill the ids that no special token takes, in training order. If
    training yields fewer tokens than free ids, `<|reserved_N|>` special tokens fill
    the rest, so every id below vocab_size decodes to something.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    free_ids = sorted(set(range(vocab_size)) - set(special_ids.values()))
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if len(free_ids) < len(alphabet):
        raise ValueError(
            f"vocab_size {vocab_size} leaves {len(free_ids)} regular ids; a byte-level tokenizer needs {len(alphabet)}"
        )

    trainer_model = Tokenizer(models.BPE())
    trainer_model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=len(free_ids), initial_alphabet=alphabet, show_progress=False, special_tokens=[]
    )
    trainer_model.train_from_iterator(training_text(), trainer=trainer)
    trained = json.loads(trainer_model.to_str())["model"]
    trained_tokens = sorted(trained["vocab"], key=trained["vocab"].get)

    vocab = {token: free_ids[index] for index, token in enumerate(trained_tokens)}
    reserved = {f"<|reserved_{token_id}|>": token_id for token_id in free_ids[len(trained_tokens) :]}
    vocab.update(reserved)
    vocab.update(special_ids)

    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in trained["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    specials = sorted({**special_ids, **reserved}.items(), key=lambda item: item[1])
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token, _ in specials])

    for token, token_id in specials:
        if tokenizer.token_to_id(token) != token_id:
            raise RuntimeError(f"tokenizer maps {token} to {tokenizer.token_to_id(token)}, expected {token_id}")
    if tokenizer.get_vocab_size(with_added_tokens=True) != vocab_size:
        raise RuntimeError(f"tokenizer has {tokenizer.get_vocab_size(with_added_tokens=True)} ids, expected {vocab_size}")
    return tokenizer


def write_tokenizer(out_dir: Path, config_dict: dict) -> None:
    special_ids = special_token_ids(config_dict)
    tokenizer = build_tokenizer(special_ids, config_dict["text_config"]["vocab_size"])
    tokenizer.save(str(out_dir / "tokenizer.json"))

    tokenizer_config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": config_dict["text_config"]["max_position_embeddings"],
        "split_special_tokens": False,
        "errors": "replace",
        "chat_template": CHAT_TEMPLATE,
        "extra_special_tokens": {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    }
    write_json(out_dir / "tokenizer_config.json", tokenizer_config)


def write_preprocessor_config(out_dir: Path, config_dict: dict, real_sizes: bool) -> None:
    vision = config_dict["vision_config"]
    factor = vision["patch_size"] * vision["spatial_merge_size"]
    # Qwen2-VL's released limits are 56*56 and 28*28*16384 pixels. The tiny model caps
    # images at 16 x 16 merged tokens so that processor outputs stay small in tests.
    min_pixels = 56 * 56
    max_pixels = 28 * 28 * 16384 if real_sizes else (16 * factor) ** 2
    preprocessor = {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": IMAGE_MEAN,
        "image_std": IMAGE_STD,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
        "patch_size": vision["patch_size"],
        "temporal_patch_size": vision["temporal_patch_size"],
        "merge_size": vision["spatial_merge_size"],
    }
    write_json(out_dir / "preprocessor_config.json", preprocessor)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_generation_config(model, out_dir: Path, config_dict: dict) -> None:
    from transformers import GenerationConfig

    text = config_dict["text_config"]
    generation_config = GenerationConfig(
        bos_token_id=text.get("bos_token_id"),
        eos_token_id=text.get("eos_token_id"),
        pad_token_id=text.get("pad_token_id", text.get("bos_token_id")),
        do_sample=False,
    )
    model.generation_config = generation_config
    generation_config.save_pretrained(out_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.real_2b and args.config_json is not None:
        print("error: --real-2b and --config-json cannot be combined", file=sys.stderr)
        return 2

    config_dict = copy.deepcopy(REAL_2B_CONFIG if args.real_2b else TINY_CONFIG)
    if args.config_json is not None:
        try:
            overrides = json.loads(args.config_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            print(f"error: cannot read --config-json {args.config_json}: {error}", file=sys.stderr)
            return 2
        if not isinstance(overrides, dict):
            print(f"error: --config-json {args.config_json} must contain a JSON object", file=sys.stderr)
            return 2
        config_dict = merge_config(config_dict, overrides)

    try:
        config = build_config(config_dict)
    except (KeyError, TypeError, ValueError) as error:
        print(f"error: invalid Qwen2-VL config: {error}", file=sys.stderr)
        return 2

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    model = build_model(config, args.seed)
    remove_stale_weights(out_dir)
    # safetensors copies a file's tensors to bytes before writing it, so 2 GB shards bound
    # that copy for the 8.9 GB --real-2b model. The tiny model stays one file.
    model.save_pretrained(out_dir, safe_serialization=True, max_shard_size="2GB")
    write_generation_config(model, out_dir, config_dict)
    write_preprocessor_config(out_dir, config_dict, real_sizes=args.real_2b)

    if args.real_2b:
        remove_tokenizer(out_dir)
        print("note: --real-2b writes no tokenizer; a byte-level tokenizer cannot fill 151643 regular ids")
    else:
        try:
            write_tokenizer(out_dir, config_dict)
        except ValueError as error:
            remove_tokenizer(out_dir)
            print(f"warning: tokenizer not written: {error}", file=sys.stderr)

    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"wrote {out_dir} ({parameters} parameters, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
