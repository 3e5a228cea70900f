"""Greedy generation with the text-generation-with-past graph against transformers' generate.

The loop passes the prompt first, with its images and the M-RoPE positions of
transformers' get_rope_index, then one token per step with the presents fed back as
past, zero image patches and text positions shifted by the prompt's rope delta. Its
tokens must equal `generate(do_sample=False, max_new_tokens=10)` on the tiny
checkpoint. With transformers' tokens fed back in place of the argmax, the logits of
every step must match transformers' within 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from export_support import GENERATION_GRIDS, TOLERANCE, greedy_decode, ort_session, single_graph_step


@pytest.fixture(scope="module")
def run_step(task_exports, sizes):
    session = ort_session(str(task_exports.output_dir("text-generation-with-past") / "model.onnx"))
    return single_graph_step(session, sizes)


@pytest.mark.parametrize("case_name", list(GENERATION_GRIDS))
def test_greedy_tokens_match_generate(case_name, run_step, generation_cases, sizes):
    case = generation_cases[case_name]
    tokens, _ = greedy_decode(run_step, case, sizes)
    assert tokens == case.tokens


@pytest.mark.parametrize("case_name", list(GENERATION_GRIDS))
def test_step_logits_match_generate(case_name, run_step, generation_cases, sizes):
    case = generation_cases[case_name]
    _, logits = greedy_decode(run_step, case, sizes, forced_tokens=case.tokens)
    assert logits.shape == case.logits.shape
    max_diff = float(np.abs(logits - case.logits).max())
    assert max_diff <= TOLERANCE, f"max abs diff {max_diff:.3g} over {len(case.tokens)} steps"
