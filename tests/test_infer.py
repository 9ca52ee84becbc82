"""Numerical correctness of the runner's building blocks on tiny random models.

The reference for every batched computation is the same model run on one
unpadded input at a time: length sorting, dynamic padding and token-budget
batching must not change a single logit beyond float noise.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcal.infer.batching import pad_sequences, token_budget_batches

TEXTS = [
    "A man is playing a guitar.",
    "Der schnelle braune Fuchs springt über den faulen Hund, und dann noch viel weiter über die Wiese.",
    "短い文。",
    "The cat sat on the mat and looked out of the window at the birds in the garden for a long time.",
    "Быстрая лиса.",
    "x",
    "El rápido zorro marrón salta sobre el perro perezoso mientras llueve en la ciudad de Madrid.",
]
SECOND = [t[::-1] for t in TEXTS]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """One intra-op thread: on a shared 2-core machine, more threads mostly wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from xcal.models.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return {
        "bert_cls": make_tiny_model(root / "bert-cls", "bert", head="classification", num_labels=3),
        "bert_qa": make_tiny_model(root / "bert-qa", "bert", head="qa"),
        "bert": make_tiny_model(root / "bert", "bert"),
        "gpt2": make_tiny_model(root / "gpt2", "gpt2"),
        "gpt2_cls": make_tiny_model(root / "gpt2-cls", "gpt2", head="classification", num_labels=3),
        "llama": make_tiny_model(root / "llama", "llama"),
    }


def _load(path: Path, kind: str) -> tuple[Any, Any]:
    from xcal.infer.modeling import ModelSpec, inspect_model
    from xcal.models import load_model_and_tokenizer

    info = inspect_model(ModelSpec(str(path)))
    loaded = load_model_and_tokenizer(
        str(path), task_kind=kind, num_labels=3 if kind == "classification" else None, device="cpu"
    )
    return loaded.model, info.tokenizer


# --------------------------------------------------------------------------- batching


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 300), max_size=60),
    st.integers(1, 2000),
    st.one_of(st.none(), st.integers(1, 10)),
)
def test_token_budget_batches_properties(lengths: list[int], budget: int, cap: int | None) -> None:
    batches = token_budget_batches(lengths, budget, max_batch_size=cap)
    flat = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every input exactly once
    order = [lengths[i] for i in flat]
    assert order == sorted(order, reverse=True)  # longest first
    for b in batches:
        longest = max(max(lengths[i] for i in b), 1)
        assert len(b) == 1 or len(b) * longest <= budget  # only a lone input may exceed
        assert cap is None or len(b) <= cap


def test_token_budget_rejects_bad_budget() -> None:
    with pytest.raises(ValueError, match="positive int, got 0"):
        token_budget_batches([1, 2], 0)
    with pytest.raises(TypeError, match="positive int"):
        token_budget_batches([1, 2], 2.5)  # type: ignore[arg-type]


def test_pad_sequences_multiple_of() -> None:
    ids, mask = pad_sequences([[1, 2, 3], [4]], 0, pad_to_multiple_of=4)
    assert ids.tolist() == [[1, 2, 3, 0], [4, 0, 0, 0]]
    assert mask.sum(axis=1).tolist() == [3, 1]


def test_encode_counts_and_truncates_exactly(tiny: dict[str, Path]) -> None:
    from xcal.infer.engine import encode

    _, tok = _load(tiny["bert_cls"], "classification")
    full = tok(TEXTS, SECOND)["input_ids"]
    enc = encode(tok, TEXTS, SECOND, max_length=24)
    expected = tok(TEXTS, SECOND, truncation=True, max_length=24)["input_ids"]
    assert enc.input_ids == expected
    assert enc.truncated.tolist() == [len(x) > 24 for x in full]
    assert 0 < enc.n_truncated < len(TEXTS)


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize("name", ["bert_cls", "gpt2_cls"])
def test_classify_batched_equals_one_at_a_time(tiny: dict[str, Path], name: str) -> None:
    import torch

    from xcal.infer.classify import classify, last_token_logits

    model, tok = _load(tiny[name], "classification")
    decoder = name.startswith("gpt2")
    # A small budget forces several batches with padding inside each.
    got, n_trunc = classify(
        model, tok, TEXTS, SECOND, max_length=512, batch_tokens=150, device="cpu", decoder=decoder
    )
    assert got.shape == (len(TEXTS), 3) and got.dtype == np.float32 and n_trunc == 0
    with torch.inference_mode():
        for i, (a, b) in enumerate(zip(TEXTS, SECOND, strict=True)):
            ids = torch.tensor([tok(a, b)["input_ids"]])
            if decoder:
                ref = model(input_ids=ids).logits  # one unpadded input: HF pools its last token
                mine = last_token_logits(model, ids, torch.ones_like(ids))
                np.testing.assert_allclose(mine.numpy(), ref.numpy(), atol=1e-6)
            else:
                types = tok(a, b, return_token_type_ids=True)["token_type_ids"]
                assert 1 in types  # the second segment is marked
                ref = model(input_ids=ids, token_type_ids=torch.tensor([types])).logits
            np.testing.assert_allclose(got[i], ref[0].numpy(), atol=2e-5)


def test_decoder_pools_last_real_token_even_when_text_contains_pad_token(
    tiny: dict[str, Path],
) -> None:
    """GPT-2's pad token is its end-of-text token; a text containing it must still pool at its end."""
    import torch

    from xcal.infer.classify import classify

    model, tok = _load(tiny["gpt2_cls"], "classification")
    texts = ["first part <|endoftext|> second part", "short"]
    got, _ = classify(
        model, tok, texts, None, max_length=512, batch_tokens=4096, device="cpu", decoder=True
    )
    with torch.inference_mode():
        for i, t in enumerate(texts):
            ids = torch.tensor([tok(t)["input_ids"]])
            hidden = model.base_model(input_ids=ids).last_hidden_state
            ref = model.score(hidden[:, -1])
            np.testing.assert_allclose(got[i], ref[0].numpy(), atol=2e-5)


def test_label_order_reorders_columns(tiny: dict[str, Path]) -> None:
    from types import SimpleNamespace

    from xcal.infer.classify import classify
    from xcal.infer.modeling import label_order

    model, tok = _load(tiny["bert_cls"], "classification")
    cfg = SimpleNamespace(id2label={0: "Neutral", 1: "CONTRADICTION", 2: "entailment"})
    order = label_order(cfg, ("contradiction", "entailment", "neutral"))
    assert order == (1, 2, 0)
    raw, _ = classify(model, tok, TEXTS, SECOND, max_length=512, batch_tokens=4096, device="cpu")
    ordered, _ = classify(
        model,
        tok,
        TEXTS,
        SECOND,
        max_length=512,
        batch_tokens=4096,
        device="cpu",
        label_order=order,
    )
    np.testing.assert_array_equal(ordered, raw[:, [1, 2, 0]])


def test_multiple_choice_head_batched_equals_single(tiny: dict[str, Path]) -> None:
    import torch

    from xcal.infer.classify import multiple_choice

    model, tok = _load(tiny["bert"], "multiple_choice")
    options = [[(TEXTS[i], SECOND[j]) for j in (i, i + 1)] for i in range(len(TEXTS) - 1)]
    got, _ = multiple_choice(model, tok, options, max_length=512, batch_tokens=200, device="cpu")
    assert got.shape == (len(options), 2)
    with torch.inference_mode():
        for i, opts in enumerate(options):
            enc = tok(
                [a for a, _ in opts],
                [b for _, b in opts],
                padding=True,
                return_tensors="pt",
                return_token_type_ids=True,
            )
            ref = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits
            np.testing.assert_allclose(got[i], ref[0].numpy(), atol=2e-5)


# --------------------------------------------------------------------------- LM scoring


def _brute_force_loglik(
    model: Any, tok: Any, context: str, continuation: str, max_length: int
) -> float:
    """Sum of log p(continuation tokens) from one full forward pass of the unpadded sequence."""
    import torch

    stripped = context.rstrip()
    cont = tok(context[len(stripped) :] + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(stripped, add_special_tokens=False)["input_ids"]
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    seq = [prefix, *ctx, *cont][-(max_length + 1) :]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([seq[:-1]])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    n = min(len(cont), len(seq) - 1)
    targets = seq[1:]
    return float(sum(logp[p, targets[p]] for p in range(len(targets) - n, len(targets))))


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_lm_scores_equal_brute_force(tiny: dict[str, Path], name: str) -> None:
    from xcal.infer.lm import check_lm_head_route, score_requests

    model, tok = _load(tiny[name], "causal_lm")
    assert check_lm_head_route(model, tok, "cpu")
    requests = [
        ("The man fell because", " he tripped."),
        ("The man fell because ", "he sang a long song about the sea."),
        ("", "Es regnet., richtig? Ja, Die Straße ist nass."),
        ("Быстрая лиса прыгает", " через собаку."),
    ]
    got, trunc = score_requests(model, tok, requests, max_length=512, batch_tokens=64, device="cpu")
    ref = [_brute_force_loglik(model, tok, c, x, 512) for c, x in requests]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    assert not trunc.any()
    # Both routes (hidden states + output layer, and the full forward) agree.
    full, _ = score_requests(
        model, tok, requests, max_length=512, batch_tokens=64, device="cpu", head_route=False
    )
    np.testing.assert_allclose(full, got, rtol=1e-5, atol=1e-4)


def test_lm_truncation_drops_context_from_the_left(tiny: dict[str, Path]) -> None:
    from xcal.infer.lm import score_requests

    model, tok = _load(tiny["gpt2"], "causal_lm")
    requests = [(TEXTS[1] + " " + TEXTS[3], " and the end."), ("Short", " end.")]
    got, trunc = score_requests(
        model, tok, requests, max_length=20, batch_tokens=4096, device="cpu"
    )
    assert trunc.tolist() == [True, False]
    ref = [_brute_force_loglik(model, tok, c, x, 20) for c, x in requests]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- QA


def _exhaustive_spans(
    s: np.ndarray, e: np.ndarray, mask: np.ndarray, max_len: int
) -> list[tuple[int, int]]:
    ctx = np.flatnonzero(mask)
    pairs = [(a, b) for a in ctx for b in ctx if a <= b and b - a + 1 <= max_len]
    return sorted(pairs, key=lambda p: -(s[p[0]] + e[p[1]]))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 25), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_best_spans_equal_exhaustive_search_when_n_best_covers_context(
    n: int, max_len: int, seed: int
) -> None:
    from xcal.infer.qa import best_spans

    rng = np.random.default_rng(seed)
    s, e = rng.normal(size=n), rng.normal(size=n)
    mask = rng.random(n) < 0.7
    got = best_spans(s, e, mask, n_best=n, max_answer_length=max_len)
    ref = _exhaustive_spans(s, e, mask, max_len)[:n]
    assert [(a, b) for a, b, _, _ in got] == ref
    for a, b, sl, el in got:
        assert mask[a] and mask[b] and a <= b and b - a + 1 <= max_len
        assert sl == s[a] and el == e[b]


def test_qa_windows_cover_context_with_stride(tiny: dict[str, Path]) -> None:
    from xcal.infer.qa import QASettings, make_windows

    _, tok = _load(tiny["bert_qa"], "qa")
    context = " ".join(TEXTS * 3)
    qs = QASettings(max_length=64, doc_stride=16, max_query_length=8)
    w = make_windows(tok, ["What does the fox do in the long story?"], [context], qs)
    assert len(w.encoded) > 2 and set(w.example_index.tolist()) == {0}
    assert w.n_questions_truncated == 1  # the question is longer than 8 tokens
    covered = np.zeros(len(context), dtype=bool)
    windows = []
    for ids, offs, mask in zip(w.encoded.input_ids, w.offsets, w.context_mask, strict=True):
        where = np.flatnonzero(mask)
        windows.append([ids[i] for i in where])
        for i in where:
            covered[offs[i][0] : offs[i][1]] = True
    assert all(covered[i] for i, ch in enumerate(context) if not ch.isspace())
    for prev, nxt in itertools.pairwise(windows):
        assert prev[-16:] == nxt[:16]  # neighbours share doc_stride context tokens


def test_answer_questions_equals_exhaustive_reference(tiny: dict[str, Path]) -> None:
    import torch

    from xcal.infer.qa import QASettings, answer_questions, make_windows

    model, tok = _load(tiny["bert_qa"], "qa")
    contexts = [" ".join(TEXTS * 2), TEXTS[0], TEXTS[3] + " " + TEXTS[1]]
    questions = ["Where is the fox?", "Who plays?", "What does the cat do?"]
    qs = QASettings(
        max_length=64, doc_stride=16, max_query_length=16, max_answer_length=5, n_best=64
    )
    got, _ = answer_questions(
        model, tok, questions, contexts, settings=qs, batch_tokens=150, device="cpu"
    )
    windows = make_windows(tok, questions, contexts, qs)
    for q in range(len(questions)):
        best: dict[tuple[int, int], float] = {}
        for w in np.flatnonzero(windows.example_index == q):
            ids = torch.tensor([windows.encoded.input_ids[w]])
            types = torch.tensor([windows.encoded.token_type_ids[w]])  # type: ignore[index]
            with torch.inference_mode():
                out = model(input_ids=ids, token_type_ids=types)
            s, e = out.start_logits[0].numpy(), out.end_logits[0].numpy()
            for a, b in _exhaustive_spans(s, e, windows.context_mask[w], qs.max_answer_length):
                key = (windows.offsets[w][a][0], windows.offsets[w][b][1])
                best[key] = max(best.get(key, -np.inf), float(s[a] + e[b]))
        ref = sorted(best.items(), key=lambda kv: -kv[1])[:10]
        mine = got[q][:10]
        assert [(a["start_char"], a["end_char"]) for a in mine] == [k for k, _ in ref]
        np.testing.assert_allclose([a["score"] for a in mine], [v for _, v in ref], atol=1e-4)
        for a in got[q]:
            assert a["text"] == contexts[q][a["start_char"] : a["end_char"]]
            assert a["score"] == pytest.approx(a["start_logit"] + a["end_logit"])
        assert [a["score"] for a in got[q]] == sorted((a["score"] for a in got[q]), reverse=True)


# --------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize(("name", "pooling"), [("bert", "mean"), ("bert", "cls"), ("gpt2", "last")])
def test_embeddings_batched_equal_single(tiny: dict[str, Path], name: str, pooling: str) -> None:
    import torch

    from xcal.infer.retrieval import embed

    model, tok = _load(tiny[name], "retrieval")
    got, _ = embed(
        model,
        tok,
        TEXTS,
        pooling=pooling,
        prefix="query: ",
        max_length=512,
        batch_tokens=100,
        device="cpu",
    )
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        for i, t in enumerate(TEXTS):
            ids = torch.tensor([tok("query: " + t)["input_ids"]])
            h = model(input_ids=ids).last_hidden_state[0]
            v = {"mean": h.mean(0), "cls": h[0], "last": h[-1]}[pooling]
            np.testing.assert_allclose(got[i], (v / v.norm()).numpy(), atol=2e-5)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_top_k_equals_full_sort(nq: int, nc: int, k: int, seed: int) -> None:
    from xcal.infer.retrieval import top_k

    rng = np.random.default_rng(seed)
    q = rng.normal(size=(nq, 8)).astype(np.float32)
    c = rng.normal(size=(nc, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    idx, scores = top_k(q, c, k, block=7)
    sim = q.astype(np.float64) @ c.T.astype(np.float64)
    kk = min(k, nc)
    assert idx.shape == scores.shape == (nq, kk)
    assert all(len(set(row)) == kk for row in idx.tolist())
    # The scores are the similarities of the returned candidates, best first ...
    np.testing.assert_allclose(scores, np.take_along_axis(sim, idx, axis=1), atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # ... and no candidate left out is better (up to float32 rounding).
    ref = -np.sort(-sim, axis=1)[:, :kk]
    np.testing.assert_allclose(scores, ref, atol=1e-6)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_tiny_decoders_are_saved_with_tied_embeddings(tmp_path, monkeypatch, kind) -> None:
    # from_config was seen to return an untied output layer after other tests had
    # run; the saved checkpoint must still hold one matrix (loaders disagree otherwise).
    import torch
    import transformers
    from safetensors.numpy import load_file

    from xcal.models.tiny import make_tiny_model

    original = transformers.AutoModelForCausalLM.from_config

    def untied(config, **kwargs):
        model = original(config, **kwargs)
        head = model.get_output_embeddings()
        head.weight = torch.nn.Parameter(torch.randn_like(head.weight))
        return model

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", untied)
    path = make_tiny_model(tmp_path / kind, kind)
    weights = load_file(str(path / "model.safetensors"))
    embeddings = next(
        v
        for k, v in weights.items()
        if k.endswith("embed_tokens.weight") or k.endswith("wte.weight")
    )
    head = weights.get("lm_head.weight")
    assert head is None or np.array_equal(head, embeddings)
