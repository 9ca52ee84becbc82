"""Property tests of every perturbation over real sentences of every shared language.

Languages: all of XNLI dev, XQuAD and Tatoeba in the shared data (139 cases).
Properties: determinism under a seed, severity 0 is the identity, valid
non-empty Unicode in the same script (transliteration and code-switching may
add Latin), and a measured change that grows with severity on average.
"""

from __future__ import annotations

import statistics
import unicodedata
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from _perturb_samples import all_language_cases, data_root, sentences, tatoeba_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcal.perturb import get_perturbation, perturbation_names, segment, segmenter_name
from xcal.perturb._scripts import scripts_in
from xcal.perturb.words import segment_raw

CASES = all_language_cases()
NAMES = perturbation_names()
ENGLISH_FILLERS = ("house", "water", "green", "river", "small", "night", "table", "bread")


def test_every_shared_language_is_covered() -> None:
    datasets = {d for d, _ in CASES}
    assert datasets == {"xnli", "xquad", "tatoeba"}
    assert len([c for c in CASES if c[0] == "xnli"]) == 15
    assert len([c for c in CASES if c[0] == "xquad"]) == 12
    assert len([c for c in CASES if c[0] == "tatoeba"]) == 112


@pytest.fixture(scope="module")
def lexicon_pattern(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A code-switching lexicon per language built from the sample's own words.

    Real bilingual lexicons are not in the shared data; the properties under
    test (determinism, identity, script, monotone change) only need entries
    that occur in the text, each mapped to an English word.
    """
    from xcal.perturb._lang import base_language

    root = tmp_path_factory.mktemp("lexicons")
    by_code: dict[str, set[str]] = {}
    for dataset, lang in CASES:
        code = base_language(lang)
        for text in sentences(dataset, lang):
            words = [t.lower() for t, f in zip(*segment_raw(text, lang), strict=True) if f]
            by_code.setdefault(code, set()).update(words[::2])  # every other word
    for code, words in by_code.items():
        lines = [
            f"{w}\t{ENGLISH_FILLERS[k % len(ENGLISH_FILLERS)]}" for k, w in enumerate(sorted(words))
        ]
        (root / f"{code}-en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(root / "{lang}-en.txt")


def _perturbation(name: str, lexicon_pattern: str):
    if name == "code_switch":
        return get_perturbation(name, lexicon=lexicon_pattern)
    return get_perturbation(name)


def _check_valid(original: str, out: str, keeps_script: bool) -> None:
    assert isinstance(out, str)
    assert out.strip(), "empty output"
    out.encode("utf-8")  # raises on lone surrogates
    new_controls = {c for c in out if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")}
    assert new_controls <= set(original), f"new control/unassigned characters {new_controls}"
    allowed = scripts_in(original) | (set() if keeps_script else {"LATIN"})
    assert scripts_in(out) <= allowed, (original, out, scripts_in(out) - allowed)


@pytest.mark.parametrize(("dataset", "lang"), CASES, ids=[f"{d}-{lang}" for d, lang in CASES])
def test_every_perturbation_on_every_language(
    dataset: str, lang: str, lexicon_pattern: str
) -> None:
    texts = sentences(dataset, lang, limit=4)
    assert texts, f"no sentences for {dataset}/{lang}"
    for name in NAMES:
        p = _perturbation(name, lexicon_pattern)
        for k, text in enumerate(texts):
            out = p(text, language=lang, severity=0.6, seed=7, example_id=f"{lang}-{k}")
            assert out == p(text, language=lang, severity=0.6, seed=7, example_id=f"{lang}-{k}")
            assert p(text, language=lang, severity=0.0, seed=7, example_id=k) == text
            _check_valid(text, out, p.keeps_script)


@pytest.mark.parametrize(("dataset", "lang"), CASES, ids=[f"{d}-{lang}" for d, lang in CASES])
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_properties_hypothesis(
    dataset: str, lang: str, lexicon_pattern: str, data: st.DataObject
) -> None:
    text = data.draw(st.sampled_from(sentences(dataset, lang)), label="text")
    name = data.draw(st.sampled_from(NAMES), label="name")
    severity = data.draw(st.floats(0.0, 1.0, allow_nan=False), label="severity")
    seed = data.draw(st.integers(0, 2**63 - 1), label="seed")
    example_id = data.draw(st.text(max_size=12), label="example_id")
    p = _perturbation(name, lexicon_pattern)
    out = p(text, language=lang, severity=severity, seed=seed, example_id=example_id)
    again = p(text, language=lang, severity=severity, seed=seed, example_id=example_id)
    assert out == again
    assert p(text, language=lang, severity=0.0, seed=seed, example_id=example_id) == text
    if severity == 0.0:
        assert out == text
    _check_valid(text, out, p.keeps_script)


def _change(a: str, b: str) -> float:
    """Normalised change: 1 - difflib's similarity ratio (0 identical, 1 disjoint)."""
    return 1.0 - SequenceMatcher(None, a, b, autojunk=False).ratio()


@pytest.fixture(scope="module")
def severity_sample() -> list[tuple[str, str, str]]:
    """Two sentences of every language of the three datasets: (lang, id, text)."""
    return [
        (lang, f"{dataset}-{lang}-{k}", text)
        for dataset, lang in CASES
        for k, text in enumerate(sentences(dataset, lang, limit=2))
    ]


@pytest.mark.parametrize("name", NAMES)
def test_change_grows_with_severity(
    name: str, severity_sample: list[tuple[str, str, str]], lexicon_pattern: str
) -> None:
    p = _perturbation(name, lexicon_pattern)
    levels = (0.0, 0.25, 0.5, 1.0)
    means = []
    for level in levels:
        changes = [
            _change(text, p(text, language=lang, severity=level, seed=3, example_id=eid))
            for lang, eid, text in severity_sample
        ]
        means.append(statistics.fmean(changes))
    assert means[0] == 0.0
    assert means[1] > 0.0, f"{name}: no change at severity 0.25"
    assert means[1] < means[2] < means[3], f"{name}: mean change {means} not increasing"


def _is_word_permutation(texts: list[str], flags: list[bool], out: str) -> bool:
    """True if ``out`` fills the word slots of (texts, flags) with a permutation of its words."""
    words = [t for t, f in zip(texts, flags, strict=True) if f]

    def fill(i: int, pos: int, remaining: tuple[str, ...]) -> bool:
        if i == len(texts):
            return pos == len(out)
        if not flags[i]:
            return out.startswith(texts[i], pos) and fill(i + 1, pos + len(texts[i]), remaining)
        for w in set(remaining):
            if out.startswith(w, pos):
                rest = list(remaining)
                rest.remove(w)
                if fill(i + 1, pos + len(w), tuple(rest)):
                    return True
        return False

    return fill(0, 0, tuple(words))


def _unspaced_samples() -> list[tuple[str, str]]:
    out = []
    for lang in ("zh", "th"):
        out += [(lang, t) for t in sentences("xnli", lang, 10)]
        out += [(lang, t) for t in sentences("xquad", lang, 10)]
    for lang in ("cmn", "jpn", "tha", "wuu", "yue", "khm"):
        out += [(lang, t) for t in tatoeba_lines(lang)[:10]]
    pawsx = Path(data_root()) / "pawsx" / "dev-ja.tsv"
    with pawsx.open(encoding="utf-8") as f:
        out += [("ja", next(f).split("\t")[0]) for _ in range(10)]
    return out


@pytest.mark.parametrize("name", ["word_shuffle", "ngram_shuffle", "function_word_move"])
def test_unspaced_languages_are_shuffled_in_words(name: str) -> None:
    """zh/ja/th are reordered in ICU words, never split into bytes or characters."""
    p = get_perturbation(name)
    n_multichar = n_changed = 0
    for k, (lang, text) in enumerate(_unspaced_samples()):
        assert segmenter_name(lang).startswith("icu-"), "PyICU is a dependency: it must be used"
        texts, flags = segment_raw(text, lang)
        n_multichar += sum(f and len(t) > 1 for t, f in zip(texts, flags, strict=True))
        out = p(text, language=lang, severity=1.0, seed=11, example_id=k)
        assert sorted(out) == sorted(text)
        assert _is_word_permutation(texts, flags, out), (lang, text, out)
        n_changed += out != text
    assert n_multichar > 100, "the segmenter produced (almost) only single characters"
    assert n_changed > 10


def test_icu_segments_words_not_characters() -> None:
    zh = [p.text for p in segment("我喜欢吃苹果，但是他不喜欢。", "zh") if p.is_word]
    assert "苹果" in zh and "喜欢" in zh
    th = [p.text for p in segment("ฉันชอบกินข้าวผัด", "th") if p.is_word]
    assert th == ["ฉัน", "ชอบ", "กิน", "ข้าว", "ผัด"]
    ja = [p.text for p in segment("私は東京大学で勉強します。", "ja") if p.is_word]
    assert "東京" in ja and "勉強" in ja


def test_character_fallback_keeps_marks_on_their_letter() -> None:
    """Without ICU, unspaced text falls back to characters with their combining marks."""
    pieces = segment("ข้าวผัด", "th", segmenter="characters")
    assert [p.text for p in pieces] == ["ข้", "า", "ว", "ผั", "ด"]
    assert all(p.is_word for p in pieces)
    assert segmenter_name("th", "characters") == "characters"
