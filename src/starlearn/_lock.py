"""Advisory locks on outputs: one run at a time writes a catalogue, a data set, a model
folder or a run folder.

The lock is a small file ``.<name>.lock`` beside the thing it guards, created atomically
(``O_CREAT | O_EXCL``) and holding the owner's host, process id, start time and command.
A second run on the same output stops at once with :class:`LockedError` naming the owner.
A lock whose owner has gone (same host, process not running) is stale: it is replaced
and the run goes on. A lock of another host cannot be checked and is reported as held.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlearn._atomic import process_alive
from starlearn.errors import InputError

__all__ = ["LockedError", "lock_path", "output_lock"]


class LockedError(InputError, FileExistsError):
    """Another run holds the lock on an output."""


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``.<name>.lock`` in the same folder."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _owner() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
            "command": " ".join(os.path.basename(a) if i == 0 else a
                                for i, a in enumerate(sys.argv))[:500]}


def _read_owner(path: Path) -> dict[str, object] | None:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict):
        return record
    # being written this instant, or left empty by a kill right after creating it
    try:
        return {"unreadable_since": path.stat().st_mtime}
    except OSError:
        return None


def _is_stale(owner: dict[str, object]) -> bool:
    since = owner.get("unreadable_since")
    if isinstance(since, float):
        return time.time() - since > 30.0
    pid = owner.get("pid")
    return (owner.get("host") == socket.gethostname() and isinstance(pid, int)
            and not process_alive(pid))


def _describe(target: Path, path: Path, owner: dict[str, object]) -> str:
    started = owner.get("started")
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
            if isinstance(started, (int, float)) else "an unknown time")
    return (f"{target} is in use by another starlearn run (process {owner.get('pid', '?')} "
            f"on {owner.get('host', '?')}, since {when}: {owner.get('command', '?')}); wait "
            f"for it to finish, or if that run is gone, remove {path}")


@contextmanager
def output_lock(target: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of ``target`` (a file or folder, existing or not) for the block.

    Raises
    ------
    LockedError
        When a live run (or a run on another host) holds it.
    """
    target = Path(target)
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_owner(path)
            if owner is None:
                continue  # released meanwhile: try again
            if _is_stale(owner):
                path.unlink(missing_ok=True)
                continue
            raise LockedError(_describe(target, path, owner)) from None
        with os.fdopen(fd, "w") as f:
            json.dump(_owner(), f)
        break
    else:  # pragma: no cover - a lock changing hands three times in a row
        raise LockedError(_describe(target, path, _read_owner(path) or {}))
    try:
        yield path
    finally:
        owner = _read_owner(path)
        if owner and owner.get("pid") == os.getpid() and owner.get(
                "host") == socket.gethostname():
            path.unlink(missing_ok=True)
