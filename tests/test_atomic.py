"""Atomic file writes (xcal.atomic): a failed write leaves the old file and no temporary file."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from xcal import atomic
from xcal.atomic import atomic_write_bytes, atomic_write_text


def _disk_full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _old_file(tmp_path: Path) -> Path:
    target = tmp_path / "report.json"
    target.write_bytes(b'{"old": true}')
    return target


def _assert_untouched(target: Path) -> None:
    assert target.read_bytes() == b'{"old": true}'
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp file


def test_write_replaces_the_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = _old_file(tmp_path)
    assert atomic_write_text(target, "new") == target
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_write_that_fails_halfway_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _old_file(tmp_path)
    real_fdopen = os.fdopen

    class HalfWritten:
        """A file whose write puts half the bytes down, then finds the disk full."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> HalfWritten:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            _disk_full()
            return 0  # not reached

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    monkeypatch.setattr(atomic.os, "fdopen", lambda *a, **k: HalfWritten(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b'{"new": "a longer content than before"}')
    _assert_untouched(target)


def test_a_failed_flush_to_disk_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By the time fsync runs the bytes are written: only a temporary file may hold them.
    target = _old_file(tmp_path)
    monkeypatch.setattr(atomic.os, "fsync", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b'{"new": 1}')
    _assert_untouched(target)


def test_a_failed_rename_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _old_file(tmp_path)
    monkeypatch.setattr(atomic.os, "replace", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b'{"new": 1}')
    _assert_untouched(target)


def test_an_interrupt_during_the_write_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C is a BaseException, not an Exception: the cleanup must still run.
    target = _old_file(tmp_path)

    def interrupt(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b'{"new": 1}')
    _assert_untouched(target)


def test_a_new_file_that_fails_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic.os, "replace", _disk_full)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "sub" / "new.txt", b"x")
    assert list((tmp_path / "sub").iterdir()) == []
