"""One tokenizer object per set of tokenizer files, per process.

Reading XLM-R's fast tokenizer takes about 2 s (a 17 MB ``tokenizer.json``),
and every checkpoint fine-tuned from one encoder carries the same tokenizer
files: a grid of six such checkpoints, or a demo of fourteen, read the same
tokenizer once per model and grid. Here a local checkpoint's tokenizer is
keyed by the bytes of its tokenizer files, so equal files give the same
object, and files that differ in one byte give a fresh load.

The objects are shared: callers must not change them after ``prepare``.
Hub names (not a local directory) are not memoised; transformers caches
their files itself.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# config.json fields that choose the tokenizer class when tokenizer_config.json does not
_CONFIG_FIELDS = ("model_type", "tokenizer_class")
# Not tokenizer files: weights, the model config (its fields above are), xcal's own stamps.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")
_CAPACITY = 4  # distinct tokenizers kept (a large vocabulary costs ~100 MB)

_memo: OrderedDict[tuple[str, bool, Any], Any] = OrderedDict()
_lock = threading.Lock()


def tokenizer_digest(source: str | Path) -> str | None:
    """SHA-256 over a local checkpoint's tokenizer files, or None for a hub name.

    Every regular file counts (name and bytes) except weights, ``config.json``
    and files named ``xcal_*``; of ``config.json`` only the fields that can
    choose the tokenizer class count. A file unknown to this rule makes two
    checkpoints differ, which errs on the side of a fresh load.
    """
    directory = Path(source)
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith("xcal_") or name.endswith(_WEIGHT_SUFFIXES):
            continue
        if name == "config.json":
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return None  # let the loader report it
            fields = {k: config.get(k) for k in _CONFIG_FIELDS} if isinstance(config, dict) else {}
            digest.update(f"config.json\0{json.dumps(fields, sort_keys=True)}\n".encode())
            continue
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def shared_tokenizer(
    source: str | Path,
    *,
    trust_remote_code: bool = False,
    prepare: Callable[[Any], None] | None = None,
) -> Any:
    """``AutoTokenizer.from_pretrained(source)``, shared between equal tokenizer files.

    Parameters
    ----------
    source : str or Path
        A local checkpoint directory (memoised) or a hub name (loaded each time).
    trust_remote_code : bool
        Passed to transformers; part of the key.
    prepare : callable, optional
        Run once on a fresh load (e.g. set the padding side); part of the key
        (the function itself), so differently prepared objects are never mixed.

    Returns
    -------
    PreTrainedTokenizerBase
        Shared with every other caller of the same files and ``prepare``:
        do not modify it.
    """
    from transformers import AutoTokenizer

    def load() -> Any:
        tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
        if prepare is not None:
            prepare(tokenizer)
        return tokenizer

    digest = tokenizer_digest(source)
    if digest is None:
        return load()
    key = (digest, trust_remote_code, prepare)
    with _lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    tokenizer = load()
    with _lock:
        _memo[key] = tokenizer
        while len(_memo) > _CAPACITY:
            _memo.popitem(last=False)
    return tokenizer


def clear_shared_tokenizers() -> None:
    """Forget every memoised tokenizer (tests; or to free their memory)."""
    with _lock:
        _memo.clear()
