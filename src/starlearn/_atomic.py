"""Replacing files whole: write under a hidden temporary name in the same folder, then
rename, so that a reader or a kill never sees half a file (the archive runner's parts and
catalogues, training checkpoints, data sets, model files).

Files are given the mode a new file gets under the process umask (``0o666 & ~umask``:
``0o644`` under the usual umask ``0o022``, group-writable under ``0o002``), whatever mode
the library that wrote the temporary file chose (safetensors writes ``0o600``): model
folders and data sets are shared within a group. See :func:`share_mode`.

Temporary files are named ``.<name>.<host>.<pid>.tmp``. A write that fails removes its
temporary file; one left by a process that was killed is found and removed by the next
write of the same file on the same host (its process no longer runs), or by
:func:`remove_stale_temporaries` over a folder.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

_UMASK_LOCK = threading.Lock()

__all__ = ["as_os_error", "atomic_write", "check_writable", "file_mode", "process_alive",
           "remove_stale_temporaries", "share_mode", "temporary_name"]


def _host() -> str:
    return socket.gethostname().replace(".", "_") or "localhost"


def temporary_name(path: Path) -> Path:
    """``.<name>.<host>.<pid>.tmp`` beside ``path`` (the same file system, so the rename is
    atomic; host and process id keep concurrent writers apart and tell stale files from
    live ones)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.tmp")


def _umask() -> int:
    """The process umask: from ``/proc/self/status`` on Linux (reading it leaves it as it
    is), else by setting and restoring it (under a lock: ``os.umask`` has no read-only
    form)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The permission bits of a new file under the process umask, ``0o666 & ~umask``
    (``0o644`` under umask ``0o022``)."""
    return 0o666 & ~_umask()


def share_mode(path: Path) -> None:
    """Give the file ``path`` the mode of :func:`file_mode`: libraries that write files
    through a private temporary file (safetensors, ``tempfile.mkstemp``) leave ``0o600``,
    which keeps a model folder from the rest of the group."""
    os.chmod(path, file_mode())


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    return True


def _stale(tmp: Path, prefix: str) -> bool:
    """A temporary file of this host whose writing process has gone."""
    rest = tmp.name[len(prefix):-len(".tmp")]
    host, _, pid = rest.rpartition(".")
    return host == _host() and pid.isdigit() and not process_alive(int(pid))


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary files in ``folder`` (of the file ``name`` only, when given)
    that processes of this host left when they were killed; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(f".{name}.*.tmp" if name else ".*.tmp"):
        target = tmp.name[1:].rsplit(".", 3)[0] if name is None else name
        if _stale(tmp, f".{target}."):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` a temporary file, give it the mode of :func:`file_mode`, then move it
    to ``path``; on any failure (a full disk, an error in ``write``) the temporary file is
    removed and ``path`` is untouched."""
    path = Path(path)
    remove_stale_temporaries(path.parent, path.name)
    tmp = temporary_name(path)
    try:
        write(tmp)
        share_mode(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        system = as_os_error(err, path)
        if system is not None and system is not err:
            raise system from err
        raise


def as_os_error(err: BaseException, path: Path) -> OSError | None:
    """``err`` as the OSError it stands for: libraries that write files (safetensors,
    HDF5) wrap a full or read-only disk in their own exceptions ("... (os error 28)");
    None when it is not a system error."""
    import errno
    import re

    if isinstance(err, OSError) and err.errno is not None:
        return err
    text = str(err)
    match = re.search(r"os error (\d+)|errno\s*=\s*(\d+)", text)
    code = int(match.group(1) or match.group(2)) if match else None
    if code is None and "no space left" in text.lower():
        code = errno.ENOSPC
    if code is None and "read-only file system" in text.lower():
        code = errno.EROFS
    if code is None:
        return None
    return OSError(code, os.strerror(code), str(path))


def check_writable(path: Path, need_bytes: int = 0) -> None:
    """Refuse, before any work, to write ``path`` where it cannot be written: its folder
    missing, read-only or without permission, or with less than ``need_bytes`` free.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError (errno EROFS, ENOSPC)
        Naming the folder and the problem.
    """
    import errno
    import shutil

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the folder does not exist", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            read_only = False
        if read_only:
            raise OSError(errno.EROFS, "Read-only file system", str(folder))
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise OSError(errno.ENOSPC, f"No space left on device: {free / 1e6:.2f} MB free, "
                      f"about {need_bytes / 1e6:.2f} MB needed", str(folder))
