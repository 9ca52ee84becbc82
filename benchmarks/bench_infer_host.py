"""What the runner's host side can feed a GPU: the whole pipeline with the forward stubbed.

``run_grid`` over all 37,350 XNLI dev pairs of the 15 languages (one cell per
language) with the tiny byte-level BERT's tokenizer, as in the GPU benchmark
(``benchmarks/bench_infer_gpu.py``), but the model replaced by a stub that
returns zeros of the right shape: everything else - reading, perturbing,
fingerprinting, tokenising, sorting, padding, gathering, writing the store -
is the real code. Its real tokens per second bound what the runner can feed a
device; per core, it says how many cores a GPU of a given speed needs.

Baseline: tokenising the same pairs alone with the fast tokenizer's batch
API (the floor of any pipeline that tokenises). Target: the whole host
pipeline runs at >= 0.5x the tokenizer alone (it costs at most as much
again as the tokenisation it cannot avoid).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Result, best_time
from benchmarks._infer_common import XNLI_LANGUAGES, CellClock, xnli_pairs


class _StubClassifier:
    """Stands in for a sequence classifier: zeros of shape (batch, n_labels)."""

    def __init__(self, config: Any) -> None:
        import torch

        self.config = config
        self._zeros = torch.zeros

    def __call__(self, input_ids: Any, **_: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(logits=self._zeros(input_ids.shape[0], self.config.num_labels))

    def parameters(self) -> Any:
        return iter(())


def run() -> list[Result]:
    import torch

    import xcal.infer.runner as runner
    from xcal.infer import Grid, ModelSpec, RunOptions, TaskSpec, run_grid
    from xcal.infer.engine import encode
    from xcal.models import load_model_and_tokenizer
    from xcal.models.tiny import make_tiny_model

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    first, second = xnli_pairs(XNLI_LANGUAGES, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_model(Path(tmp) / "bert-cls", "bert", head="classification")
        loaded = load_model_and_tokenizer(
            path, task_kind="classification", num_labels=3, device="cpu"
        )
        tok, config = loaded.tokenizer, loaded.model.config
        encoded = encode(tok, first, second, max_length=512, token_types=True)
        n_tokens = int(encoded.lengths.sum())

        def tokenise() -> None:
            encode(tok, first, second, max_length=512, token_types=True)

        real_load_for = runner.load_for
        runner.load_for = lambda *a, **k: _StubClassifier(config)  # type: ignore[assignment]
        grid = Grid((ModelSpec(str(path)),), (TaskSpec("xnli", XNLI_LANGUAGES),))
        stores = iter(range(100))
        clock = CellClock()

        def pipeline() -> None:
            nonlocal clock
            clock = CellClock()
            store = Path(tmp) / f"store-{next(stores)}"
            results = run_grid(
                grid, store, options=RunOptions(device="cpu", batch_tokens=16384), reporter=clock
            )
            assert {r.status for r in results} == {"written"}, results[0].error

        try:
            tok_s = best_time(tokenise, repeat=2)
            start = time.perf_counter()
            pipe_s = best_time(pipeline, repeat=1)
            total_s = time.perf_counter() - start
            cells_s = clock.seconds
        finally:
            runner.load_for = real_load_for  # type: ignore[assignment]
    label = (
        f"XNLI dev 15 langs, {len(first):,} pairs, {n_tokens:,} tokens (byte-level BPE), "
        f"forward stubbed, CPU x{cores}"
    )
    print(
        f"  host pipeline: {n_tokens / pipe_s:,.0f} tok/s in all ({n_tokens / pipe_s / cores:,.0f} "
        f"per core), {n_tokens / cells_s:,.0f} tok/s over the cells "
        f"({n_tokens / cells_s / cores:,.0f} per core); tokenising alone "
        f"{n_tokens / tok_s:,.0f} tok/s; torch threads {torch.get_num_threads()}; "
        f"wall {total_s:.1f}s"
    )
    return [
        Result(
            benchmark=label,
            subject="run_grid host pipeline (read, fingerprint, tokenise, batch, gather, write)",
            subject_s=pipe_s,
            baseline="tokenising the same pairs alone (fast tokenizer batch API)",
            baseline_s=tok_s,
            target=">= 0.5x (host pipeline at least half the tokenizer's speed)",
            passed=tok_s / pipe_s >= 0.5,
        )
    ]
