"""Transfer gains: the X-STILTs table of the mT5 paper, table validation, paired bootstrap
gains (reference: xcal.stats.paired_bootstrap; coverage by simulation) and the store adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xcal.stats import metric_statistic, paired_bootstrap
from xcal.store import RunManifest, fingerprint, open_store
from xcal.transfer.gains import (
    ResultsTableError,
    gains_from_table,
    paired_gains,
    read_results_table,
    statistics_from_store,
)

ROOT = Path(__file__).resolve().parents[1]
XSTILTS_TABLE = ROOT / "data" / "xtreme_xstilts_mt5_table2.csv"


# ------------------------------------------------------------- published table
def test_xstilts_gains_reproduce_the_mt5_table() -> None:
    table = read_results_table(XSTILTS_TABLE)
    gains = gains_from_table(table, baseline="XLM-R").set_index("task")
    # Xue et al. (2021), Table 2: X-STILTs minus XLM-R Large.
    expected = {
        "xnli": 80.4 - 79.2,  # +1.2
        "pawsx": 87.7 - 86.4,  # +1.3
        "wikiann": 64.7 - 65.4,  # -0.7
        "xquad": 77.2 - 76.6,  # +0.6
        "mlqa": 72.3 - 71.6,  # +0.7
        "tydiqa": 76.0 - 65.1,  # +10.9
    }
    assert [round(expected[t], 1) for t in expected] == [1.2, 1.3, -0.7, 0.6, 0.7, 10.9]
    assert set(gains.index) == set(expected)
    for task, gain in expected.items():
        assert gains.loc[task, "gain"] == pytest.approx(gain, abs=1e-9)
        assert gains.loc[task, "system"] == "X-STILTs"
    assert (gains["improvement"] == gains["gain"]).all()  # accuracy and F1: higher is better
    # Ordering: TyDiQA gains most, WikiANN NER is the one task that loses.
    order = gains.sort_values("rank").index.tolist()
    assert order == ["tydiqa", "pawsx", "xnli", "mlqa", "xquad", "wikiann"]
    assert gains.loc["tydiqa", "rank"] == 1 and gains.loc["wikiann", "rank"] == 6
    assert (gains.loc["wikiann", "gain"] < 0) and (gains.drop("wikiann")["gain"] > 0).all()


def test_lower_is_better_metrics_flip_improvement() -> None:
    table = pd.DataFrame(
        {
            "system": ["inter", "base", "inter", "base", "inter", "base"],
            "task": ["xnli"] * 6,
            "language": ["sw"] * 6,
            "metric": ["ece", "ece", "accuracy", "accuracy", "my_loss", "my_loss"],
            "value": [0.04, 0.10, 0.70, 0.65, 1.5, 1.2],
        }
    )
    g = gains_from_table(table, baseline="base").set_index("metric")
    assert g.loc["ece", "gain"] == pytest.approx(0.04 - 0.10)
    assert g.loc["ece", "improvement"] == pytest.approx(0.10 - 0.04)
    assert not g.loc["ece", "higher_is_better"] and not g.loc["my_loss", "higher_is_better"]
    assert g.loc["my_loss", "improvement"] == pytest.approx(-(1.5 - 1.2))
    explicit = gains_from_table(table, baseline="base", lower_is_better=["my_loss"])
    assert explicit.set_index("metric").loc["ece", "higher_is_better"]  # only the named ones


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "results.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_results_table_errors_name_the_line(tmp_path: Path) -> None:
    header = "# comment\nsystem,task,language,metric,value\n"
    with pytest.raises(ResultsTableError, match=r"results.csv line 4: `value` 'n/a'"):
        read_results_table(_write(tmp_path, header + "A,xnli,de,acc,1\nB,xnli,de,acc,n/a\n"))
    with pytest.raises(ResultsTableError, match="missing column"):
        read_results_table(_write(tmp_path, "system,task,value\nA,xnli,1\n"))
    with pytest.raises(ResultsTableError, match=r"line 3: duplicate"):
        read_results_table(_write(tmp_path, header + "A,xnli,de,acc,1\nA,xnli,de,acc,2\n"))
    with pytest.raises(ResultsTableError, match="line 3: empty `language`"):
        read_results_table(_write(tmp_path, header + "A,xnli,,acc,1\n"))
    with pytest.raises(FileNotFoundError):
        read_results_table(tmp_path / "absent.csv")


def test_gains_from_table_errors() -> None:
    table = pd.DataFrame(
        {
            "system": ["A", "B", "B"],
            "task": ["xnli", "xnli", "pawsx"],
            "language": "de",
            "metric": "accuracy",
            "value": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(ResultsTableError, match="baseline system 'C'"):
        gains_from_table(table, baseline="C")
    with pytest.raises(ResultsTableError, match="no baseline"):
        gains_from_table(table, baseline="A")
    with pytest.raises(ResultsTableError, match=r"system\(s\) \['Z'\]"):
        gains_from_table(table, baseline="A", systems=["Z"])


# ------------------------------------------------------------ paired bootstrap
def _accuracy_pair(rng: np.random.Generator, n: int, p_a: float, p_b: float):  # type: ignore[no-untyped-def]
    u = rng.random(n)
    ids = np.array([f"ex-{i:04d}" for i in range(n)], dtype=object)
    a = metric_statistic("accuracy", correct=u < p_a, example_ids=ids)
    b = metric_statistic("accuracy", correct=u < p_b, example_ids=ids)
    return a, b, u, ids


def test_paired_gains_equal_the_stats_paired_bootstrap() -> None:
    a, b, u, _ = _accuracy_pair(np.random.default_rng(0), 500, 0.8, 0.7)
    table = paired_gains(
        {("inter", "xnli", "de"): a, ("base", "xnli", "de"): b},
        baseline="base",
        B=2000,
        rng=np.random.default_rng(7),
    )
    reference = paired_bootstrap(a, b, B=2000, rng=np.random.default_rng(7)).iloc[0]
    row = table.iloc[0]
    assert row.gain == pytest.approx(np.mean(u < 0.8) - np.mean(u < 0.7), abs=1e-15)
    assert (row.ci_low, row.ci_high, row.p_value) == (
        reference.ci_low,
        reference.ci_high,
        reference.p_value,
    )
    assert row.metric == "accuracy_score" and row.higher_is_better
    assert row.ci_low <= row.gain <= row.ci_high


def test_paired_gains_align_by_example_id_and_adjust() -> None:
    rng = np.random.default_rng(1)
    stats = {}
    for language, p_a in (("de", 0.75), ("sw", 0.72)):
        a, b, _, _ = _accuracy_pair(rng, 300, p_a, 0.7)
        order = rng.permutation(300)
        stats["inter", "xnli", language] = a.take(order)  # another row order, same ids
        stats["base", "xnli", language] = b
    shuffled = paired_gains(stats, baseline="base", B=500, rng=3)
    assert len(shuffled) == 2
    assert (shuffled["p_adjusted"] >= shuffled["p_value"]).all()
    assert shuffled.set_index("language").loc["de", "gain"] == pytest.approx(
        stats["inter", "xnli", "de"].estimate() - stats["base", "xnli", "de"].estimate()
    )
    # The same seed gives the same table.
    pd.testing.assert_frame_equal(shuffled, paired_gains(stats, baseline="base", B=500, rng=3))


def test_paired_gains_errors() -> None:
    a, b, _, _ = _accuracy_pair(np.random.default_rng(2), 50, 0.8, 0.7)
    with pytest.raises(ValueError, match="no baseline"):
        paired_gains({("inter", "xnli", "de"): a, ("base", "xnli", "fr"): b}, baseline="base")
    with pytest.raises(ValueError, match="baseline system 'x'"):
        paired_gains({("inter", "xnli", "de"): a}, baseline="x")
    ece = metric_statistic("ece", confidence=np.full(50, 0.9), correct=np.ones(50, bool))
    with pytest.raises(ValueError, match="different metrics"):
        paired_gains({("inter", "xnli", "de"): ece, ("base", "xnli", "de"): b}, baseline="base")


@pytest.mark.slow
def test_paired_gain_interval_coverage_by_simulation() -> None:
    # Two systems whose per-example correctness is correlated; true gain is p_a - p_b.
    rng = np.random.default_rng(11)
    p_a, p_b, covered, reps = 0.78, 0.72, 0, 100
    for _ in range(reps):
        a, b, _, _ = _accuracy_pair(rng, 250, p_a, p_b)
        row = paired_gains(
            {("a", "t", "l"): a, ("b", "t", "l"): b}, baseline="b", B=300, rng=rng
        ).iloc[0]
        covered += row.ci_low <= p_a - p_b <= row.ci_high
    # 95% nominal; the binomial sd over 100 runs is 2.2 points.
    assert 0.88 <= covered / reps <= 1.0


# ----------------------------------------------------------------- the store
def _classification_run(store, model: str, inter: tuple[str, ...], language: str, logits, labels):  # type: ignore[no-untyped-def]
    ids = [f"xnli-dev-{i:06d}" for i in range(len(labels))]
    manifest = RunManifest(
        model=model,
        task="xnli",
        split="dev",
        language=language,
        record_kind="classification",
        input_fingerprint=fingerprint(ids, language),
        n_examples=len(labels),
        n_classes=logits.shape[1],
        intermediate_tasks=inter,
    )
    store.write_run(manifest, {"example_id": ids, "logits": logits, "label": labels})


def test_statistics_from_store_feed_paired_gains(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = open_store(tmp_path / "store")
    labels = rng.integers(0, 3, 120)
    truth: dict[tuple[str, str], float] = {}
    for system, inter in (("m", ()), ("m+mnli", ("mnli",))):
        for language in ("de", "sw"):
            logits = rng.normal(size=(120, 3)).astype(np.float32)
            logits[np.arange(120), labels] += 1.0 if inter else 0.3
            _classification_run(store, system, inter, language, logits, labels)
            truth[system, language] = float(np.mean(logits.argmax(1) == labels))
    stats = statistics_from_store(store, "accuracy", split="dev")
    assert set(stats) == {(s, "xnli", lang) for s in ("m", "m+mnli") for lang in ("de", "sw")}
    gains = paired_gains(stats, baseline="m", B=300, rng=0).set_index("language")
    for language in ("de", "sw"):
        assert gains.loc[language, "gain"] == pytest.approx(
            truth["m+mnli", language] - truth["m", language], abs=1e-12
        )
    ece = statistics_from_store(store, "ece", split="dev")
    assert ece["m", "xnli", "de"].name == "expected_calibration_error"
    with pytest.raises(ValueError, match="no runs"):
        statistics_from_store(store, split="test")
