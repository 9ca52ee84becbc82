"""Semantic distance between tasks, from samples of their input texts.

Each task is represented by a sample of its inputs, embedded with a sentence
encoder (default: the bundled multilingual-e5-small). Three distances compare
the two clouds of embeddings and one compares vocabularies:

* ``textemb``: cosine distance between the mean embeddings (TextEmb of Vu et al. 2020);
* ``frechet``: Fréchet distance between Gaussian fits (the FID formula of Heusel et al. 2017);
* ``mmd``: squared kernel maximum mean discrepancy, RBF kernel with the median
  heuristic, unbiased estimator (Gretton et al. 2012);
* ``vocab``: one minus the weighted Jaccard similarity of word frequencies, a
  non-neural baseline.

Embeddings are cached on disk (``xcal.paths.cache_dir() / "embeddings"``) as
``.npy`` files keyed by a hash of the model settings and the texts, and loaded
with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from xcal.atomic import atomic_write_bytes
from xcal.paths import cache_dir

DEFAULT_MODEL = "bundled:multilingual-e5-small"
MEASURES: tuple[str, ...] = ("textemb", "frechet", "mmd", "vocab")
EMBEDDING_MEASURES: tuple[str, ...] = ("textemb", "frechet", "mmd")

Embedder = Callable[[Sequence[str]], np.ndarray]


# -------------------------------------------------------------------- validation
def _check_embeddings(emb: object, name: str, min_rows: int = 1) -> np.ndarray:
    array = np.asarray(emb, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"Expected `{name}` of shape (n_samples, n_dims), got shape {array.shape}")
    if array.shape[0] < min_rows:
        raise ValueError(
            f"Expected `{name}` to have at least {min_rows} rows, got {array.shape[0]}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return array


def _check_pair(emb_a: object, emb_b: object, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    a = _check_embeddings(emb_a, "emb_a", min_rows)
    b = _check_embeddings(emb_b, "emb_b", min_rows)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`emb_a` and `emb_b` must have the same dimension, got {a.shape[1]} and {b.shape[1]}"
        )
    return a, b


# --------------------------------------------------------------------- distances
def textemb_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Cosine distance between the mean embeddings of two samples (TextEmb).

    Parameters
    ----------
    emb_a, emb_b
        Embeddings of shape ``(n_a, d)`` and ``(n_b, d)``.

    Returns
    -------
    float
        ``1 - cos(mean(emb_a), mean(emb_b))``, in [0, 2].

    References
    ----------
    Vu et al. (2020). Exploring and Predicting Transferability across NLP Tasks. EMNLP.

    Examples
    --------
    >>> textemb_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]))
    1.0
    >>> round(textemb_distance(np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]])), 12)
    0.0
    """
    a, b = _check_pair(emb_a, emb_b)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    norm = float(np.linalg.norm(mean_a) * np.linalg.norm(mean_b))
    if norm == 0.0:
        raise ValueError("a mean embedding is the zero vector; its cosine distance is undefined")
    cos = float(np.clip(mean_a @ mean_b / norm, -1.0, 1.0))
    return max(0.0, 1.0 - cos)


def _clip_spectrum(values: np.ndarray) -> np.ndarray:
    # Eigenvalues below the numerical rank threshold (as in numpy.linalg.matrix_rank)
    # are round-off around a true 0; left in, their square roots (~1e-7 each) would
    # add up to a visible error for singular covariances (fewer samples than dims).
    if values.size == 0:
        return values
    tol = float(np.abs(values).max()) * values.size * np.finfo(np.float64).eps
    return np.where(values > tol, values, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(_clip_spectrum(values))) @ vectors.T


def frechet_from_moments(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    ``|mu_a - mu_b|^2 + tr(cov_a) + tr(cov_b) - 2 tr((cov_a cov_b)^{1/2})``.
    The trace term is computed as the sum of square roots of the eigenvalues of
    the symmetric PSD matrix ``cov_a^{1/2} cov_b cov_a^{1/2}`` (same spectrum as
    ``cov_a cov_b``), which needs no general matrix square root: with fewer
    samples than dimensions the covariances are singular and
    ``scipy.linalg.sqrtm(cov_a @ cov_b)`` returns complex round-off, while this
    form stays real, is symmetric in its arguments and gives 0 for equal moments.

    Examples
    --------
    >>> eye = np.eye(2)
    >>> frechet_from_moments(np.zeros(2), eye, np.ones(2), eye)  # |mu_a - mu_b|^2 = 2
    2.0
    >>> frechet_from_moments(np.zeros(1), np.eye(1), np.zeros(1), 4 * np.eye(1))  # 1 + 4 - 2*2
    1.0
    """
    mu_a, mu_b = np.atleast_1d(mu_a).astype(np.float64), np.atleast_1d(mu_b).astype(np.float64)
    cov_a = np.atleast_2d(cov_a).astype(np.float64)
    cov_b = np.atleast_2d(cov_b).astype(np.float64)
    diff = mu_a - mu_b
    root_a = _psd_sqrt((cov_a + cov_a.T) / 2)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(_clip_spectrum(eigenvalues)).sum())
    scale = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b))
    value = scale - 2.0 * trace_root
    # The exact value is >= 0: a negative of the order of round-off in the trace
    # terms is clipped to 0, anything larger means the inputs were not covariances.
    if value < -1e-6 * max(scale, 1.0):
        raise ValueError(
            f"Fréchet distance came out negative ({value:.3g}); are `cov_a` and `cov_b` "
            "positive semi-definite covariance matrices?"
        )
    return max(value, 0.0)


def _covariance_factor(x: np.ndarray) -> np.ndarray:
    """A matrix ``R`` with ``R.T @ R == cov(x)``, with at most ``min(n, d)`` rows."""
    centered = (x - x.mean(axis=0)) / np.sqrt(x.shape[0] - 1)
    if x.shape[0] <= x.shape[1]:
        return centered
    return _psd_sqrt(centered.T @ centered)


def _fit_and_trace_root(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b)`` and ``tr((S_a S_b)^{1/2})`` from samples."""
    # With S = R^T R, the non-zero eigenvalues of S_a S_b are those of
    # (R_a R_b^T)(R_a R_b^T)^T, so tr((S_a S_b)^{1/2}) is the nuclear norm of the
    # small matrix R_a R_b^T: real, symmetric in (a, b), and, unlike a matrix square
    # root, it does not inflate the round-off of the zero eigenvalues that singular
    # covariances (fewer samples than dimensions, the usual case here) have.
    factor_a, factor_b = _covariance_factor(a), _covariance_factor(b)
    trace_root = float(np.linalg.svd(factor_a @ factor_b.T, compute_uv=False).sum())
    diff = a.mean(axis=0) - b.mean(axis=0)
    scale = float(diff @ diff + np.sum(factor_a**2) + np.sum(factor_b**2))
    return scale, trace_root


def frechet_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two embedding samples.

    Means and unbiased (``ddof=1``) covariances are estimated from each sample;
    the result equals :func:`frechet_from_moments` on those moments. The trace
    term ``tr((S_a S_b)^{1/2})`` is computed as the nuclear norm of
    ``R_a R_b^T`` where ``S = R^T R`` (``R`` the centred data when there are no
    more samples than dimensions): exact, real and cheap, with no general
    matrix square root.

    References
    ----------
    Heusel et al. (2017). GANs Trained by a Two Time-Scale Update Rule Converge
    to a Local Nash Equilibrium. NeurIPS (the Fréchet Inception Distance).

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    >>> round(frechet_distance(x, x), 12)
    0.0
    >>> round(frechet_distance(x, x + 3.0), 10)  # shift by (3, 3): 9 + 9
    18.0
    """
    a, b = _check_pair(emb_a, emb_b, min_rows=2)
    scale, trace_root = _fit_and_trace_root(a, b)
    value = scale - 2.0 * trace_root
    if value < -1e-6 * max(scale, 1.0):
        raise RuntimeError(f"Fréchet distance came out negative ({value:.3g}): numerical failure")
    return max(value, 0.0)


_BLOCK = 1024


def _blocked_sq_dists(x: np.ndarray, y: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """Squared Euclidean distances in row blocks, so memory stays O(block * n)."""
    y_sq = np.einsum("ij,ij->i", y, y)
    for start in range(0, x.shape[0], _BLOCK):
        block = x[start : start + _BLOCK]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + y_sq[None, :] - 2.0 * block @ y.T
        yield start, np.clip(sq, 0.0, None)


def median_heuristic_bandwidth(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Median Euclidean distance between distinct points of the pooled sample.

    Examples
    --------
    >>> median_heuristic_bandwidth(np.array([[0.0], [1.0]]), np.array([[3.0]]))  # 1, 2, 3
    2.0
    """
    a, b = _check_pair(emb_a, emb_b)
    pooled = np.vstack([a, b])
    n = pooled.shape[0]
    if n < 2:
        raise ValueError("the median heuristic needs at least two points")
    upper = []
    for start, sq in _blocked_sq_dists(pooled, pooled):
        rows = np.arange(start, start + sq.shape[0])[:, None]
        upper.append(sq[rows < np.arange(n)[None, :]].astype(np.float64))
    return float(np.sqrt(np.median(np.concatenate(upper))))


def mmd_squared(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    *,
    bandwidth: float | None = None,
    estimator: Literal["unbiased", "biased"] = "unbiased",
) -> float:
    """Squared maximum mean discrepancy with an RBF kernel.

    ``k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))``; the bandwidth defaults to
    the median pairwise distance in the pooled sample (median heuristic).

    The unbiased estimator (the U-statistic, Gretton et al. 2012, eq. 3) drops
    the ``i == j`` terms within each sample: its expectation is exactly MMD^2, so
    for two samples of one distribution it is 0 on average and can be negative;
    for the *same* sample passed twice it equals ``2 (mean_offdiag(K) - 1) / n``,
    not 0. The biased estimator (the V-statistic) is 0 for identical samples and
    never negative, but overestimates MMD^2 by O(1/n).

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf and Smola (2012). A Kernel Two-Sample
    Test. JMLR 13.

    Examples
    --------
    >>> x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]])
    >>> mmd_squared(x, y, bandwidth=1.0, estimator="biased")
    0.0
    >>> k = np.exp(-0.5)  # kernel between the two points at distance 1
    >>> bool(np.isclose(mmd_squared(x, y, bandwidth=1.0), 2 * (k - 1) / 2))
    True
    """
    a, b = _check_pair(emb_a, emb_b, min_rows=2 if estimator == "unbiased" else 1)
    if estimator not in ("unbiased", "biased"):
        raise ValueError(f"Expected `estimator` to be 'unbiased' or 'biased', got {estimator!r}")
    if bandwidth is None:
        bandwidth = median_heuristic_bandwidth(a, b)
        if bandwidth == 0.0:
            raise ValueError("median heuristic bandwidth is 0 (most points coincide); pass one")
    elif not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"Expected `bandwidth` to be a positive number, got {bandwidth!r}")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)

    def kernel_sum(x: np.ndarray, y: np.ndarray) -> float:
        return float(sum(np.exp(-gamma * sq).sum() for _, sq in _blocked_sq_dists(x, y)))

    n, m = a.shape[0], b.shape[0]
    k_aa, k_bb, k_ab = kernel_sum(a, a), kernel_sum(b, b), kernel_sum(a, b)
    if estimator == "biased":
        return k_aa / n**2 + k_bb / m**2 - 2.0 * k_ab / (n * m)
    # k(x, x) = 1 on the diagonal of each within-sample matrix.
    return (k_aa - n) / (n * (n - 1)) + (k_bb - m) / (m * (m - 1)) - 2.0 * k_ab / (n * m)


_WORD = re.compile(r"\w+")


def word_frequencies(texts: Iterable[str], *, lowercase: bool = True) -> Counter[str]:
    """Counts of ``\\w+`` tokens (Unicode word characters) over ``texts``.

    Scripts written without spaces (Chinese, Japanese, Thai) come out as one
    token per run of letters; this baseline is meant for English intermediate
    and target tasks.

    Examples
    --------
    >>> word_frequencies(["The cat, the hat."])
    Counter({'the': 2, 'cat': 1, 'hat': 1})
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_WORD.findall(text.lower() if lowercase else text))
    return counts


def weighted_jaccard_similarity(
    texts_a: Iterable[str], texts_b: Iterable[str], *, lowercase: bool = True
) -> float:
    """Weighted Jaccard similarity of the two samples' relative word frequencies.

    ``sum_w min(p_a(w), p_b(w)) / sum_w max(p_a(w), p_b(w))`` with ``p`` the
    relative frequency of word ``w`` in a sample, so samples of different sizes
    compare fairly.

    Examples
    --------
    >>> weighted_jaccard_similarity(["a a b"], ["a b b"])  # min: 1/3+1/3, max: 2/3+2/3
    0.5
    """
    freq_a = word_frequencies(texts_a, lowercase=lowercase)
    freq_b = word_frequencies(texts_b, lowercase=lowercase)
    total_a, total_b = sum(freq_a.values()), sum(freq_b.values())
    if total_a == 0 or total_b == 0:
        raise ValueError("a text sample contains no words")
    pairs = [
        (freq_a.get(word, 0) / total_a, freq_b.get(word, 0) / total_b)
        for word in freq_a.keys() | freq_b.keys()
    ]
    # exactly rounded sums: the set's order changes with Python's string hashing,
    # and a plain sum in that order changed the last digits from run to run
    return math.fsum(min(p) for p in pairs) / math.fsum(max(p) for p in pairs)


def vocabulary_distance(
    texts_a: Iterable[str], texts_b: Iterable[str], *, lowercase: bool = True
) -> float:
    """One minus :func:`weighted_jaccard_similarity`.

    Examples
    --------
    >>> vocabulary_distance(["a b"], ["b a"])
    0.0
    """
    return 1.0 - weighted_jaccard_similarity(texts_a, texts_b, lowercase=lowercase)


# -------------------------------------------------------------------- embeddings
def embedding_cache_key(
    texts: Sequence[str], *, model: str, prefix: str, pooling: str, normalize: bool
) -> str:
    """SHA-256 of the model settings and the texts (the embedding cache key).

    The key names the model, not its weights: a local checkpoint path whose
    weights change needs a new name or a cleared cache.

    Examples
    --------
    >>> k = embedding_cache_key(["a"], model="m", prefix="", pooling="mean", normalize=True)
    >>> k == embedding_cache_key(["a"], model="m", prefix="", pooling="mean", normalize=False)
    False
    """
    digest = hashlib.sha256()
    header = {"model": model, "prefix": prefix, "pooling": pooling, "normalize": normalize}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def _atomic_save(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def embed_task_texts(
    texts: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    prefix: str = "query: ",
    pooling: Literal["mean", "cls", "last"] = "mean",
    normalize: bool = True,
    cache: bool = True,
) -> np.ndarray:
    """Embed texts with :func:`xcal.models.embed.embed_texts`, cached on disk.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(len(texts), d)``.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("Expected at least one text to embed, got none")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("Expected every text to be a str")
    path = None
    if cache:
        key = embedding_cache_key(
            texts, model=model, prefix=prefix, pooling=pooling, normalize=normalize
        )
        path = cache_dir() / "embeddings" / f"{key}.npy"
        if path.is_file():
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and cached.shape[0] == len(texts):
                return cached
            # A truncated or foreign file under our key: recompute and overwrite it.
    from xcal.models.embed import embed_texts

    embeddings = np.asarray(
        embed_texts(texts, model=model, prefix=prefix, pooling=pooling, normalize=normalize),
        dtype=np.float32,
    )
    if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
        raise RuntimeError(f"embed_texts returned shape {embeddings.shape} for {len(texts)} texts")
    if path is not None:
        _atomic_save(path, embeddings)
    return embeddings


# ------------------------------------------------------------------- task samples
def task_texts(
    task: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    language: str = "en",
    split: str | None = None,
    field: str | None = None,
    n: int | None = 1000,
    rng: np.random.Generator | int | None = 0,
) -> list[str]:
    """A sample of one text field of a registered task's inputs (:mod:`xcal.tasks`).

    Parameters
    ----------
    task
        A task name (``xnli``, ``pawsx``, ``xquad``, ``mlqa``, ``tydiqa``, ``xcopa``,
        ``tatoeba``...).
    data_dir
        The XTREME directory (default: :func:`xcal.paths.data_dir`).
    language, split
        Which file; the split defaults to the task's own default.
    field
        An example field (default: the task's first text field, e.g. XNLI's
        premise, a QA question). ``"candidate"`` takes the candidate side of a
        retrieval task: for Tatoeba, the English sentences of ``language``'s pairs.
    n
        Sample size (without replacement, after removing duplicate texts such as
        XNLI's premise repeated for its three hypotheses); ``None`` keeps all.
    rng
        Seed or generator of the sample; the same seed gives the same texts.
    """
    from xcal.paths import data_dir as resolve_data_dir
    from xcal.tasks import get_task

    spec = get_task(task)
    root = resolve_data_dir(data_dir)
    if field == "candidate":
        candidates = getattr(spec, "candidates", None)
        if candidates is None:
            raise ValueError(f"task {task!r} has no candidate side")
        texts = [c.text for c in candidates(root, language, split)]
    else:
        field = field or spec.text_fields[0]
        if field not in spec.text_fields:
            raise ValueError(
                f"task {task!r} has no text field {field!r}; fields: {', '.join(spec.text_fields)}"
            )
        texts = [str(getattr(example, field)) for example in spec.load(root, language, split)]
    unique = list(dict.fromkeys(t for t in texts if t.strip()))
    if n is None or n >= len(unique):
        return unique
    if n < 1:
        raise ValueError(f"Expected `n` to be a positive int or None, got {n!r}")
    from xcal.stats.resample import as_generator

    generator, _ = as_generator(rng)
    picked = np.sort(generator.choice(len(unique), size=n, replace=False))
    return [unique[i] for i in picked]


# ------------------------------------------------------------------ task distance
def _embedding_distance(measure: str, a: np.ndarray, b: np.ndarray) -> float:
    if measure == "textemb":
        return textemb_distance(a, b)
    if measure == "frechet":
        return frechet_distance(a, b)
    if measure == "mmd":
        return mmd_squared(a, b)
    raise ValueError(f"unknown measure {measure!r}; known: {', '.join(MEASURES)}")


def _check_measures(measures: Sequence[str]) -> list[str]:
    measures = [measures] if isinstance(measures, str) else list(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise ValueError(f"unknown measure(s) {unknown}; known: {', '.join(MEASURES)}")
    return measures


def task_distance(
    texts_a: Sequence[str],
    texts_b: Sequence[str],
    measure: str = "textemb",
    *,
    model: str = DEFAULT_MODEL,
    embed: Embedder | None = None,
) -> float:
    """Distance between two tasks given samples of their input texts.

    Parameters
    ----------
    texts_a, texts_b
        Input texts of each task (a sample of a few hundred to a few thousand).
    measure
        ``textemb``, ``frechet``, ``mmd`` or ``vocab``.
    model
        Sentence encoder name for :func:`embed_task_texts` (ignored for ``vocab``).
    embed
        A function ``texts -> (n, d) array`` to use instead of the cached encoder.

    Examples
    --------
    >>> fake = lambda texts: np.array([[len(t), 1.0] for t in texts])
    >>> round(task_distance(["ab", "cd"], ["cd", "ab"], "textemb", embed=fake), 12)
    0.0
    """
    (measure,) = _check_measures([measure])
    if measure == "vocab":
        return vocabulary_distance(texts_a, texts_b)
    embedder = embed or (lambda texts: embed_task_texts(texts, model=model))
    return _embedding_distance(measure, embedder(list(texts_a)), embedder(list(texts_b)))


def task_distances(
    samples: Mapping[str, Sequence[str]],
    targets: Mapping[str, Sequence[str]] | None = None,
    *,
    measures: Sequence[str] = MEASURES,
    model: str = DEFAULT_MODEL,
    embed: Embedder | None = None,
) -> pd.DataFrame:
    """Tidy table of distances between tasks, each task embedded once.

    Parameters
    ----------
    samples
        Task name -> input texts (e.g. the English intermediate tasks).
    targets
        Task name -> input texts. When given, every (sample task, target task)
        pair is scored; otherwise every unordered pair within ``samples``.
    measures
        Any of ``textemb``, ``frechet``, ``mmd``, ``vocab``.

    Returns
    -------
    pandas.DataFrame
        Columns ``task_a, task_b, measure, distance`` (``task_b`` is the target).

    Examples
    --------
    >>> fake = lambda texts: np.array([[len(t), 1.0] for t in texts])
    >>> df = task_distances({"x": ["aa b", "c"], "y": ["dd", "e f g"]},
    ...                     measures=["textemb", "vocab"], embed=fake)
    >>> df[["task_a", "task_b", "measure"]].values.tolist()
    [['x', 'y', 'textemb'], ['x', 'y', 'vocab']]
    """
    measures = _check_measures(measures)
    for name, texts in {**samples, **(targets or {})}.items():
        if len(texts) == 0:
            raise ValueError(f"task {name!r} has no texts")
    if targets is None:
        names = list(samples)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        pool: dict[str, Sequence[str]] = dict(samples)
    else:
        pairs = [(a, b) for a in samples for b in targets]
        pool = {**samples, **targets}
        clash = [n for n in samples if n in targets and list(samples[n]) != list(targets[n])]
        if clash:
            raise ValueError(f"task name(s) {clash} used for different samples and targets")
    embeddings: dict[str, np.ndarray] = {}
    if any(m in EMBEDDING_MEASURES for m in measures):
        embedder = embed or (lambda texts: embed_task_texts(texts, model=model))
        needed = {name for pair in pairs for name in pair}
        embeddings = {
            name: np.asarray(embedder(list(pool[name]))) for name in pool if name in needed
        }
    rows = []
    for a, b in pairs:
        for measure in measures:
            if measure == "vocab":
                value = vocabulary_distance(pool[a], pool[b])
            else:
                value = _embedding_distance(measure, embeddings[a], embeddings[b])
            rows.append({"task_a": a, "task_b": b, "measure": measure, "distance": value})
    return pd.DataFrame(rows, columns=["task_a", "task_b", "measure", "distance"])
