"""One writer per run directory: the run lock.

Every writer of a run directory (``tan train`` / ``train()``, ``tan evaluate`` /
``evaluate()``, each job of ``tan sweep``, the training notebook, a ``tan run`` folder)
holds an OS file lock on ``<dir>/.tan.lock`` for as long as it writes, through the
``filelock`` library (``flock`` on Linux and macOS), and records who it is (host, pid,
start time, command) in ``<dir>/.tan.lock.json``. A second writer is refused within
``LOCK_RETRY_S`` with ``RunDirBusyError`` naming the directory and that holder.

The OS drops the lock when the holding process ends, however it ends (SIGKILL, a crash,
a lost node), so a killed run never blocks its resume and nothing has to be removed by
hand; the holder file a killed process leaves behind is read only while the lock is
held, and the next holder overwrites it. ``.tan.lock`` itself is empty and stays in
place after release (removing it would let two writers lock two different files).

Within one process the lock is re-entrant: a sweep holds a job's lock and ``train``
takes it again; ``train`` holds it and its final ``evaluate`` takes it again.
``run_lock`` is the context manager; ``hold_run_lock`` takes the lock until the
enclosing ``holds_run_locks`` function returns or raises; ``run_lock_holder`` is the
readers' probe (reports skip runs being written).

This module imports neither torch nor pandas, so the pipeline and the reports use it
without loading the engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import json
import os
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import RunDirBusyError, RunDirError

LOCK_FILE = ".tan.lock"  # flock()ed by the writer; empty, stays in place after release
HOLDER_FILE = ".tan.lock.json"  # who holds the lock: host, pid, start time, command
LOCK_FILES = (LOCK_FILE, HOLDER_FILE)
# a contended lock is retried for this long before the writer is refused: long enough for a
# reader's momentary probe (run_lock_holder) to end, short enough to count as "at once"
LOCK_RETRY_S = 1.0


@dataclass
class _Held:
    lock: object | None  # the filelock.FileLock; None where the filesystem has no flock
    count: int
    pid: int
    path: Path
    holder: dict


_HELD: dict[str, _Held] = {}  # run directories this process holds, by real path
_HELD_GUARD = threading.RLock()
_SCOPE: contextvars.ContextVar = contextvars.ContextVar("tanlib_run_lock_scope", default=None)


def _key(run_dir: Path) -> str:
    return os.path.realpath(run_dir)


def read_lock_holder(run_dir: str | Path) -> dict:
    """What the holder recorded in ``.tan.lock.json`` ({} when absent or unreadable)."""
    try:
        holder = json.loads((Path(run_dir) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
    if not holder.get("pid"):
        return f"a process that left no readable {HOLDER_FILE}"
    text = f"pid {holder['pid']} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _busy(run_dir: Path, holder: dict) -> RunDirBusyError:
    return RunDirBusyError(
        f"run directory {run_dir} is being written by another process: {describe_holder(holder)}; "
        "wait for it to end, or stop it: its lock goes with it (a stopped training continues with --resume)",
        run_dir=str(run_dir),
        holder=holder,
    )


def _write_holder(run_dir: Path, holder: dict) -> None:
    """Record the holder beside the lock, atomically; best effort: the lock itself is what
    keeps a second writer out, this file only names the holder in the refusal."""
    target = run_dir / HOLDER_FILE
    tmp = run_dir / f".{HOLDER_FILE}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, (json.dumps(holder, indent=2) + "\n").encode())
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def acquire_run_lock(run_dir: str | Path) -> dict:
    """Take the lock of the existing folder ``run_dir`` (re-entrant within this process);
    return the holder record. Raises ``RunDirBusyError`` when another process holds it and
    ``RunDirError`` when the lock file cannot be created. Pair with ``release_run_lock``."""
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    key = _key(run_dir)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held.pid == os.getpid():
            held.count += 1
            return held.holder
        if not run_dir.is_dir():
            raise RunDirError(f"cannot lock run directory {run_dir}: it does not exist or is not a folder")
        lock = FileLock(run_dir / LOCK_FILE, thread_local=False, preserve_lock_file=True)
        try:
            lock.acquire(timeout=LOCK_RETRY_S, poll_interval=0.05)
        except Timeout:
            raise _busy(run_dir, read_lock_holder(run_dir)) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                raise RunDirError(
                    f"cannot lock run directory {run_dir}: {run_dir / LOCK_FILE}: {exc.strerror or exc}"
                ) from None
            warnings.warn(
                f"the filesystem of {run_dir} does not support file locks; a second writer to this "
                "run directory would not be detected",
                RuntimeWarning,
                stacklevel=2,
            )
            lock = None
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:300],
        }
        if lock is not None:
            _write_holder(run_dir, holder)
        _HELD[key] = _Held(lock=lock, count=1, pid=os.getpid(), path=run_dir, holder=holder)
        return holder


def release_run_lock(run_dir: str | Path) -> None:
    """Undo one ``acquire_run_lock``; the last one removes the holder file and unlocks."""
    key = _key(Path(run_dir))
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HELD[key]
        if held.lock is not None:
            with contextlib.suppress(OSError):
                (held.path / HOLDER_FILE).unlink()
            held.lock.release()


@contextlib.contextmanager
def run_lock(run_dir: str | Path, create: bool = False):
    """Hold ``run_dir``'s writer lock for the ``with`` block (``create``: make the folder
    first). Yields the holder record; raises ``RunDirBusyError`` when another process
    writes there."""
    run_dir = Path(run_dir)
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {run_dir}: {exc.strerror or exc}") from None
    holder = acquire_run_lock(run_dir)
    try:
        yield holder
    finally:
        release_run_lock(run_dir)


def holds_run_locks(fn):
    """Decorator: the run locks ``hold_run_lock`` takes while ``fn`` runs are released when
    ``fn`` returns or raises (``train`` and ``evaluate`` are decorated)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            token = _SCOPE.set(stack)
            try:
                return fn(*args, **kwargs)
            finally:
                _SCOPE.reset(token)

    return wrapper


def hold_run_lock(run_dir: str | Path) -> dict:
    """Take ``run_dir``'s lock until the enclosing ``holds_run_locks`` function ends (until
    the process exits when there is none); returns the holder record."""
    holder = acquire_run_lock(run_dir)
    stack = _SCOPE.get()
    if stack is not None:
        stack.callback(release_run_lock, Path(run_dir))
    return holder


def run_lock_holder(run_dir: str | Path) -> dict | None:
    """The holder record when some process (this one included) holds ``run_dir``'s lock,
    else None. A reader's probe: it never creates a lock file, and a lock it cannot open
    (read-only copy) counts as free."""
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    with _HELD_GUARD:
        held = _HELD.get(_key(run_dir))
        if held is not None and held.pid == os.getpid():
            return dict(held.holder)
    if not (run_dir / LOCK_FILE).is_file():
        return None
    probe = FileLock(run_dir / LOCK_FILE, thread_local=False, preserve_lock_file=True)
    try:
        probe.acquire(blocking=False)
    except Timeout:
        return read_lock_holder(run_dir)
    except OSError:
        return None
    probe.release()
    return None


def refuse_if_busy(run_dir: str | Path) -> None:
    """Raise ``RunDirBusyError`` when another process holds ``run_dir``'s lock (a lock this
    process holds is no reason to refuse: it is re-entrant)."""
    holder = run_lock_holder(run_dir)
    if holder is not None and holder.get("pid") != os.getpid():
        raise _busy(Path(run_dir), holder)


__all__ = [
    "HOLDER_FILE",
    "LOCK_FILE",
    "LOCK_FILES",
    "LOCK_RETRY_S",
    "acquire_run_lock",
    "describe_holder",
    "hold_run_lock",
    "holds_run_locks",
    "read_lock_holder",
    "refuse_if_busy",
    "release_run_lock",
    "run_lock",
    "run_lock_holder",
]
