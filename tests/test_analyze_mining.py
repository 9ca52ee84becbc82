"""``xcal analyze`` on BUCC-style mining runs of realistic size and gold density.

Two systems mine the same planted corpus (8,624 source and 13,589 English
sentences, 257 gold pairs, English hubs): one with tight pairs, one with
noisy ones. The analysis must give F1 at a threshold chosen on the fit ids,
evaluated on the others, and the calibration of the margin's Platt confidence
over every evaluation query, partnered or not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _bucc import DEV_ENGLISH, DEV_GOLD, DEV_SOURCE, planted_embeddings

from xcal.analyze import analyze_store
from xcal.analyze.mining import score_mining_run
from xcal.analyze.pipeline import fit_mask
from xcal.infer.retrieval import mining_neighbours
from xcal.store import RunManifest, open_store

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _records(noise: float, seed: int, scale: int) -> dict[str, object]:
    n_source, n_english, n_gold = DEV_SOURCE // scale, DEV_ENGLISH // scale, DEV_GOLD // scale
    rng = np.random.default_rng(11)  # the same corpus and gold for both systems
    src = rng.choice(n_source, n_gold, replace=False)
    eng = rng.choice(n_english, n_gold, replace=False)
    pairs = list(zip(src.tolist(), eng.tolist(), strict=True))
    q, c = planted_embeddings(n_source, n_english, pairs, noise=noise, seed=seed)
    idx, scores, q_mean, c_mean = mining_neighbours(q, c, 5, 4)
    english = np.array([f"en-{j:09d}" for j in range(n_english)], dtype=object)
    gold = {s: [f"en-{e:09d}"] for s, e in pairs}
    return {
        "example_id": [f"zh-{i:09d}" for i in range(n_source)],
        "candidate_ids": [english[row].tolist() for row in idx],
        "scores": scores,
        "gold_ids": [gold.get(i, []) for i in range(n_source)],
        "query_knn_mean": q_mean,
        "candidate_knn_mean": c_mean[idx],
    }


def _store(root: Path, scale: int) -> tuple[Path, dict[str, dict]]:
    store = open_store(root)
    systems = {"base": _records(0.6, 1, scale), "noisy": _records(0.9, 2, scale)}
    for model, records in systems.items():
        n_source = len(records["example_id"])  # type: ignore[arg-type]
        # Not in id order, and another order per system: pairing must go by id.
        order = np.random.default_rng(len(model)).permutation(n_source)
        shuffled = {
            k: (np.asarray(v)[order] if isinstance(v, np.ndarray) else [v[i] for i in order])
            for k, v in records.items()
        }
        manifest = RunManifest(
            model=model,
            task="bucc2018",
            split="dev",
            language="zh",
            record_kind="mining",
            input_fingerprint=model,
            n_examples=n_source,
        )
        store.write_run(manifest, shuffled)
    return root, systems


@pytest.fixture(scope="module")
def realistic_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The real dev set's sizes: 8,624 source, 13,589 English, 257 gold pairs."""
    return _store(tmp_path_factory.mktemp("mining-store"), 1)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """A fifth of that, same density: 1,724 source, 2,717 English, 51 gold pairs."""
    return _store(tmp_path_factory.mktemp("mining-store-small"), 5)


def _reference_f1(records: dict, fit: np.ndarray, score: str = "ratio") -> float:
    """Threshold by exhaustive search on the fit ids, F1 from pair sets on the others."""
    scores = np.asarray(records["scores"], dtype=np.float64)
    margin = (
        scores
        if score == "cosine"
        else scores
        / ((np.asarray(records["query_knn_mean"])[:, None] + records["candidate_knn_mean"]) / 2)
    )
    best = margin.argmax(axis=1)
    proposal = [(f"zh-{i:09d}", records["candidate_ids"][i][best[i]]) for i in range(len(best))]
    value = margin[np.arange(len(best)), best]
    gold = {(f"zh-{i:09d}", g) for i, gs in enumerate(records["gold_ids"]) for g in gs}

    def f1(part: np.ndarray, threshold: float) -> float:
        mined = {proposal[i] for i in np.flatnonzero(part) if value[i] >= threshold}
        gold_part = {p for p in gold if part[int(p[0][3:])]}
        tp = len(mined & gold_part)
        return 2 * tp / (len(mined) + len(gold_part))

    candidates = np.unique(value[fit])
    scored = [(f1(fit, t), t) for t in candidates]
    best_f1 = max(s for s, _ in scored)
    # Among equally good cuts the highest; the threshold sits halfway to the next score.
    t = max(t for s, t in scored if s == best_f1)
    lower = candidates[candidates < t]
    threshold = (t + lower.max()) / 2 if lower.size else t
    return f1(~fit, threshold)


def test_small_mining_cell_f1_matches_the_reference(small_store: tuple[Path, dict]) -> None:
    root, systems = small_store
    result = analyze_store(root, baseline="base", n_boot=0, cache=False, progress=False)
    rows = result.results
    values = rows[rows.comparison == "value"].set_index(["system", "metric", "variant"])
    n_source = len(systems["base"]["example_id"])
    fit = fit_mask(np.array([f"zh-{i:09d}" for i in range(n_source)], dtype=object), 0.5)
    for system, records in systems.items():
        f1 = values.loc[(system, "f1", "raw")]
        assert f1.estimate == pytest.approx(_reference_f1(records, fit), abs=1e-12)
        assert f1.n_examples == int((~fit).sum())
        cosine = values.loc[(system, "f1", "cosine")].estimate
        assert cosine == pytest.approx(_reference_f1(records, fit, "cosine"), abs=1e-12)
        assert (system, "ece", "platt_self") in values.index
        # The same numbers from the Python API, with the threshold and the curve.
        score = score_mining_run(root, str(f1.run_id))
        assert score.f1 == pytest.approx(f1.estimate, abs=1e-12)
        assert len(score.example_ids) == f1.n_examples and score.threshold > 1.0
        ece = values.loc[(system, "ece", "platt_self")].estimate
        assert score.calibration_error() == pytest.approx(ece, abs=1e-12)
        brier = values.loc[(system, "brier", "platt_self")].estimate
        assert score.brier_loss() == pytest.approx(brier, abs=1e-12)
        curve = score.risk_coverage()
        assert curve.coverage[-1] == 1.0
        assert curve.risk[-1] == pytest.approx(1 - score.correct.mean())
        # The most confident proposals are (nearly) all right; all of them, mostly wrong.
        assert curve.risk[np.searchsorted(curve.coverage, 0.01)] < 0.2 < curve.risk[-1]


@pytest.mark.slow
def test_mining_rows_f1_and_calibration(realistic_store: tuple[Path, dict], tmp_path: Path) -> None:
    root, systems = realistic_store
    result = analyze_store(
        root, baseline="base", n_boot=200, cache=False, progress=False, out=tmp_path / "report"
    )
    rows = result.results
    values = rows[rows.comparison == "value"].set_index(["system", "metric", "variant"])
    ids = np.array([f"zh-{i:09d}" for i in range(DEV_SOURCE)], dtype=object)
    fit = fit_mask(ids, 0.5)
    for system, records in systems.items():
        f1 = values.loc[(system, "f1", "raw")]
        assert f1.estimate == pytest.approx(_reference_f1(records, fit), abs=1e-12)
        assert f1.n_examples == int((~fit).sum())
        assert f1.ci_low <= f1.estimate <= f1.ci_high
        for metric in ("precision", "recall"):
            assert 0 < values.loc[(system, metric, "raw")].estimate <= 1
        for metric in ("ece", "brier", "aurc", "confidence"):
            assert (system, metric, "platt_self") in values.index
        # Calibrated over all queries, most without a partner: the mean confidence
        # is near the share of correct proposals (about 3%), not near 1.
        conf = values.loc[(system, "confidence", "platt_self")].estimate
        assert 0.01 < conf < 0.06
        assert values.loc[(system, "ece", "platt_self")].estimate < 0.03
        assert (system, "accuracy", "raw") not in values.index
    assert values.loc[("base", "f1", "raw")].estimate > values.loc[("noisy", "f1", "raw")].estimate
    # The margin beats cosine on a corpus with hubs (Artetxe & Schwenk's point).
    for system in systems:
        assert (
            values.loc[(system, "f1", "raw")].estimate
            > values.loc[(system, "f1", "cosine")].estimate
        )
    diff = rows[(rows.comparison == "difference") & (rows.metric == "f1") & (rows.variant == "raw")]
    assert len(diff) == 1
    (d,) = diff.to_dict("records")
    assert d["estimate"] == pytest.approx(
        values.loc[("noisy", "f1", "raw")].estimate - values.loc[("base", "f1", "raw")].estimate
    )
    assert d["ci_high"] < 0 and d["p_adjusted"] < 0.05
    bins = result.reliability
    assert set(bins.variant) == {"platt_self"}
    assert int(bins[bins.system == "base"]["count"].sum()) == int((~fit).sum())
    assert not any("English run" in note for note in result.notes)
    assert (tmp_path / "report" / "index.md").exists()


def test_too_few_fitting_queries_is_a_note(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    n = 10
    store.write_run(
        RunManifest(
            model="base",
            task="bucc2018",
            split="dev",
            language="zh",
            record_kind="mining",
            input_fingerprint="f",
            n_examples=n,
        ),
        {
            "example_id": [f"zh-{i}" for i in range(n)],
            "candidate_ids": [["en-1"]] * n,
            "scores": np.full((n, 1), 0.5),
            "gold_ids": [["en-1"]] + [[]] * (n - 1),
            "query_knn_mean": np.full(n, 0.4),
            "candidate_knn_mean": np.full((n, 1), 0.4),
        },
    )
    result = analyze_store(tmp_path, baseline="base", n_boot=0, cache=False, progress=False)
    assert result.results.empty
    assert any("mining cell needs at least 20 fitting queries" in n for n in result.notes)
