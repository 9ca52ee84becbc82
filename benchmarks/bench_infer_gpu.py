"""The runner on a GPU against the naive loop and the bare forward (BERT-base size, random).

Usage (on a machine with CUDA; writes a JSON file with every figure)::

    python -m benchmarks.bench_infer_gpu --device cuda --out gpu.json
    python -m benchmarks.bench_infer_gpu --device cpu --small   # a quick dry run of the code

Model: a BERT-base-sized sequence classifier (hidden 768, 12 layers, 12 heads,
feed-forward 3072, 3 labels) with random weights, in bf16, and the byte-level
BPE tokenizer of :mod:`xcal.models.tiny` (no weights can be downloaded
where GPUs are lent; speed does not depend on the weights' values). Input:
all 37,350 XNLI dev pairs of the 15 languages. Every method processes the
same pairs, so tokens per second count real (non-padding) tokens.

- runner: ``run_grid`` over the 15 languages (one cell each) into a fresh
  store, at three token budgets and ``"auto"``. Two figures: over the cells
  (first cell started to last cell written: tokenising, batching, forward,
  gathering, writing) and over the whole call (also reading the data,
  fingerprints, loading the weights and the warm-up).
- naive loop: input order, batches of 32 pairs padded to 512, tokenised in
  the loop, logits copied to the host per batch (on the first 9,600 pairs).
- bare forward: the model alone over pre-tokenised length-sorted batches of
  the same budget, already padded and on the device, outputs left there.

Targets (an H100/H200-class GPU): the runner at ``"auto"`` reaches >= 85% of
the bare forward at its best budget and >= 4x the naive loop.

``run()`` (for ``python -m benchmarks``) measures this when CUDA is
available and returns nothing otherwise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import Result
from benchmarks._infer_common import XNLI_LANGUAGES, CellClock, xnli_pairs

BUDGETS = (16384, 65536, 262144)
NAIVE_BATCH = 32
NAIVE_PAIRS = 9600


def _build_model(root: Path, small: bool) -> Path:
    """A BERT-base-sized classifier (or the tiny one) with the tiny byte-level tokenizer."""
    import torch
    import transformers

    from xcal.models.tiny import make_tiny_model

    tiny = make_tiny_model(root / "tiny", "bert", head="classification", num_labels=3)
    if small:
        return tiny
    config = transformers.BertConfig.from_pretrained(tiny)
    config.update(
        {
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        }
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.BertForSequenceClassification(config)
    target = root / "bert-base"
    model.save_pretrained(target)
    transformers.AutoTokenizer.from_pretrained(tiny).save_pretrained(target)
    return target


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    device: str,
    *,
    dtype: str,
    small: bool,
    budgets: tuple[int, ...],
    languages: tuple[str, ...],
    per_language: int | None,
    naive_pairs: int,
) -> dict[str, Any]:
    import torch

    import xcal.infer.runner as runner
    from xcal.infer import Grid, ModelSpec, RunOptions, TaskSpec, run_grid
    from xcal.infer.batching import pad_sequences, token_budget_batches
    from xcal.infer.engine import encode
    from xcal.models import load_model_and_tokenizer
    from xcal.store import open_store

    first, second = xnli_pairs(languages, per_language)
    out: dict[str, Any] = {"device": device, "dtype": dtype, "pairs": len(first)}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(device)
    out["torch"] = torch.__version__
    import transformers

    out["transformers"] = transformers.__version__
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = _build_model(root, small)
        loaded = load_model_and_tokenizer(
            path, task_kind="classification", num_labels=3, device=device, dtype=dtype
        )
        model, tok = loaded.model, loaded.tokenizer
        pad_id = int(tok.pad_token_id)
        encoded = encode(tok, first, second, max_length=512, token_types=True)
        lengths = encoded.lengths
        n_tokens = int(lengths.sum())
        out["tokens"] = n_tokens
        print(f"{len(first):,} pairs, {n_tokens:,} tokens, {device} {dtype}", flush=True)

        # The bare forward: pre-padded batches already on the device, outputs left there.
        bare: dict[int, float] = {}
        bare_logits: dict[int, np.ndarray] = {}
        for budget in budgets:
            batches = token_budget_batches(lengths, budget)
            tensors = []
            for idx in batches:
                ids, mask = pad_sequences([encoded.input_ids[i] for i in idx], pad_id)
                types, _ = pad_sequences([encoded.token_type_ids[i] for i in idx], 0)  # type: ignore[index]
                tensors.append([torch.from_numpy(a).to(device) for a in (ids, mask, types)] + [idx])
            best = float("inf")
            with torch.inference_mode():
                model(input_ids=tensors[0][0], attention_mask=tensors[0][1])  # warm-up
                for _ in range(2):
                    _sync(device)
                    start = time.perf_counter()
                    logits = [
                        model(input_ids=i, attention_mask=m, token_type_ids=t).logits
                        for i, m, t, _ in tensors
                    ]
                    _sync(device)
                    best = min(best, time.perf_counter() - start)
            got = np.zeros((len(first), 3), dtype=np.float32)
            for (_, _, _, idx), lg in zip(tensors, logits, strict=True):
                got[idx] = lg.float().cpu().numpy()
            bare[budget], bare_logits[budget] = n_tokens / best, got
            del tensors, logits
            print(f"  bare forward {budget:>7,}: {bare[budget]:>12,.0f} tok/s", flush=True)

        # The naive loop on the first pairs.
        m = min(naive_pairs, len(first))
        with torch.inference_mode():
            _sync(device)
            start = time.perf_counter()
            for i in range(0, m, NAIVE_BATCH):
                enc = tok(
                    first[i : i + NAIVE_BATCH],
                    second[i : i + NAIVE_BATCH],
                    padding="max_length",
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                ).to(device)
                model(**enc).logits.float().cpu()
            naive_s = time.perf_counter() - start
        naive = int(lengths[:m].sum()) / naive_s
        print(f"  naive loop        : {naive:>12,.0f} tok/s ({m:,} pairs)", flush=True)
        del model, loaded
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

        # The runner, end to end into a fresh store.
        grid = Grid((ModelSpec(str(path)),), (TaskSpec("xnli", languages),))
        resolved: list[int] = []
        real_budget = runner.token_budget

        def recording(*args: Any, **kwargs: Any) -> Any:
            b = real_budget(*args, **kwargs)
            resolved.append(b.tokens)
            return b

        runner.token_budget = recording  # type: ignore[assignment]
        rows = []
        try:
            for budget in (*budgets, "auto"):
                resolved.clear()
                clock = CellClock()
                store = root / f"store-{budget}"
                options = RunOptions(
                    batch_tokens=budget,  # type: ignore[arg-type]
                    device=device,
                    dtype=dtype,
                    limit=per_language,
                )
                start = time.perf_counter()
                results = run_grid(grid, store, options=options, reporter=clock)
                total = time.perf_counter() - start
                assert {r.status for r in results} == {"written"}, [r.error for r in results]
                s = open_store(store)
                logits = np.concatenate([s.load_classification(r.run_id).logits for r in results])
                ref = bare_logits[budget if budget != "auto" else max(budgets)]
                diff = float(np.abs(logits - ref).max())
                row = {
                    "batch_tokens": budget,
                    "resolved": resolved[0] if resolved else budget,
                    "runner_cells_tok_s": n_tokens / clock.seconds,
                    "runner_call_tok_s": n_tokens / total,
                    "max_abs_diff_vs_bare": diff,
                }
                rows.append(row)
                print(
                    f"  runner {budget!s:>7} ({row['resolved']:,}): "
                    f"{row['runner_cells_tok_s']:>12,.0f} tok/s over the cells, "
                    f"{row['runner_call_tok_s']:,.0f} over the call; |runner - bare| <= {diff:.2g}",
                    flush=True,
                )
        finally:
            runner.token_budget = real_budget  # type: ignore[assignment]
    best_bare = max(bare.values())
    auto = rows[-1]
    out.update(
        bare_tok_s={str(k): v for k, v in bare.items()},
        naive_tok_s=naive,
        naive_pairs=m,
        runner=rows,
        auto_vs_best_bare=auto["runner_cells_tok_s"] / best_bare,
        auto_call_vs_best_bare=auto["runner_call_tok_s"] / best_bare,
        auto_vs_naive=auto["runner_cells_tok_s"] / naive,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return out


def markdown(res: dict[str, Any]) -> str:
    """The README's table: per budget, runner (cells, whole call), naive, bare forward."""
    lines = [
        "| batch_tokens | runner tok/s (cells) | runner tok/s (whole call) | naive tok/s "
        "| bare forward tok/s | runner (cells) / forward |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in res["runner"]:
        b = row["batch_tokens"]
        fwd = res["bare_tok_s"].get(str(b))
        label = f"auto ({row['resolved']:,})" if b == "auto" else f"{b:,}"
        cells = row["runner_cells_tok_s"]
        fwd_text = f"{fwd:,.0f}" if fwd else "-"
        share = f"{cells / fwd:.0%}" if fwd else "-"
        lines.append(
            f"| {label} | {cells:,.0f} | {row['runner_call_tok_s']:,.0f} | "
            f"{res['naive_tok_s']:,.0f} | {fwd_text} | {share} |"
        )
    lines.append(
        f"\nauto / best bare forward: {res['auto_vs_best_bare']:.0%} over the cells "
        f"({res['auto_call_vs_best_bare']:.0%} over the whole call); "
        f"auto / naive: {res['auto_vs_naive']:.1f}x"
    )
    return "\n".join(lines)


def run() -> list[Result]:
    import torch

    if not torch.cuda.is_available():
        print("  no CUDA: skipped (run it on a GPU machine)")
        return []
    res = measure(
        "cuda",
        dtype="bf16",
        small=False,
        budgets=BUDGETS,
        languages=XNLI_LANGUAGES,
        per_language=None,
        naive_pairs=NAIVE_PAIRS,
    )
    print(markdown(res))
    n = res["tokens"]
    auto = res["runner"][-1]["runner_cells_tok_s"]
    label = f"XNLI dev 15 langs, {n:,} tokens, BERT-base size bf16, {res.get('gpu', 'cuda')}"
    best = max(res["bare_tok_s"].values())
    subject = "runner at auto (cells)"
    naive = res["naive_tok_s"]
    return [
        Result(
            label,
            subject,
            n / auto,
            "bare forward at its best budget",
            n / best,
            ">= 0.85x",
            auto / best >= 0.85,
        ),
        Result(
            label,
            subject,
            n / auto,
            "naive loop (batch 32, pad 512)",
            n / naive,
            ">= 4x faster",
            auto / naive >= 4,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, help="default: bf16 on CUDA, fp32 elsewhere")
    parser.add_argument("--small", action="store_true", help="tiny model, 2 languages x 100")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    if args.small:
        res = measure(args.device, dtype=dtype, small=True, budgets=(1024, 2048, 4096),
                      languages=("de", "sw"), per_language=100, naive_pairs=64)  # fmt: skip
    else:
        res = measure(args.device, dtype=dtype, small=False, budgets=BUDGETS,
                      languages=XNLI_LANGUAGES, per_language=None, naive_pairs=NAIVE_PAIRS)  # fmt: skip
    table = markdown(res)
    print(table)
    if args.out is not None:
        args.out.write_text(json.dumps({**res, "table": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
