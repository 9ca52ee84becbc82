"""Task distances: hand-worked values, references (scipy), properties, simulation, cache,
and the real-data check that a task is closer to a paraphrase of itself than to other tasks."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist, pdist

from xcal.transfer import task_distance as td
from xcal.transfer.task_distance import (
    embed_task_texts,
    frechet_distance,
    frechet_from_moments,
    median_heuristic_bandwidth,
    mmd_squared,
    task_distance,
    task_distances,
    textemb_distance,
    vocabulary_distance,
    weighted_jaccard_similarity,
)

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


def _sample(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    return rng.normal(size=(n, d)) + shift


# ------------------------------------------------------------------------ TextEmb
def test_textemb_hand_worked() -> None:
    a = np.array([[1.0, 0.0], [1.0, 2.0]])  # mean (1, 1)
    b = np.array([[0.0, 1.0], [0.0, 3.0]])  # mean (0, 2)
    expected = 1 - (1 * 0 + 1 * 2) / (np.sqrt(2) * 2)  # 1 - 1/sqrt(2)
    assert textemb_distance(a, b) == pytest.approx(expected, abs=1e-15)


def test_textemb_identical_symmetric_and_order_free() -> None:
    rng = np.random.default_rng(0)
    a, b = _sample(rng, 50, 16, 0.3), _sample(rng, 40, 16)
    assert textemb_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert textemb_distance(a, b) == pytest.approx(textemb_distance(b, a), abs=1e-15)
    assert textemb_distance(a[::-1], b) == pytest.approx(textemb_distance(a, b), abs=1e-12)


def test_textemb_rejects_zero_mean_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="zero vector"):
        textemb_distance(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="same dimension"):
        textemb_distance(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        textemb_distance(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        textemb_distance(np.array([[np.nan, 1.0]]), np.ones((2, 2)))


# ------------------------------------------------------------------------ Fréchet
def test_frechet_hand_worked_diagonal() -> None:
    # For commuting (diagonal) covariances the trace term is sum(sqrt(a_i b_i)), so
    # FD = |mu_a - mu_b|^2 + sum((sqrt(a_i) - sqrt(b_i))^2).
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = (1 + 0 + 4) + ((1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 3) ** 2)
    got = frechet_from_moments(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert got == pytest.approx(expected, abs=1e-12)


def _frechet_scipy_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The pytorch-fid formula with scipy.linalg.sqrtm of the product."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_matches_scipy_sqrtm_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(6, 6))
    a = _sample(rng, 400, 6) @ mixing
    b = _sample(rng, 300, 6, 0.5) @ mixing.T
    assert frechet_distance(a, b) == pytest.approx(_frechet_scipy_reference(a, b), rel=1e-8)


@pytest.mark.parametrize(("n", "d"), [(5, 3), (40, 128), (100, 128)])
def test_frechet_identical_is_zero_even_when_covariance_is_singular(n: int, d: int) -> None:
    rng = np.random.default_rng(3)
    a = _sample(rng, n, d)
    scale = 2 * np.trace(np.cov(a, rowvar=False))
    # The eigen-based trace term keeps round-off at ~1e-15 relative; the general
    # sqrtm of a singular product would be off by ~sqrt(eps).
    mu, cov = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(a, a) <= 1e-12 * scale
    assert frechet_from_moments(mu, cov, mu, cov) <= 1e-12 * scale


@pytest.mark.parametrize(("n_a", "n_b", "d"), [(30, 20, 64), (100, 80, 16), (10, 90, 32)])
def test_frechet_from_samples_equals_frechet_from_moments(n_a: int, n_b: int, d: int) -> None:
    # Two independent routes to the trace term: the nuclear norm of R_a R_b^T from
    # the samples, and eigenvalues of S_a^{1/2} S_b S_a^{1/2} from the covariances.
    rng = np.random.default_rng(n_a + d)
    a, b = _sample(rng, n_a, d), _sample(rng, n_b, d, 0.3) * 1.5
    moments = frechet_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(a, b) == pytest.approx(moments, rel=1e-10)


def test_frechet_symmetric_with_singular_covariances() -> None:
    rng = np.random.default_rng(4)
    a, b = _sample(rng, 40, 64), _sample(rng, 30, 64, 0.2)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)


def test_frechet_needs_two_rows_and_psd_moments() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(np.ones((1, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="negative"):
        frechet_from_moments(np.zeros(2), -np.eye(2), np.zeros(2), -np.eye(2))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (6, 3), elements=finite), arrays(np.float64, (5, 3), elements=finite))
def test_frechet_nonnegative_and_symmetric(a: np.ndarray, b: np.ndarray) -> None:
    ab, ba = frechet_distance(a, b), frechet_distance(b, a)
    assert ab >= 0.0
    assert ab == pytest.approx(ba, rel=1e-7, abs=1e-7)


# ---------------------------------------------------------------------------- MMD
def _mmd_naive(x: np.ndarray, y: np.ndarray, sigma: float, unbiased: bool) -> float:
    def k(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.exp(-np.sum((u - v) ** 2) / (2 * sigma**2)))

    n, m = len(x), len(y)
    pairs_x = [(i, j) for i in range(n) for j in range(n) if not (unbiased and i == j)]
    pairs_y = [(i, j) for i in range(m) for j in range(m) if not (unbiased and i == j)]
    kxx = sum(k(x[i], x[j]) for i, j in pairs_x) / len(pairs_x)
    kyy = sum(k(y[i], y[j]) for i, j in pairs_y) / len(pairs_y)
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_mmd_hand_worked_one_point_each() -> None:
    # biased, one point per sample: k(x,x) + k(y,y) - 2 k(x,y) = 2 - 2 exp(-d^2 / 2)
    x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])  # distance 5
    got = mmd_squared(x, y, bandwidth=5.0, estimator="biased")
    assert got == pytest.approx(2 - 2 * np.exp(-25 / (2 * 25)), abs=1e-15)


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_matches_naive_double_loop(unbiased: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(td, "_BLOCK", 4)  # exercise the row-block path
    rng = np.random.default_rng(5)
    x, y = _sample(rng, 9, 3), _sample(rng, 7, 3, 0.7)
    estimator = "unbiased" if unbiased else "biased"
    got = mmd_squared(x, y, bandwidth=1.3, estimator=estimator)
    assert got == pytest.approx(_mmd_naive(x, y, 1.3, unbiased), rel=1e-12)


def test_median_heuristic_matches_scipy_pdist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(td, "_BLOCK", 5)
    rng = np.random.default_rng(6)
    x, y = _sample(rng, 11, 4), _sample(rng, 8, 4, 1.0)
    expected = float(np.median(pdist(np.vstack([x, y]))))
    assert median_heuristic_bandwidth(x, y) == pytest.approx(expected, rel=1e-12)


def test_mmd_identical_samples() -> None:
    rng = np.random.default_rng(7)
    x = _sample(rng, 30, 5)
    # Biased (V-statistic): exactly the same sums, so 0 up to float error.
    assert mmd_squared(x, x, estimator="biased") == pytest.approx(0.0, abs=1e-12)
    # Unbiased (U-statistic): with X = Y it is 2 (mean off-diagonal kernel - 1) / n.
    sigma = median_heuristic_bandwidth(x, x)
    kernel = np.exp(-cdist(x, x, "sqeuclidean") / (2 * sigma**2))
    off_diagonal_mean = (kernel.sum() - 30) / (30 * 29)
    assert mmd_squared(x, x) == pytest.approx(2 * (off_diagonal_mean - 1) / 30, rel=1e-10)


def test_mmd_unbiased_estimator_is_unbiased_by_simulation() -> None:
    # Two samples of one distribution: E[U-statistic] = MMD^2 = 0, E[V-statistic] > 0.
    rng = np.random.default_rng(8)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = _sample(rng, 15, 3), _sample(rng, 15, 3)
        unbiased.append(mmd_squared(x, y, bandwidth=1.5))
        biased.append(mmd_squared(x, y, bandwidth=1.5, estimator="biased"))
    u, v = np.array(unbiased), np.array(biased)
    standard_error = u.std(ddof=1) / np.sqrt(u.size)
    assert abs(u.mean()) < 3 * standard_error
    assert v.mean() > u.mean() + 10 * standard_error
    # and a real shift is detected
    shifted = [mmd_squared(_sample(rng, 15, 3), _sample(rng, 15, 3, 1.0)) for _ in range(50)]
    assert np.mean(shifted) > 10 * standard_error


def test_mmd_symmetric() -> None:
    rng = np.random.default_rng(9)
    x, y = _sample(rng, 20, 4), _sample(rng, 13, 4, 0.4)
    assert mmd_squared(x, y) == pytest.approx(mmd_squared(y, x), rel=1e-12)


def test_mmd_rejects_bad_bandwidth_and_estimator() -> None:
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_squared(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="median heuristic bandwidth is 0"):
        mmd_squared(x, x)
    with pytest.raises(ValueError, match="estimator"):
        mmd_squared(x, x + 1, bandwidth=1.0, estimator="plugin")  # type: ignore[arg-type]


# --------------------------------------------------------------------- vocabulary
def test_weighted_jaccard_hand_worked() -> None:
    # a: the 2/4, cat 1/4, sat 1/4 ; b: the 1/3, dog 1/3, sat 1/3
    a, b = ["The cat", "the sat"], ["the dog sat"]
    low = min(2 / 4, 1 / 3) + 0 + 0 + min(1 / 4, 1 / 3)
    high = max(2 / 4, 1 / 3) + 1 / 4 + 1 / 3 + max(1 / 4, 1 / 3)
    assert weighted_jaccard_similarity(a, b) == pytest.approx(low / high, abs=1e-15)
    assert vocabulary_distance(a, b) == pytest.approx(1 - low / high, abs=1e-15)
    assert vocabulary_distance(b, a) == pytest.approx(vocabulary_distance(a, b), abs=1e-15)
    assert vocabulary_distance(a, a) == 0.0
    assert vocabulary_distance(a, a + a) == 0.0  # relative frequencies: sample size free


def test_vocabulary_rejects_empty() -> None:
    with pytest.raises(ValueError, match="no words"):
        vocabulary_distance(["..."], ["a"])


# ----------------------------------------------------------------- tables, cache
def _fake_embed(texts: list[str]) -> np.ndarray:
    # Deterministic toy embedding: character-class counts.
    return np.array(
        [
            [sum(c.isupper() for c in t) + 1.0, sum(c.islower() for c in t), len(t.split())]
            for t in texts
        ]
    )


def test_task_distances_pairs_and_identity() -> None:
    samples = {"a": ["Hello there friend", "A B c"], "b": ["lower only", "Upper Case Words"]}
    same = task_distances(samples, {"a2": samples["a"]}, embed=_fake_embed)
    assert set(same["task_a"]) == {"a", "b"} and set(same["task_b"]) == {"a2"}
    for measure in ("textemb", "vocab"):
        row = same[(same["task_a"] == "a") & (same["measure"] == measure)]
        assert float(row["distance"].iloc[0]) == pytest.approx(0.0, abs=1e-12)
    within = task_distances(
        samples, measures=["textemb", "frechet", "mmd", "vocab"], embed=_fake_embed
    )
    assert len(within) == 4 and set(within["task_a"]) == {"a"}
    single = task_distance(samples["a"], samples["b"], "frechet", embed=_fake_embed)
    frechet_row = within[within["measure"] == "frechet"]["distance"].iloc[0]
    assert single == pytest.approx(frechet_row, rel=1e-12)


def test_task_distances_validates() -> None:
    with pytest.raises(ValueError, match="unknown measure"):
        task_distances({"a": ["x"]}, measures=["cosine"], embed=_fake_embed)
    with pytest.raises(ValueError, match="no texts"):
        task_distances({"a": [], "b": ["x"]}, embed=_fake_embed)
    with pytest.raises(ValueError, match="different samples"):
        task_distances({"a": ["x"]}, {"a": ["y"]}, embed=_fake_embed)


def test_embedding_cache_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xcal.models.embed as embed_module

    monkeypatch.setenv("XCAL_CACHE_DIR", str(tmp_path))
    calls: list[list[str]] = []

    def fake_embed_texts(texts, model, *, prefix, pooling, normalize):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return _fake_embed(list(texts)).astype(np.float32)

    monkeypatch.setattr(embed_module, "embed_texts", fake_embed_texts)
    texts = ["One two", "Three"]
    first = embed_task_texts(texts, model="toy")
    second = embed_task_texts(texts, model="toy")
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    files = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "embeddings").glob("*.tmp"))
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)
    embed_task_texts(texts, model="other")  # another model is another key
    embed_task_texts(texts[::-1], model="toy")  # and so is another order
    assert len(calls) == 3
    # A damaged cache entry is recomputed, not trusted.
    np.save(files[0], np.zeros((5, 3), dtype=np.float32))
    again = embed_task_texts(texts, model="toy")
    assert len(calls) == 4
    np.testing.assert_array_equal(again, first)


# ---------------------------------------------------------------------- real data
def _xnli_premises(xtreme_dir: Path, language: str) -> list[str]:
    premises: list[str] = []
    with (xtreme_dir / "xnli" / f"dev-{language}.tsv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row[0] not in premises:
                premises.append(row[0])
    return premises


def _pawsx_pairs(xtreme_dir: Path) -> list[tuple[str, str, str]]:
    with (xtreme_dir / "pawsx" / "dev-en.tsv").open(encoding="utf-8") as handle:
        return [
            tuple(row[:3]) for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]  # type: ignore[misc]


@pytest.mark.model
@pytest.mark.slow
def test_task_is_closer_to_its_paraphrase_than_to_other_tasks(xtreme_dir: Path) -> None:
    n = 150
    paws = _pawsx_pairs(xtreme_dir)[:n]
    premises = _xnli_premises(xtreme_dir, "en")
    tatoeba = (
        (xtreme_dir / "tatoeba" / "v1" / "tatoeba.deu-eng.eng").read_text("utf-8").splitlines()
    )
    samples = {
        "pawsx-s1": [p[0] for p in paws],
        "xnli-premises": premises[:n],
    }
    others = {
        "pawsx-s2": [p[1] for p in paws],  # the paraphrase (or near-paraphrase) of each s1
        "xnli-premises-b": premises[n : 2 * n],  # another sample of the same task
        "tatoeba-eng": tatoeba[:n],
    }
    table = task_distances(samples, others, measures=["textemb", "frechet", "mmd", "vocab"])
    d = {(r.task_a, r.task_b, r.measure): r.distance for r in table.itertuples()}
    # The paraphrase: every measure puts PAWS-X sentence 2 nearest to sentence 1.
    for measure in ("textemb", "frechet", "mmd", "vocab"):
        assert d["pawsx-s1", "pawsx-s2", measure] < d["pawsx-s1", "xnli-premises-b", measure]
        assert d["pawsx-s1", "pawsx-s2", measure] < d["pawsx-s1", "tatoeba-eng", measure]
    # Another sample of the same task: the embedding measures recognise it. Word
    # overlap does not (measured: 0.71 to the other XNLI sample, 0.64 to Tatoeba:
    # 150 multi-genre premises share few content words), so vocab is not asserted here.
    for measure in ("textemb", "frechet", "mmd"):
        same_task = d["xnli-premises", "xnli-premises-b", measure]
        assert same_task < d["xnli-premises", "pawsx-s2", measure]
        assert same_task < d["xnli-premises", "tatoeba-eng", measure]
    # Identical real samples: distance 0 within float error (float32 embeddings).
    emb = embed_task_texts(samples["pawsx-s1"])
    assert textemb_distance(emb, emb) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(emb, emb) == pytest.approx(0.0, abs=1e-6)
    assert mmd_squared(emb, emb, estimator="biased") == pytest.approx(0.0, abs=1e-9)
    # Symmetry on real embeddings.
    e2 = embed_task_texts(others["tatoeba-eng"])
    for fn in (textemb_distance, frechet_distance, mmd_squared):
        assert fn(emb, e2) == pytest.approx(fn(e2, emb), rel=1e-6)


def test_task_texts_sample_is_seeded_deduplicated_and_checked(xtreme_dir: Path) -> None:
    from xcal.transfer.task_distance import task_texts

    first = task_texts("xnli", xtreme_dir, n=20, rng=3)
    assert first == task_texts("xnli", xtreme_dir, n=20, rng=3)
    assert first != task_texts("xnli", xtreme_dir, n=20, rng=4)
    assert len(set(first)) == 20
    everything = task_texts("xnli", xtreme_dir, n=None)
    assert len(everything) == len(set(_xnli_premises(xtreme_dir, "en")))  # one per premise
    english = task_texts("tatoeba", xtreme_dir, language="deu", field="candidate", n=None)
    tatoeba = (xtreme_dir / "tatoeba" / "v1" / "tatoeba.deu-eng.eng").read_text("utf-8")
    assert set(english) == {line for line in tatoeba.splitlines() if line.strip()}
    with pytest.raises(ValueError, match="no text field 'label'"):
        task_texts("xnli", xtreme_dir, field="label")


def test_vocabulary_distance_does_not_depend_on_string_hashing() -> None:
    """The same texts give the same bits under any PYTHONHASHSEED (set order varies)."""
    import os
    import subprocess
    import sys

    code = (
        "from xcal.transfer.task_distance import vocabulary_distance\n"
        "import random\n"
        "rng = random.Random(0)\n"
        "words = [f'w{i}' for i in range(3000)]\n"
        "a = [' '.join(rng.choices(words, k=12)) for _ in range(300)]\n"
        "b = [' '.join(rng.choices(words[:2000], k=9)) for _ in range(300)]\n"
        "print(repr(vocabulary_distance(a, b)))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(outputs) == 1, outputs
