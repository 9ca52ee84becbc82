"""Inference throughput of the runner on a real model and real mixed-length input.

Model: the bundled multilingual-e5-small (12 layers, hidden 384) with a
3-label sequence-classification head (random, seeded: speed does not depend
on the head's weights). Input: real XNLI dev pairs in six languages and
scripts (100 per language, in file order), so lengths vary as they do in
a real grid. Every method processes the same pairs and the same real
(non-padding) tokens, so time ratios are tokens-per-second ratios.

- subject: what the runner does per cell (:func:`xcal.infer.classify.classify`):
  tokenise, sort by length, cut token-budget batches, pad each batch to its
  own longest input, forward, scatter back to input order.
- naive loop: input order, batches of 32 padded to the model maximum (512),
  tokenised in the loop. Target: the runner is at least 2x faster.
- floor: the bare forward pass over pre-tokenised, pre-padded tensors in the
  runner's own length-sorted batches (no tokenisation, no Python around the
  model). Target: the runner reaches at least 80% of its throughput.

All three produce the same logits (checked before timing). Runner and floor
are timed in alternation, best of 3 each; the naive loop, minutes on a CPU,
is timed once against one run of the runner just before it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks._common import Result, best_times

LANGUAGES = ("de", "ar", "zh", "ru", "sw", "th")
PER_LANGUAGE = 100
BATCH_TOKENS = 16384
NAIVE_BATCH = 32


def _inputs() -> tuple[list[str], list[str]]:
    from xcal.paths import data_dir
    from xcal.tasks import get_task

    root = data_dir(os.environ.get("XCAL_DATA_DIR") or "../shared/data/xtreme")
    task = get_task("xnli")
    first: list[str] = []
    second: list[str] = []
    for lang in LANGUAGES:
        for ex in task.load(root, lang)[:PER_LANGUAGE]:
            first.append(ex.premise)
            second.append(ex.hypothesis)
    return first, second


def run() -> list[Result]:
    import torch

    from xcal.infer.batching import pad_sequences, token_budget_batches
    from xcal.infer.classify import classify
    from xcal.infer.engine import encode
    from xcal.infer.modeling import ModelSpec, inspect_model
    from xcal.models import BUNDLED_MODEL, load_model_and_tokenizer

    first, second = _inputs()
    info = inspect_model(ModelSpec(BUNDLED_MODEL))
    tok = info.tokenizer
    max_length = info.max_length
    model = load_model_and_tokenizer(
        BUNDLED_MODEL, task_kind="classification", num_labels=3, device="cpu"
    ).model
    pad_id = int(tok.pad_token_id)

    def runner() -> np.ndarray:
        logits, _ = classify(
            model,
            tok,
            first,
            second,
            max_length=max_length,
            batch_tokens=BATCH_TOKENS,
            device="cpu",
        )
        return logits

    def naive(n: int | None = None) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, n or len(first), NAIVE_BATCH):
                enc = tok(
                    first[i : i + NAIVE_BATCH],
                    second[i : i + NAIVE_BATCH],
                    padding="max_length",
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                out.append(model(**enc).logits.float().numpy())
        return np.concatenate(out)

    # The floor: the runner's own batches, tokenised and padded before the clock starts.
    encoded = encode(tok, first, second, max_length=max_length)
    batches = token_budget_batches(encoded.lengths, BATCH_TOKENS)
    tensors: list[tuple[Any, Any, np.ndarray]] = []
    for idx in batches:
        ids, mask = pad_sequences([encoded.input_ids[i] for i in idx], pad_id)
        tensors.append((torch.from_numpy(ids), torch.from_numpy(mask), idx))
    floor_out = np.zeros((len(first), 3), dtype=np.float32)

    def floor() -> np.ndarray:
        with torch.inference_mode():
            for ids, mask, idx in tensors:
                floor_out[idx] = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
        return floor_out

    n_tokens = int(encoded.lengths.sum())
    n_padded_naive = len(first) * max_length
    # Same numbers from all three before any timing.
    ref = runner()
    np.testing.assert_allclose(floor(), ref, atol=1e-4)
    np.testing.assert_allclose(naive(2 * NAIVE_BATCH), ref[: 2 * NAIVE_BATCH], atol=1e-4)

    # Runner and floor alternate, so a change in the machine's load hits both alike.
    subject_s, floor_s = best_times([runner, floor], repeat=3)
    # The naive loop takes minutes on a CPU, so it is timed once, against one
    # run of the runner just before it: one timing each, not a best of 3 vs 1.
    runner_once_s, naive_s = best_times([runner, naive], repeat=1)
    label = (
        f"XNLI dev {len(LANGUAGES)} langs x {PER_LANGUAGE} pairs, {n_tokens:,} tokens, "
        f"e5-small cls, CPU x{torch.get_num_threads()}"
    )
    print(
        f"  tokens/s: runner {n_tokens / subject_s:,.0f}, floor {n_tokens / floor_s:,.0f}, "
        f"naive {n_tokens / naive_s:,.0f} (naive pads to {n_padded_naive:,} positions; "
        f"lengths {int(encoded.lengths.min())}-{int(encoded.lengths.max())}, "
        f"mean {encoded.lengths.mean():.0f})"
    )
    return [
        Result(
            benchmark=label,
            subject="xcal.infer runner (sorted token-budget batches, dynamic padding), timed once",
            subject_s=runner_once_s,
            baseline=f"naive loop (input order, batch {NAIVE_BATCH}, padded to {max_length}), timed once",
            baseline_s=naive_s,
            target=">= 2x faster",
            passed=naive_s / runner_once_s >= 2.0,
        ),
        Result(
            benchmark=label,
            subject="xcal.infer runner (incl. tokenisation, padding, scatter)",
            subject_s=subject_s,
            baseline="floor: bare forward over pre-tokenised length-sorted batches",
            baseline_s=floor_s,
            target=">= 0.8x (80% of the floor's throughput)",
            passed=floor_s / subject_s >= 0.8,
        ),
    ]
