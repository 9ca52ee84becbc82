"""Unit tests of the perturbations: worked examples per script, parameters, errors, reproducibility."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcal.perturb import (
    PERTURBATIONS,
    Perturbation,
    function_words,
    get_perturbation,
    load_lexicon,
    make_stream,
    perturbation_names,
    segment,
)
from xcal.perturb._lang import base_language, is_unspaced
from xcal.perturb._scripts import LetterPools, script_of, scripts_in
from xcal.perturb.base import register

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run(
    name: str, text: str, language: str, severity: float = 1.0, seed: int = 0, **params: object
) -> str:
    return get_perturbation(name, **params)(
        text, language=language, severity=severity, seed=seed, example_id="t"
    )


# --------------------------------------------------------------------- registry and contract


def test_registry_lists_every_perturbation_and_refuses_duplicates() -> None:
    expected = {
        "word_shuffle", "ngram_shuffle", "clause_swap", "function_word_drop", "function_word_move",
        "char_noise", "char_insert", "char_delete", "char_substitute", "char_swap",
        "remove_diacritics", "remove_punctuation", "lowercase", "transliterate",
        "whitespace_noise", "code_switch",
    }  # fmt: skip
    assert set(perturbation_names()) == expected
    for name in expected:
        p = get_perturbation(name)
        assert p.kind in {"syntactic", "noise"} and p.severity_meaning
        json.dumps(p.params)
    with pytest.raises(ValueError, match="already registered"):
        register(get_perturbation("word_shuffle"))


def test_parameters_are_validated_and_exposed() -> None:
    assert get_perturbation("word_shuffle", window=5).params == {"window": 5}
    assert get_perturbation("char_swap").params == {"ops": ["swap"]}
    assert get_perturbation("char_swap").severity_meaning == "fraction of letters hit by a swap"
    with pytest.raises(ValueError, match="unknown parameter"):
        get_perturbation("word_shuffle", n=2)
    with pytest.raises(ValueError, match="window"):
        get_perturbation("word_shuffle", window=0)
    with pytest.raises(ValueError, match="ops"):
        get_perturbation("char_noise", ops=("explode",))
    # Changing a parameter never changes the registered instance.
    assert PERTURBATIONS.get("word_shuffle").params == {"window": 3}


@pytest.mark.parametrize("severity", [-0.1, 1.01, float("nan")])
def test_severity_outside_unit_interval_is_refused(severity: float) -> None:
    with pytest.raises(ValueError, match="severity"):
        run("word_shuffle", "a b c", "en", severity=severity)


def test_bad_arguments_are_refused() -> None:
    p = get_perturbation("word_shuffle")
    with pytest.raises(TypeError, match="severity"):
        p("a b", language="en", severity="high", seed=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        p("a b", language="en", severity=0.5, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text"):
        p(None, language="en", severity=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="language"):
        p("a b", language="", severity=0.5)


def test_empty_and_blank_texts_pass_through() -> None:
    for name in perturbation_names():
        if name == "code_switch":
            continue
        assert run(name, "", "en") == ""
        assert run(name, "   ", "en") == "   "


def test_stream_is_keyed_by_name_seed_and_example_only() -> None:
    a = make_stream("word_shuffle", 0, "ex-1").uniforms(5)
    assert a == make_stream("word_shuffle", 0, "ex-1").uniforms(5)
    assert a != make_stream("word_shuffle", 1, "ex-1").uniforms(5)
    assert a != make_stream("word_shuffle", 0, "ex-2").uniforms(5)
    assert a != make_stream("ngram_shuffle", 0, "ex-1").uniforms(5)


def test_severities_are_nested() -> None:
    """Units affected at a lower severity stay affected at a higher one (common random numbers)."""
    text = "Ça, c'est très élégant: déjà vu, naïve café, São Paulo, Zürich, Ålesund, Øre."
    removed = []
    for level in (0.1, 0.3, 0.5, 0.8, 1.0):
        out = run("remove_diacritics", text, "fr", severity=level, seed=4)
        removed.append({i for i, (a, b) in enumerate(zip(text, out, strict=True)) if a != b})
    for low, high in itertools.pairwise(removed):
        assert low <= high
    assert removed[-1] and len(removed[-1]) > len(removed[0])


def test_outputs_are_identical_in_a_fresh_process_with_another_hash_seed() -> None:
    """Determinism across processes: no salted hash() anywhere in the random stream."""
    cases = [
        ("word_shuffle", "Der schnelle braune Fuchs springt über den faulen Hund.", "de"),
        ("ngram_shuffle", "我喜欢吃苹果，但是他不喜欢吃香蕉。", "zh"),
        ("char_noise", "ภาษาไทยเป็นภาษาที่สวยงาม", "th"),
        ("function_word_move", "Él dijo que no sabía nada de la historia.", "es"),
        ("clause_swap", "It rained, and we stayed home, but they left.", "en"),
    ]
    code = (
        "import json, sys\n"
        "from xcal.perturb import get_perturbation\n"
        "cases = json.loads(sys.argv[1])\n"
        "print(json.dumps([get_perturbation(n)(t, language=l, severity=0.7, seed=42, "
        "example_id='id-7') for n, t, l in cases]))\n"
    )
    here = [
        get_perturbation(n)(t, language=lang, severity=0.7, seed=42, example_id="id-7")
        for n, t, lang in cases
    ]
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(cases)],
            capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, check=True,
        )  # fmt: skip
        assert json.loads(proc.stdout) == here


def test_known_outputs_are_stable() -> None:
    """Pinned outputs: a change here changes stored runs, so bump ALGORITHM_VERSION with it."""
    text = "the quick brown fox jumps over the lazy dog"
    assert run("ngram_shuffle", "a b c d e f", "en", seed=0) == "e f a b c d"
    assert run("word_shuffle", text, "en", seed=0) == "the quick fox brown jumps lazy over the dog"
    assert run("char_noise", "Grüße aus Zürich, sagte der Bär.", "de", severity=0.5) == (
        "Crßüe vui üZgci, sgaet dre Bzänr."
    )


# --------------------------------------------------------------------- segmentation and codes


def test_language_codes() -> None:
    assert base_language("deu") == "de" and base_language("pt-BR") == "pt"
    assert base_language("cmn") == "zh" and base_language("swh") == "sw"
    # deprecated codes follow the IANA registry (langcodes): Coastal Kadazan -> Central Dusun
    assert base_language("kzj") == "dtp" and base_language("tgl") == "tl"
    assert (
        is_unspaced("jpn") and is_unspaced("yue") and is_unspaced("khm") and not is_unspaced("kor")
    )


def test_whitespace_segmentation_round_trips_and_splits_edge_punctuation() -> None:
    text = "«Bonjour», dit-il — l'homme  d'affaires (3.5 %)\tpartit…\n"
    pieces = segment(text, "fr")
    assert "".join(p.text for p in pieces) == text
    assert [p.text for p in pieces if p.is_word] == [
        "Bonjour", "dit-il", "l'homme", "d'affaires", "3.5", "partit",
    ]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["en", "zh", "th", "ja", "ar"]))
def test_segmentation_round_trips_on_any_text(text: str, lang: str) -> None:
    assert "".join(p.text for p in segment(text, lang)) == text
    assert "".join(p.text for p in segment(text, lang, segmenter="characters")) == text


def test_icu_offsets_survive_astral_characters() -> None:
    text = "𠀀我喜欢😀苹果。"
    assert "".join(p.text for p in segment(text, "zh")) == text


# --------------------------------------------------------------------- syntactic


@settings(max_examples=100, deadline=None)
@given(
    n_words=st.integers(2, 30),
    window=st.integers(1, 5),
    severity=st.floats(0.0, 1.0),
    seed=st.integers(0, 10**6),
)
def test_word_shuffle_moves_no_word_further_than_window(
    n_words: int, window: int, severity: float, seed: int
) -> None:
    words = [f"w{i}" for i in range(n_words)]
    out = run(
        "word_shuffle", " ".join(words), "en", severity=severity, seed=seed, window=window
    ).split()
    assert sorted(out) == sorted(words)
    for new_pos, word in enumerate(out):
        assert abs(new_pos - int(word[1:])) <= window


def test_ngram_shuffle_keeps_ngrams_intact() -> None:
    words = [f"w{i}" for i in range(12)]
    for seed in range(20):
        out = run("ngram_shuffle", " ".join(words), "en", seed=seed, n=3).split()
        chunks = {tuple(out[i : i + 3]) for i in range(0, 12, 3)}
        assert chunks == {tuple(words[i : i + 3]) for i in range(0, 12, 3)}


def test_shuffles_keep_punctuation_in_place() -> None:
    text = "Yes, he said: we will go home now."
    fixed = [p.text for p in segment(text, "en") if not p.is_word]
    for name in ("word_shuffle", "ngram_shuffle", "function_word_move"):
        for seed in range(5):
            out = run(name, text, "en", seed=seed)
            assert [p.text for p in segment(out, "en") if not p.is_word] == fixed


def test_clause_swap_examples() -> None:
    assert (
        run("clause_swap", "It rained, and we stayed home.", "en")
        == "we stayed home, and It rained."
    )
    assert run("clause_swap", "我喜欢苹果，他喜欢香蕉。", "zh") == "他喜欢香蕉，我喜欢苹果。"
    # Sentence ends are barriers: nothing to swap inside one-clause sentences.
    assert run("clause_swap", "It rained. We stayed.", "en") == "It rained. We stayed."
    # A conjunction is a boundary even without punctuation.
    assert run("clause_swap", "ฉันกินข้าว และเขาดื่มน้ำ", "th") == "เขาดื่มน้ำ และฉันกินข้าว"


def test_function_words_are_closed_class_lists() -> None:
    assert {"der", "und", "die"} <= function_words("deu")
    assert {"的", "了"} <= function_words("cmn")
    # languages without a checked list are left alone
    assert function_words("qu") == frozenset() and function_words("no") == frozenset()
    # the content words the broad stopword lists held are gone (ar "returned", th "arrive")
    assert "عاد" not in function_words("ar") and "ถึง" not in function_words("th")
    assert not {"said", "computer", "problem", "have"} & function_words("en")


def test_function_word_drop_examples() -> None:
    assert run("function_word_drop", "The cat sat on the mat.", "en") == "cat sat mat."
    text = "他们在学校里学习了很多东西。"
    words = [p.text for p in segment(text, "zh") if p.is_word]
    kept = [p.text for p in segment(run("function_word_drop", text, "zh"), "zh") if p.is_word]
    dropped = [w for w in words if w not in kept]
    assert dropped and set(dropped) <= function_words("zh")
    assert kept == [w for w in words if w in kept]  # order unchanged
    # Never drops every word.
    assert run("function_word_drop", "it is", "en") in {"it", "is"}
    # A language without a stopword list is left unchanged (and says so in its params).
    assert run("function_word_drop", "Allinllachu kanki", "qu") == "Allinllachu kanki"
    params = get_perturbation("function_word_drop").manifest_params("qu")
    assert params["stopwords"] == "none"


def test_function_word_list_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text("# mine\ncat\n", encoding="utf-8")
    out = run(
        "function_word_drop", "The cat sat.", "en", stopwords_file=str(tmp_path / "{lang}.txt")
    )
    assert out == "The sat."


# --------------------------------------------------------------------- noise


def test_char_noise_stays_in_the_script_and_case() -> None:
    cases = {
        "ru": "Москва большой город",
        "el": "Η Αθήνα είναι πόλη",
        "hi": "मैं हिंदी बोलता हूँ",
        "ar": "ذهب الولد إلى المدرسة",
        "ja": "私は東京でカレーを食べます",
        "ko": "나는 학교에 갑니다",
        "he": "אני הולך הביתה",
        "ka": "მე მიყვარს ქართული",
    }
    for lang, text in cases.items():
        for name in ("char_insert", "char_substitute"):
            out = run(name, text, lang, seed=1)
            assert out != text
            assert scripts_in(out) <= scripts_in(text), (lang, name, out)


def test_substitution_preserves_case_and_marks() -> None:
    out = run("char_substitute", "ABC def", "en", seed=2)
    assert out[:3].isupper() and out[4:].islower()
    pools = LetterPools("naïve")
    assert "ï" in pools.pool("a") and "A" not in pools.pool("a")
    # A Devanagari consonant keeps its vowel sign when substituted.
    out = run("char_substitute", "कि", "hi", seed=0)
    assert len(out) == 2 and out[1] == "ि" and script_of(out[0]) == "DEVANAGARI"


def test_char_delete_never_removes_every_letter() -> None:
    out = run("char_delete", "ab, cd!", "en")
    assert any(c.isalpha() for c in out)


def test_char_swap_swaps_neighbours_within_a_word() -> None:
    out = run("char_swap", "ab", "en")
    assert out == "ba"


def test_remove_diacritics_per_script() -> None:
    assert run("remove_diacritics", "Tiếng Việt đẹp", "vi") == "Tieng Viet dep"
    assert (
        run("remove_diacritics", "Łódź, Ålesund, Ελληνικά, ёлка", "pl")
        == "Lodz, Alesund, Ελληνικα, елка"
    )
    # Arabic harakat go; letters, hamza and madda (spelling, not vocalisation) stay.
    assert run("remove_diacritics", "ذَهَبَ الوَلَدُ إلى آخِرِ", "ar") == "ذهب الولد إلى آخر"
    # Thai tone marks go, vowel signs stay.
    assert run("remove_diacritics", "ข้าวไม่", "th") == "ขาวไม"
    # Devanagari nukta goes (precomposed and decomposed), vowel signs stay.
    assert run("remove_diacritics", "ज़िंदगी \u095b", "hi") == "जिंदगी ज"
    # Scripts without such diacritics are untouched.
    assert run("remove_diacritics", "我喜欢がぎぐ", "ja") == "我喜欢がぎぐ"


def test_remove_punctuation_and_spacing() -> None:
    assert run("remove_punctuation", "Well - yes, «quoted» !", "fr") == "Well yes quoted"
    assert run("remove_punctuation", "我喜欢，你呢？", "zh") == "我喜欢你呢"
    assert run("remove_punctuation", "don't stop", "en") == "dont stop"


def test_lowercase_handles_turkish_dotted_i() -> None:
    assert run("lowercase", "İstanbul ve Irak", "tr") == "istanbul ve ırak"
    out = run("lowercase", "İstanbul", "en")
    assert unicodedata.normalize("NFC", out).startswith("i")


def test_transliterate_romanises() -> None:
    assert run("transliterate", "Москва — столица", "ru") == "Moskva - stolitsa"
    out = run("transliterate", "我喜欢苹果", "zh")
    assert out.isascii() and " " in out  # romanised words are separated
    assert run("transliterate", "already ascii", "en") == "already ascii"
    assert get_perturbation("transliterate").manifest_params("zh")["anyascii"]


def test_whitespace_noise() -> None:
    assert run("whitespace_noise", "the cat sat, then left", "en") == "thecatsat, thenleft"
    out = run("whitespace_noise", "我喜欢吃苹果", "zh")
    assert out.replace(" ", "") == "我喜欢吃苹果" and out.count(" ") == 3


def test_code_switch_with_a_lexicon(tmp_path: Path) -> None:
    lexicon = tmp_path / "de-en.txt"
    lexicon.write_text("# MUSE style\nhund dog\nhund hound\nkatze\tcat\n", encoding="utf-8")
    pattern = str(tmp_path / "{lang}-en.txt")
    assert (
        run("code_switch", "Der Hund und die Katze.", "deu", lexicon=pattern)
        == "Der Dog und die Cat."
    )
    mapping, digest = load_lexicon(str(lexicon))
    assert mapping == {"hund": "dog", "katze": "cat"} and len(digest) == 64
    params = get_perturbation("code_switch", lexicon=pattern).manifest_params("de")
    assert params["lexicon_sha256"] == digest and params["lexicon"] == pattern
    # Unspaced scripts get spaces around inserted English words.
    (tmp_path / "zh-en.txt").write_text("苹果\tapple\n", encoding="utf-8")
    assert run("code_switch", "我喜欢苹果。", "zh", lexicon=pattern) == "我喜欢 apple。"


def test_code_switch_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a bilingual lexicon"):
        run("code_switch", "Der Hund", "de")
    with pytest.raises(FileNotFoundError, match=r"fr-en\.txt"):
        run("code_switch", "Le chien", "fr", lexicon=str(tmp_path / "{lang}-en.txt"))
    bad = tmp_path / "es-en.txt"
    bad.write_text("perro\tdog\ngato\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        run("code_switch", "El perro", "es", lexicon=str(bad))


def test_subclass_contract() -> None:
    """A new perturbation only implements _perturb; the base class guards the contract."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Eraser(Perturbation):
        kind = "noise"
        severity_meaning = "everything"

        def _perturb(self, text, language, severity, stream):  # type: ignore[no-untyped-def]
            return "   "

    p = Eraser("eraser")
    assert p("keep me", language="en", severity=1.0) == "keep me"  # never empty
    assert p.manifest_params("en")["algorithm_version"] >= 1
