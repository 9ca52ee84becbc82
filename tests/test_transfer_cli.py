"""``xcal transfer``: run the commands, check exit codes, printed numbers and files written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from xcal.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_transfer_is_registered() -> None:
    result = runner.invoke(app, ["transfer", "--help"])
    assert result.exit_code == 0
    for command in ("gains", "task-distance", "lang-distance", "select"):
        assert command in result.output


def test_gains_on_the_shipped_xstilts_table(tmp_path: Path) -> None:
    out = tmp_path / "gains.csv"
    table = ROOT / "data" / "xtreme_xstilts_mt5_table2.csv"
    result = runner.invoke(
        app, ["transfer", "gains", str(table), "--baseline", "XLM-R", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "10.9" in result.output and "wikiann" in result.output
    written = pd.read_csv(out).set_index("task")
    assert written.loc["tydiqa", "gain"] == pytest.approx(10.9)
    assert written.loc["wikiann", "rank"] == 6
    assert not list(tmp_path.glob("*.tmp"))


def test_gains_errors_exit_1_with_a_message(tmp_path: Path) -> None:
    table = ROOT / "data" / "xtreme_xstilts_mt5_table2.csv"
    result = runner.invoke(app, ["transfer", "gains", str(table), "--baseline", "mBERT"])
    assert result.exit_code == 1
    assert "unknown system 'mBERT'; known: " in " ".join(result.output.split())
    close = runner.invoke(app, ["transfer", "gains", str(table), "-b", "XLMR"])
    assert close.exit_code == 1 and "(did you mean 'XLM-R'?)" in close.output
    missing = runner.invoke(app, ["transfer", "gains", str(tmp_path / "no.csv"), "--baseline", "x"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_lang_distance(tmp_path: Path) -> None:
    out = tmp_path / "langs.csv"
    result = runner.invoke(
        app,
        ["transfer", "lang-distance", "de", "ja", "sw", "--view", "syntax_knn", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert frame["language"].tolist() == ["de", "ja", "sw"]
    assert frame["resource_class"].tolist() == [5, 5, 2]
    assert frame.loc[0, "syntax_knn_distance"] < frame.loc[1, "syntax_knn_distance"]
    bad = runner.invoke(app, ["transfer", "lang-distance", "xx"])
    assert bad.exit_code == 1 and "no ISO 639-3 mapping" in bad.output


def test_task_distance_vocab_from_files_and_tasks(tmp_path: Path, xtreme_dir: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the cat sat\nthe dog ran\n", encoding="utf-8")
    b.write_text("the cat sat\n\nthe dog ran\n", encoding="utf-8")
    out = tmp_path / "d.csv"
    result = runner.invoke(
        app,
        [
            "transfer",
            "task-distance",
            "--texts",
            f"a={a}",
            "--texts",
            f"b={b}",
            "--tasks",
            "xnli,pawsx",
            "--data-dir",
            str(xtreme_dir),
            "--n",
            "50",
            "--measure",
            "vocab",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert set(frame["measure"]) == {"vocab"}
    d = {(r.task_a, r.task_b): r.distance for r in frame.itertuples()}
    assert d["a", "b"] == 0.0  # the same texts (blank lines are skipped)
    assert 0.0 < d["xnli", "pawsx"] < 1.0
    bad = runner.invoke(app, ["transfer", "task-distance", "--tasks", "nosuchtask,xnli"])
    assert bad.exit_code == 1 and "unknown task 'nosuchtask'" in bad.output
    one = runner.invoke(app, ["transfer", "task-distance", "--texts", f"a={a}"])
    assert one.exit_code == 1 and "at least two tasks" in one.output


def test_select(tmp_path: Path) -> None:
    table = tmp_path / "sel.csv"
    table.write_text(
        "target_task,intermediate_task,distance,performance\n"
        "xnli,a,0.1,70\nxnli,b,0.3,80\nxnli,c,0.2,75\n",
        encoding="utf-8",
    )
    out = tmp_path / "q.csv"
    result = runner.invoke(app, ["transfer", "select", str(table), "--k", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["regret_loss"].tolist() == [pytest.approx((80 - 70) / 80)]


def test_correlate(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    targets, inters = ["xnli", "pawsx", "xquad", "mlqa"], ["mnli", "squad", "qqp", "sst2", "ccg"]
    distances = pd.DataFrame(
        [
            {"task_a": i, "task_b": t, "measure": "textemb", "distance": rng.random()}
            for i in inters
            for t in targets
        ]
    )
    gains = distances.rename(columns={"task_a": "intermediate_task", "task_b": "task"})
    gains = gains.assign(
        system="xlmr+" + gains["intermediate_task"],
        language="de",
        improvement=2.0
        - 4.0 * gains["distance"]
        + gains["task"].map({"xnli": 0.0, "pawsx": 1.5, "xquad": -1.0, "mlqa": 0.7})
        + rng.normal(0, 0.3, len(gains)),
    ).drop(columns=["measure", "distance", "intermediate_task"])
    gains_csv, distances_csv, out = tmp_path / "g.csv", tmp_path / "d.csv", tmp_path / "c.csv"
    gains.to_csv(gains_csv, index=False)
    distances.to_csv(distances_csv, index=False)
    args = ["transfer", "correlate", str(gains_csv), str(distances_csv), "--B", "300",
            "--permutations", "300", "--out", str(out)]  # fmt: skip
    args += [f"--intermediate-of=xlmr+{i}={i}" for i in inters]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out).set_index("metric")
    assert set(frame.index) == {"pearson", "spearman", "kendall"}
    assert (frame["estimate"] < 0).all()
    assert "MixedLM" in result.output and "distance" in result.output
    bad = runner.invoke(app, ["transfer", "correlate", str(gains_csv), str(distances_csv)])
    assert bad.exit_code == 1 and "intermediate_task" in bad.output


def test_gap(tmp_path: Path) -> None:
    rows = []
    for model, arch, factor in (("xlmr", "encoder-only", 1.0), ("mbert", "encoder-only", 1.1),
                                ("bloom", "decoder-only", 1.6), ("llama", "decoder-only", 1.4)):  # fmt: skip
        for language, drop in (("en", 0.0), ("de", 3.0), ("ru", 5.0), ("ja", 9.0), ("sw", 12.0)):
            rows.append((model, arch, "xnli", language, "accuracy", 80.0 - factor * drop))
    results = pd.DataFrame(
        rows, columns=["model", "architecture", "task", "language", "metric", "value"]
    )
    path, out = tmp_path / "r.csv", tmp_path / "gap.csv"
    results.to_csv(path, index=False)
    result = runner.invoke(app, ["transfer", "gap", str(path), "--B", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out).set_index("architecture")
    assert summary.loc["encoder-only", "estimate"] == pytest.approx((1.0 + 1.1) / 2 * 7.25)
    assert "distance:C(architecture)[T.encoder-only]" in result.output


@pytest.fixture(scope="module")
def analysis_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``xcal analyze``'s results.csv of a small synthetic store (two systems, two families)."""
    from xcal.analyze import analyze_store
    from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store

    root = tmp_path_factory.mktemp("analysis")
    store = make_synthetic_store(
        root / "store",
        systems=(
            SyntheticSystem("base"),
            SyntheticSystem("dec", architecture="decoder-only", logit_scale=lambda *_: 2.0),
        ),
        languages=("en", "de", "sw"),
        conditions=(("none", 0.0), ("word_shuffle", 0.5)),
        n_examples=200,
    )
    analyze_store(
        store,
        baseline="base",
        out=root / "report",
        n_boot=0,
        metrics=["accuracy", "ece"],
        progress=False,
    )
    return root / "report" / "results.csv"


def test_gains_reads_the_results_of_xcal_analyze(analysis_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "gains.csv"
    result = runner.invoke(
        app, ["transfer", "gains", str(analysis_csv), "--baseline", "base", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    gains = pd.read_csv(out)
    results = pd.read_csv(analysis_csv)
    clean = results[
        (results["comparison"] == "value")
        & (results["variant"] == "raw")
        & (results["perturbation"] == "none")
    ].set_index(["system", "language", "metric"])["estimate"]
    assert len(gains) == 3 * 2  # dec vs base: 3 languages x 2 metrics, clean and raw only
    for row in gains.itertuples():
        expected = (
            clean[("dec", row.language, row.metric)] - clean[("base", row.language, row.metric)]
        )
        assert row.gain == pytest.approx(expected)
    # ECE is lower-is-better (from the analysis' higher_is_better column)
    ece = gains[gains["metric"] == "ece"]
    assert (ece["improvement"] == -ece["gain"]).all()
    # the analysis' own paired differences agree
    diffs = results[
        (results["comparison"] == "difference")
        & (results["variant"] == "raw")
        & (results["perturbation"] == "none")
    ].set_index(["language", "metric"])["estimate"]
    for row in gains.itertuples():
        assert row.gain == pytest.approx(diffs[(row.language, row.metric)])


def test_gap_reads_the_results_of_xcal_analyze(analysis_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "gap.csv"
    result = runner.invoke(
        app, ["transfer", "gap", str(analysis_csv), "--B", "200", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out)
    assert set(summary["architecture"]) == {"encoder-only", "decoder-only"}
    results = pd.read_csv(analysis_csv)
    raw = results[
        (results["comparison"] == "value")
        & (results["variant"] == "raw")
        & (results["perturbation"] == "none")
        & (results["system"] == "base")
        & (results["metric"] == "accuracy")
    ].set_index("language")["estimate"]
    expected = ((raw["en"] - raw["de"]) + (raw["en"] - raw["sw"])) / 2
    row = summary[(summary["architecture"] == "encoder-only") & (summary["metric"] == "accuracy")]
    assert row["estimate"].iloc[0] == pytest.approx(expected)
