"""QA and retrieval confidence/correctness, and selective prediction."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcal.metrics import (
    aurc_loss,
    risk_coverage_curve,
    selective_accuracy_score,
    top_label_aurc_loss,
    top_label_calibration_error,
    top_label_risk_coverage_curve,
    top_label_selective_accuracy_score,
)
from xcal.metrics.qa import (
    MLQA_LANGUAGES,
    exact_match_score,
    f1_score,
    normalize_answer,
    qa_confidence_correctness,
    qa_exact_match_f1,
)
from xcal.metrics.retrieval import retrieval_confidence_correctness

# ------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    ("text", "language", "want"),
    [
        # SQuAD v1.1: ASCII punctuation only, English articles
        ("The Quick, Brown fox.", None, "quick brown fox"),
        ("An apple a day", None, "apple day"),
        ("«Paris»", None, "«paris»"),  # not ASCII punctuation: kept by SQuAD
        ("théâtre", None, "théâtre"),
        # MLQA: all Unicode punctuation, language articles
        ("«Paris»", "en", "paris"),
        ("El Museo del Prado", "es", "museo del prado"),  # "del" is not in the list
        ("Los gatos y las casas", "es", "gatos y casas"),
        ("Der Rhein und die Donau", "de", "rhein und donau"),
        ("Einem Mann", "de", "mann"),
        ("những cái bàn", "vi", "bàn"),
        ("भारत।", "hi", "भारत"),  # the danda is Unicode punctuation
        ("الكتاب", "ar", "كتاب"),
        ("مال", "ar", "م"),  # the official pattern removes every "ال", even inside words
        ("北京大学。", "zh", "北 京 大 学"),
        ("iPhone 手机", "zh", "iphone 手 机"),
        ("the answer", "zh", "the answer"),  # no articles removed for zh
    ],
)
def test_normalize_answer(text: str, language: str | None, want: str) -> None:
    assert normalize_answer(text, language) == want


def test_unknown_language_is_refused_with_the_options() -> None:
    with pytest.raises(ValueError, match=r"Unknown MLQA answer language 'fr'.*None for the SQuAD"):
        normalize_answer("le chat", "fr")


def test_exact_match_and_f1_hand_worked() -> None:
    assert exact_match_score("The Louvre!", ["Louvre Museum", "louvre"]) == 1.0
    assert exact_match_score("Louvre", "Musée du Louvre") == 0.0
    # "a b c" vs "b c d": two shared tokens, P = R = 2/3
    assert f1_score("x b c", "b c d") == pytest.approx(2 / 3)
    # max over gold answers
    assert f1_score("b c", ["z", "b c d"]) == pytest.approx(2 * (1 * 2 / 3) / (1 + 2 / 3))
    # zh is character level: 2 of 4 predicted characters in a 2-character answer
    assert f1_score("北京大学", "北京", "zh") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    # SQuAD v1.1 scores an empty prediction against an empty answer as F1 0, EM 1
    assert f1_score("", "the") == 0.0
    assert exact_match_score("", "the") == 1.0
    # answers as the store keeps them
    assert exact_match_score("Seine", [{"text": "the Seine", "answer_start": 3}]) == 1.0


# --------------------------------------------------------- QA confidence


def test_qa_confidence_is_softmax_over_nbest() -> None:
    nbest = [
        [
            {"text": "the Seine", "score": 2.0},
            {"text": "Paris", "score": 0.0},
            {"text": "river", "score": -1.0},
        ],
        # not best-first: the highest score is still the top span
        [{"text": "wrong", "score": 0.5}, {"text": "1889", "score": 3.0}],
    ]
    answers = [["Seine"], [{"text": "1889", "answer_start": 0}]]
    conf, correct = qa_confidence_correctness(nbest, answers)
    assert conf[0] == pytest.approx(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert conf[1] == pytest.approx(math.exp(3) / (math.exp(3) + math.exp(0.5)))
    assert correct.tolist() == [True, True]
    conf_t, _ = qa_confidence_correctness(nbest, answers, temperature=2.0)
    assert conf_t[0] == pytest.approx(math.exp(1) / (math.exp(1) + 1 + math.exp(-0.5)))


def test_qa_correctness_by_f1_threshold() -> None:
    nbest = [[{"text": "Louvre museum in Paris", "score": 1.0}]]
    answers = [["Louvre Museum"]]
    em, f1 = qa_exact_match_f1(nbest, answers)
    assert em.tolist() == [0.0]
    assert f1[0] == pytest.approx(2 * (2 / 4) / (2 / 4 + 1))  # 2/3
    _, by_em = qa_confidence_correctness(nbest, answers, criterion="em")
    _, loose = qa_confidence_correctness(nbest, answers, criterion="f1", f1_threshold=0.5)
    _, strict = qa_confidence_correctness(nbest, answers, criterion="f1", f1_threshold=0.7)
    assert (by_em[0], loose[0], strict[0]) == (False, True, False)
    assert qa_confidence_correctness(nbest, answers)[0][0] == 1.0  # one span: softmax is 1


def test_qa_errors_name_the_row() -> None:
    with pytest.raises(ValueError, match="nbest row 1 is empty"):
        qa_confidence_correctness([[{"text": "a", "score": 1.0}], []], [["a"], ["b"]])
    with pytest.raises(ValueError, match="nbest row 0: a span has no 'score' field"):
        qa_confidence_correctness([[{"text": "a"}]], [["a"]])
    with pytest.raises(ValueError, match="`nbest` has 1 examples but `answers` has 2"):
        qa_confidence_correctness([[{"text": "a", "score": 1.0}]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="temperature"):
        qa_confidence_correctness([[{"text": "a", "score": 1.0}]], [["a"]], temperature=0.0)


def _mlqa_questions(xtreme_dir: Path, language: str, limit: int) -> list[dict[str, Any]]:
    path = (
        xtreme_dir / "mlqa" / "MLQA_V1" / "dev" / f"dev-context-{language}-question-{language}.json"
    )
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out.append({"context": paragraph["context"], "answers": qa["answers"]})
                if len(out) == limit:
                    return out
    return out


@pytest.mark.parametrize("language", MLQA_LANGUAGES)
def test_real_mlqa_answers(xtreme_dir: Path, language: str) -> None:
    # Gold spans as predictions are exact matches under the language's rules; a
    # span widened by context words keeps partial F1 but loses exact match.
    questions = _mlqa_questions(xtreme_dir, language, 150)
    nbest, answers = [], []
    for q in questions:
        gold = q["answers"][0]
        start = gold["answer_start"]
        wide = q["context"][max(0, start - 15) : start + len(gold["text"]) + 15]
        nbest.append(
            [
                {"text": gold["text"], "score": 1.0},
                {"text": wide, "score": 0.0},
            ]
        )
        answers.append(q["answers"])
    conf, correct = qa_confidence_correctness(nbest, answers, language=language)
    assert correct.all()
    assert np.allclose(conf, 1 / (1 + math.exp(-1)))
    widened = [[{"text": n[1]["text"], "score": 1.0}] for n in nbest]
    em, f1 = qa_exact_match_f1(widened, answers, language=language)
    assert em.mean() < 0.2
    assert 0.2 < f1.mean() < 1.0


# -------------------------------------------------------------- retrieval


def test_retrieval_confidence_and_correctness() -> None:
    scores = np.array([[0.9, 0.7, 0.1], [0.2, 0.8, 0.5]])
    candidates = [["a", "b", "c"], ["x", "y", "z"]]
    gold = [["a"], "z"]
    conf, correct = retrieval_confidence_correctness(scores, candidates, gold, temperature=0.1)
    assert conf[0] == pytest.approx(math.exp(9) / (math.exp(9) + math.exp(7) + math.exp(1)))
    assert conf[1] == pytest.approx(math.exp(8) / (math.exp(2) + math.exp(8) + math.exp(5)))
    assert correct.tolist() == [True, False]  # row 1 ranks "y" first; gold is "z"
    # a higher temperature flattens the softmax towards 1/k
    conf_hot, _ = retrieval_confidence_correctness(scores, candidates, gold, temperature=100.0)
    assert np.allclose(conf_hot, 1 / 3, atol=0.01)
    # the output feeds the calibration core directly: with 15 bins the two queries
    # fall in bins 13 and 14, so ECE = (|1 - conf_0| + |0 - conf_1|) / 2
    assert top_label_calibration_error(conf, correct) == pytest.approx(
        ((1 - conf[0]) + conf[1]) / 2, abs=1e-15
    )


def test_retrieval_on_real_tatoeba_ids(xtreme_dir: Path) -> None:
    # Tatoeba pairs line i with line i; a retriever that scores the aligned line
    # highest is always right, whatever the scores' scale.
    folder = xtreme_dir / "tatoeba" / "v1"
    src = (folder / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()[:50]
    n = len(src)
    rng = np.random.default_rng(0)
    ids = [f"eng-{i:04d}" for i in range(n)]
    scores = np.sort(rng.uniform(-1, 1, size=(n, 5)), axis=1)[:, ::-1]
    candidates = [[ids[i]] + [ids[(i + j) % n] for j in range(1, 5)] for i in range(n)]
    conf, correct = retrieval_confidence_correctness(scores, candidates, ids, temperature=0.05)
    assert correct.all() and ((conf > 0.2) & (conf <= 1)).all()


def test_retrieval_validation() -> None:
    with pytest.raises(ValueError, match="`candidate_ids` row 0 has 1 ids but `scores` has 2"):
        retrieval_confidence_correctness([[0.1, 0.2]], [["a"]], [["a"]])
    with pytest.raises(ValueError, match="temperature"):
        retrieval_confidence_correctness([[0.1, 0.2]], [["a", "b"]], [["a"]], temperature=-1)
    with pytest.raises(ValueError, match="`gold_ids` has 2 rows"):
        retrieval_confidence_correctness([[0.1, 0.2]], [["a", "b"]], [["a"], ["b"]])


# ------------------------------------------------------------- selective


def test_risk_coverage_curve_hand_worked() -> None:
    conf = [0.9, 0.8, 0.7, 0.6]
    correct = [1, 0, 1, 0]
    curve = top_label_risk_coverage_curve(conf, correct)
    assert curve.coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(curve.risk, [0 / 1, 1 / 2, 1 / 3, 2 / 4])
    assert top_label_aurc_loss(conf, correct) == pytest.approx((0 + 1 / 2 + 1 / 3 + 2 / 4) / 4)
    assert top_label_selective_accuracy_score(conf, correct, coverage=0.5) == 0.5
    assert top_label_selective_accuracy_score(conf, correct, coverage=0.25) == 1.0
    assert top_label_selective_accuracy_score(conf, correct, coverage=1.0) == 0.5


def test_ties_enter_together_and_order_does_not_matter() -> None:
    conf = np.array([0.9, 0.8, 0.8, 0.8, 0.5])
    correct = np.array([1, 1, 0, 0, 1])
    curve = top_label_risk_coverage_curve(conf, correct)
    assert curve.coverage.tolist() == [0.2, 0.8, 1.0]  # the three 0.8s are one point
    # AURC: 1 sample at risk 0, 3 at risk 2/4 (after the group), 1 at risk 2/5
    want = (1 * 0 + 3 * (2 / 4) + 1 * (2 / 5)) / 5
    assert top_label_aurc_loss(conf, correct) == pytest.approx(want)
    # coverage 0.4 takes the 0.9 and one of three 0.8s (1 right in 3 on average)
    assert top_label_selective_accuracy_score(conf, correct, coverage=0.4) == pytest.approx(
        (1 + 1 / 3) / 2
    )
    perm = np.array([4, 2, 0, 3, 1])
    assert top_label_aurc_loss(conf[perm], correct[perm]) == pytest.approx(want)
    assert top_label_selective_accuracy_score(
        conf[perm], correct[perm], coverage=0.4
    ) == pytest.approx((1 + 1 / 3) / 2)


def test_aurc_of_perfect_ranking_is_below_random() -> None:
    rng = np.random.default_rng(0)
    correct = rng.uniform(size=2000) < 0.7
    perfect = np.where(correct, 0.9, 0.1) + rng.uniform(0, 0.01, size=2000)
    random = rng.uniform(size=2000)
    assert top_label_aurc_loss(perfect, correct) < top_label_aurc_loss(random, correct)
    # the optimal AURC for error rate r is r + (1 - r) log(1 - r) (Geifman et al., 2019)
    r = 1 - correct.mean()
    assert top_label_aurc_loss(perfect, correct) == pytest.approx(
        r + (1 - r) * np.log(1 - r), abs=2e-3
    )


def test_classification_wrappers() -> None:
    y_prob = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    y_true = np.array([0, 0, 0, 0])
    # confidences 0.9 (right), 0.8 (wrong), 0.6 (right), 0.55 (wrong)
    curve = risk_coverage_curve(y_true, y_prob=y_prob)
    np.testing.assert_allclose(curve.risk, [0, 1 / 2, 1 / 3, 2 / 4])
    assert aurc_loss(y_true, y_prob=y_prob) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert selective_accuracy_score(y_true, y_prob=y_prob, coverage=0.75) == pytest.approx(2 / 3)
    logits = np.log(y_prob)
    assert aurc_loss(y_true, logits=logits) == pytest.approx(aurc_loss(y_true, y_prob=y_prob))
    with pytest.raises(ValueError, match=r"`coverage` in \(0, 1\]"):
        selective_accuracy_score(y_true, y_prob=y_prob, coverage=0.0)
