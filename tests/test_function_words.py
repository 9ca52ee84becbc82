"""function_word_drop drops function words only: checked on the shared XNLI data.

Every language with a closed-class list: at severity 1 every word the
perturbation removes from 300 real XNLI sentences must be in the list, and
none of the language's common content verbs (below, written for this test:
said, went, came, returned, arrived, gave, got, took, saw, made, ... in each
language) may be dropped, nor be in the list at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xcal.perturb import get_perturbation
from xcal.perturb.function_words import CLOSED_CLASS
from xcal.perturb.syntactic import function_words
from xcal.perturb.words import segment

# Content verbs (and verb forms) that must never count as function words.
NEVER_DROP: dict[str, set[str]] = {
    "en": {"said", "went", "came", "returned", "arrived", "gave", "got", "took", "saw", "made",
           "know", "think", "want", "see", "go", "get", "make", "say", "give", "have", "has", "had"},
    "de": {"sagte", "ging", "kam", "gab", "sah", "machte", "weiß", "denke", "gehen", "kommen",
           "geben", "sagen", "hat", "haben", "will"},
    "fr": {"dit", "allé", "venu", "donné", "vu", "fait", "sais", "pense", "aller", "venir",
           "donner", "dire", "a", "ont", "avait"},
    "es": {"dijo", "fue", "vino", "dio", "vio", "hizo", "sé", "creo", "ir", "venir", "dar",
           "decir", "tiene", "tener"},
    "ru": {"сказал", "пошёл", "пришёл", "дал", "видел", "сделал", "знаю", "думаю", "есть"},
    "bg": {"каза", "отиде", "дойде", "даде", "видя", "направи", "знам", "мисля"},
    "el": {"είπε", "πήγε", "ήρθε", "έδωσε", "είδε", "έκανε", "ξέρω", "νομίζω", "έχει", "έχω"},
    "tr": {"dedi", "gitti", "geldi", "verdi", "gördü", "yaptı", "biliyorum", "doğru"},
    "vi": {"nói", "đi", "đến", "về", "cho", "thấy", "làm", "biết", "nghĩ", "ở", "theo"},
    "zh": {"说", "去", "来", "回", "到", "给", "看", "做", "知道", "想", "要"},
    "ja": {"言った", "行った", "来た", "見た", "した", "思う"},
    "ar": {"قال", "ذهب", "جاء", "عاد", "وصل", "أعطى", "رأى", "عمل", "أعرف", "أصبح"},
    "th": {"พูด", "ไป", "มา", "ถึง", "ให้", "ได้", "เห็น", "ทำ", "รู้", "คิด", "กลับ", "ตาม"},
    "sw": {"alisema", "alikwenda", "alikuja", "alirudi", "alifika", "alitoa", "aliona", "sababu"},
    "hi": {"कहा", "गया", "आया", "लौटा", "पहुंचा", "दिया", "देखा", "किया", "जानता"},
    "ur": {"کہا", "گیا", "آیا", "لوٹا", "پہنچا", "دیا", "دیکھا", "کیا"},
}  # fmt: skip

XNLI_LANGUAGES = ["ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]  # fmt: skip


def test_every_list_has_its_never_drop_verbs_checked():
    assert set(CLOSED_CLASS) == set(NEVER_DROP)
    for language, verbs in NEVER_DROP.items():
        assert not verbs & function_words(language), language


@pytest.mark.slow
@pytest.mark.parametrize("language", XNLI_LANGUAGES)
def test_drop_on_xnli_removes_only_function_words(language: str, xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    drop = get_perturbation("function_word_drop")
    stop = function_words(language)
    examples = get_task("xnli").load(xtreme_dir, language, "dev")[:300]
    n_dropped = 0
    for example in examples:
        text = example.premise
        out = drop(text, language=language, severity=1.0, seed=0, example_id=example.example_id)
        words = [p.text for p in segment(text, language) if p.is_word]
        # Every word not on the list survives, in order (compared as text, so a
        # re-segmentation of unspaced scripts cannot hide a loss).
        rest = out
        for word in words:
            if word.lower() in stop:
                continue
            at = rest.find(word)
            assert at >= 0, f"{language}: {word!r} was dropped from {text!r} -> {out!r}"
            rest = rest[at + len(word) :]
        n_dropped += len(text) - len(out) > 0
    assert n_dropped > 100, f"{language}: only {n_dropped} of 300 sentences changed"
