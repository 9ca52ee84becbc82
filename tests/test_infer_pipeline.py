"""The overlapped batch pipeline: same bits as the serial loop, memory back-off, auto budget.

The reference is the runner's serial loop as it was before the pipeline
(pad, copy, forward, copy back, scatter, one batch at a time), kept here
verbatim: the pipeline must give the same float32 bits for every output.
GPU tests (marked ``gpu``) are skipped where CUDA is not available.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.infer.batching import pad_sequences, token_budget_batches
from xcal.infer.engine import Encoded, TokenBudget, encode, run_batches

TEXTS = [
    "A man is playing a guitar.",
    "Der schnelle braune Fuchs springt über den faulen Hund, und dann noch viel weiter.",
    "短い文。",
    "The cat sat on the mat and looked out of the window at the birds in the garden.",
    "Быстрая лиса.",
    "x",
    "El rápido zorro marrón salta sobre el perro perezoso mientras llueve en Madrid.",
] * 5
SECOND = [t[::-1] for t in TEXTS]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-pipeline")
    return {
        "cls": make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3),
        "qa": make_tiny_model(root / "bert-qa", "bert", head="qa"),
    }


def _load(path: Path, kind: str, device: str) -> tuple[Any, Any]:
    from xcal.models import load_model_and_tokenizer

    loaded = load_model_and_tokenizer(
        str(path),
        task_kind=kind,  # type: ignore[arg-type]
        num_labels=3 if kind == "classification" else None,
        device=device,
    )
    return loaded.model, loaded.tokenizer


def serial_reference(
    encoded: Encoded,
    forward: Callable[..., Any],
    *,
    batch_tokens: int,
    pad_id: int,
    device: str,
    per_token: Sequence[bool] = (),
) -> list[np.ndarray]:
    """The runner's batch loop before the pipeline, unchanged."""
    import torch

    n = len(encoded)
    lengths = encoded.lengths
    outputs: list[np.ndarray] | None = None
    longest = int(lengths.max())
    with torch.inference_mode():
        for idx in token_budget_batches(lengths, batch_tokens):
            ids, mask = pad_sequences([encoded.input_ids[i] for i in idx], pad_id)
            types = None
            if encoded.token_type_ids is not None:
                types, _ = pad_sequences([encoded.token_type_ids[i] for i in idx], 0)
            t_ids = torch.from_numpy(ids).to(device)
            t_mask = torch.from_numpy(mask).to(device)
            t_types = torch.from_numpy(types).to(device) if types is not None else None
            result = forward(t_ids, t_mask, t_types, idx)
            parts = result if isinstance(result, tuple) else (result,)
            arrays = [p.detach().float().cpu().numpy() for p in parts]
            token_axis = [k < len(per_token) and per_token[k] for k in range(len(arrays))]
            if outputs is None:
                outputs = []
                for a, tok in zip(arrays, token_axis, strict=True):
                    shape: tuple[int, ...] = (n, *a.shape[1:])
                    if tok:
                        shape = (n, max(longest, a.shape[1]), *a.shape[2:])
                    outputs.append(np.zeros(shape, dtype=np.float32))
            for out, a, tok in zip(outputs, arrays, token_axis, strict=True):
                if tok:
                    out[idx, : a.shape[1]] = a
                else:
                    out[idx] = a
    return outputs or []


def _cls_forward(model: Any) -> Callable[..., Any]:
    def forward(ids: Any, mask: Any, types: Any, _idx: np.ndarray) -> Any:
        kwargs = {"attention_mask": mask}
        if types is not None:
            kwargs["token_type_ids"] = types
        return model(input_ids=ids, **kwargs).logits

    return forward


def _qa_forward(model: Any) -> Callable[..., Any]:
    def forward(ids: Any, mask: Any, types: Any, _idx: np.ndarray) -> Any:
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return out.start_logits, out.end_logits

    return forward


def _check_same_bits(model: Any, tok: Any, device: str, *, qa: bool, prefetch: int) -> None:
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    forward = _qa_forward(model) if qa else _cls_forward(model)
    per_token = (True, True) if qa else ()
    pad = int(tok.pad_token_id)
    for budget in (64, 300, 100_000):
        ref = serial_reference(
            encoded, forward, batch_tokens=budget, pad_id=pad, device=device, per_token=per_token
        )
        got = run_batches(
            encoded,
            forward,
            batch_tokens=budget,
            pad_id=pad,
            device=device,
            per_token=per_token,
            prefetch=prefetch,
        )
        assert len(got) == len(ref)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == np.float32 and g.shape == r.shape
            assert np.array_equal(g, r), f"budget {budget}: pipeline differs from the serial loop"


@pytest.mark.parametrize("prefetch", [0, 3])
@pytest.mark.parametrize("qa", [False, True])
def test_pipeline_equals_serial_loop_bit_for_bit(
    tiny: dict[str, Path], qa: bool, prefetch: int
) -> None:
    model, tok = _load(tiny["qa" if qa else "cls"], "qa" if qa else "classification", "cpu")
    _check_same_bits(model, tok, "cpu", qa=qa, prefetch=prefetch)


def test_progress_counts_every_input_once(tiny: dict[str, Path]) -> None:
    model, tok = _load(tiny["cls"], "classification", "cpu")
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    seen: list[float] = []
    weights = np.linspace(0.5, 2.0, len(TEXTS))
    run_batches(
        encoded,
        _cls_forward(model),
        batch_tokens=128,
        pad_id=int(tok.pad_token_id),
        device="cpu",
        progress=seen.append,
        weights=weights,
        prefetch=2,
    )
    assert len(seen) > 3 and sum(seen) == pytest.approx(weights.sum())


def _oom_after(limit: int, forward: Callable[..., Any], calls: list[tuple[int, int]]) -> Any:
    """``forward``, but raising the CUDA out-of-memory error above ``limit`` padded tokens."""
    import torch

    def guarded(ids: Any, mask: Any, types: Any, idx: np.ndarray) -> Any:
        calls.append(tuple(ids.shape))
        if ids.shape[0] * ids.shape[1] > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(ids, mask, types, idx)

    return guarded


@pytest.mark.parametrize("prefetch", [0, 2])
def test_out_of_memory_halves_the_batch_and_keeps_every_row(
    tiny: dict[str, Path], prefetch: int
) -> None:
    model, tok = _load(tiny["qa"], "qa", "cpu")
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    pad = int(tok.pad_token_id)
    ref = serial_reference(
        encoded, _qa_forward(model), batch_tokens=1, pad_id=pad, device="cpu", per_token=(1, 1)
    )  # one input per batch: no padding at all
    calls: list[tuple[int, int]] = []
    budget = TokenBudget(4096)
    got = run_batches(
        encoded,
        _oom_after(700, _qa_forward(model), calls),
        batch_tokens=budget,
        pad_id=pad,
        device="cpu",
        per_token=(True, True),
        prefetch=prefetch,
    )
    assert budget.tokens <= 700  # halved below the first failure, and stays there
    assert any(r * c > 700 for r, c in calls)  # it did fail at least once
    own = np.arange(ref[0].shape[1]) < encoded.lengths[:, None]  # positions past a row's
    for g, r in zip(got, ref, strict=True):  # end hold pad-token logits, which depend on padding
        # Every row computed (batch composition changes only float noise).
        np.testing.assert_allclose(g[own], r[own], atol=1e-5)
    # A later call starts at the reduced budget: no failure at all.
    calls.clear()
    again = run_batches(
        encoded,
        _oom_after(700, _qa_forward(model), calls),
        batch_tokens=budget,
        pad_id=pad,
        device="cpu",
        per_token=(True, True),
        prefetch=prefetch,
    )
    assert all(r * c <= 700 or r == 1 for r, c in calls)
    for g, r in zip(again, got, strict=True):
        np.testing.assert_allclose(g[own], r[own], atol=1e-5)


def test_out_of_memory_on_a_single_input_is_raised(tiny: dict[str, Path]) -> None:
    import torch

    model, tok = _load(tiny["cls"], "classification", "cpu")
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batches(
            encoded,
            _oom_after(1, _cls_forward(model), []),
            batch_tokens=4096,
            pad_id=int(tok.pad_token_id),
            device="cpu",
        )


def test_errors_reach_the_caller_and_stop_the_producer(tiny: dict[str, Path]) -> None:
    model, tok = _load(tiny["cls"], "classification", "cpu")
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    calls = 0

    def failing(ids: Any, mask: Any, types: Any, idx: np.ndarray) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom in batch 2")
        return _cls_forward(model)(ids, mask, types, idx)

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom in batch 2"):
        run_batches(
            encoded,
            failing,
            batch_tokens=64,
            pad_id=int(tok.pad_token_id),
            device="cpu",
            prefetch=1,
        )
    assert threading.active_count() == before  # no producer thread left behind

    # An error while preparing a batch (here: a token id that does not fit int64).
    broken = Encoded([*encoded.input_ids[:-1], [2**70]], None, encoded.truncated)
    with pytest.raises(OverflowError):
        run_batches(
            broken,
            _cls_forward(model),
            batch_tokens=64,
            pad_id=int(tok.pad_token_id),
            device="cpu",
            prefetch=2,
        )
    assert threading.active_count() == before


def test_auto_budget_from_free_memory_and_model_shape(tiny: dict[str, Path]) -> None:
    from types import SimpleNamespace

    from xcal.infer.memory import (
        AUTO_MAX_TOKENS,
        AUTO_MIN_TOKENS,
        CPU_BATCH_TOKENS,
        activation_bytes_per_token,
        auto_batch_tokens,
    )

    model, _ = _load(tiny["cls"], "classification", "cpu")
    assert auto_batch_tokens(model, "cpu", max_length=512) == CPU_BATCH_TOKENS
    per = activation_bytes_per_token(model.config, dtype_bytes=4, max_length=512)
    # Hand-worked: hidden 32, intermediate 64, 2 heads: 4 x (6*32 + 3*64 + 2*512).
    assert per == 4 * (6 * 32 + 3 * 64 + 2 * 512)
    # Half the free memory over the bytes per token, rounded down to a power of two.
    got = auto_batch_tokens(model, "cuda", max_length=512, free_bytes=per * 100_000)
    assert got == 32768
    assert auto_batch_tokens(model, "cuda", max_length=512, free_bytes=10**15) == AUTO_MAX_TOKENS
    assert auto_batch_tokens(model, "cuda", max_length=512, free_bytes=1000) == AUTO_MIN_TOKENS
    # A bigger model gets a smaller budget from the same memory.
    big = SimpleNamespace(hidden_size=4096, intermediate_size=14336, num_attention_heads=32)
    assert activation_bytes_per_token(big, dtype_bytes=2, max_length=512) == 167936


def test_run_options_accept_auto() -> None:
    from xcal.infer import GridError, RunOptions

    assert RunOptions(batch_tokens="auto").batch_tokens == "auto"
    assert RunOptions().batch_tokens == 16384
    with pytest.raises(GridError, match="'auto'"):
        RunOptions(batch_tokens="big")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@pytest.mark.parametrize("qa", [False, True])
def test_gpu_pipeline_equals_serial_loop_bit_for_bit(tiny: dict[str, Path], qa: bool) -> None:
    model, tok = _load(tiny["qa" if qa else "cls"], "qa" if qa else "classification", "cuda")
    _check_same_bits(model, tok, "cuda", qa=qa, prefetch=2)


@pytest.mark.gpu
def test_gpu_logits_match_cpu(tiny: dict[str, Path]) -> None:
    from xcal.infer.classify import classify

    out = {}
    for device in ("cpu", "cuda"):
        model, tok = _load(tiny["cls"], "classification", device)
        out[device], _ = classify(
            model, tok, TEXTS, SECOND, max_length=512, batch_tokens=512, device=device
        )
    np.testing.assert_allclose(out["cuda"], out["cpu"], atol=1e-5)


@pytest.mark.gpu
def test_gpu_auto_budget_and_real_out_of_memory_back_off(tiny: dict[str, Path]) -> None:
    import torch

    from xcal.infer.memory import AUTO_MIN_TOKENS, auto_batch_tokens

    model, tok = _load(tiny["cls"], "classification", "cuda")
    assert auto_batch_tokens(model, "cuda", max_length=512) >= AUTO_MIN_TOKENS
    encoded = encode(tok, TEXTS, SECOND, max_length=512, token_types=True)
    pad = int(tok.pad_token_id)
    ref = serial_reference(encoded, _cls_forward(model), batch_tokens=1, pad_id=pad, device="cuda")[
        0
    ]
    budget = TokenBudget(100_000)
    hog: list[Any] = []

    def hungry(ids: Any, mask: Any, types: Any, idx: np.ndarray) -> Any:
        # A real allocation that fails above 200 padded tokens per batch.
        if ids.shape[0] * ids.shape[1] > 200:
            free, _ = torch.cuda.mem_get_info()
            hog.append(torch.empty(free * 4, dtype=torch.uint8, device="cuda"))
        return _cls_forward(model)(ids, mask, types, idx)

    (got,) = run_batches(encoded, hungry, batch_tokens=budget, pad_id=pad, device="cuda")
    assert not hog and budget.tokens <= 200
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.gpu
def test_gpu_run_grid_records_device_and_matches_cpu(
    tmp_path: Path, xtreme_dir: Path, tiny: dict[str, Path]
) -> None:
    from xcal.infer import Grid, ModelSpec, RunOptions, TaskSpec, run_grid
    from xcal.store import open_store

    grid = Grid((ModelSpec(str(tiny["cls"])),), (TaskSpec("xnli", ("de", "sw")),))
    logits = {}
    for device, bt in (("cpu", 2048), ("cuda", "auto")):
        store = tmp_path / device
        opts = RunOptions(limit=40, batch_tokens=bt, device=device)  # type: ignore[arg-type]
        results = run_grid(grid, store, data_dir=xtreme_dir, options=opts)
        assert [r.status for r in results] == ["written"] * 2
        s = open_store(store)
        assert set(s.runs().device) == {device if device == "cpu" else "cuda"}
        logits[device] = [s.load_classification(r.run_id).logits for r in results]
    for a, b in zip(logits["cuda"], logits["cpu"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def cell_started(self, cell: Any, total: float) -> None:
        self.events.append(("start", cell.language))

    def advance(self, amount: float) -> None:
        self.events.append(("advance", amount))

    def cell_finished(self, result: Any) -> None:
        self.events.append(("finish", result.cell.language))

    def note(self, text: str) -> None:
        pass


def _per_cell(events: list[tuple[str, Any]]) -> list[tuple[str, float]]:
    """(language, examples advanced) per cell, checking each cell's events are contiguous."""
    out: list[tuple[str, float]] = []
    current = None
    for kind, value in events:
        if kind == "start":
            assert current is None, "a cell started before the previous one finished"
            current, done = value, 0.0
        elif kind == "advance":
            assert current is not None
            done += value
        else:
            assert value == current
            out.append((current, done))
            current = None
    return out


def test_concurrent_cells_write_the_same_runs_and_report_in_order(
    tiny: dict[str, Path], xtreme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cells in flight (as on a GPU) give the serial run's bits and a serial-looking report."""
    from xcal.infer import Grid, ModelSpec, RunOptions, TaskSpec, run_grid
    from xcal.store import open_store

    grid = Grid((ModelSpec(str(tiny["cls"])),), (TaskSpec("xnli", ("de", "fr", "sw", "zh")),))
    opts = RunOptions(limit=30, batch_tokens=512, device="cpu")
    logits, reports = {}, {}
    for workers in (1, 2):
        monkeypatch.setattr("xcal.infer.runner.cell_workers", lambda device, w=workers: w)
        rec = _Recorder()
        results = run_grid(grid, tmp_path / f"w{workers}", data_dir=xtreme_dir, options=opts,
                           reporter=rec)  # fmt: skip
        assert [r.status for r in results] == ["written"] * 4
        s = open_store(tmp_path / f"w{workers}")
        logits[workers] = [s.load_classification(r.run_id).logits for r in results]
        reports[workers] = _per_cell(rec.events)
    assert reports[2] == reports[1] == [(lang, 30.0) for lang in ("de", "fr", "sw", "zh")]
    for a, b in zip(logits[2], logits[1], strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_backend_encoding_equals_transformers(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct Rust ``encode_batch`` path gives transformers' ids, types and truncation."""
    import xcal.infer.engine as engine
    from xcal.models.tiny import make_tiny_model

    path = make_tiny_model(tmp_path / kind, kind)  # type: ignore[arg-type]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    assert engine._backend_encoder(tok, TEXTS, SECOND, 41, True) is not None  # the fast path
    got = {}
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(engine, "_backend_encoder", lambda *a, **k: None)
        got[fast] = [
            encode(tok, TEXTS, SECOND, max_length=40, token_types=True),
            encode(tok, TEXTS, None, max_length=12, token_types=False),
        ]
    for a, b in zip(got[True], got[False], strict=True):
        assert a.input_ids == b.input_ids and a.token_type_ids == b.token_type_ids
        assert np.array_equal(a.truncated, b.truncated) and a.truncated.any()
