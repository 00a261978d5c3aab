"""Fault-injection driver: run a ``tan`` command and SIGKILL this very process at a
chosen point, the way a killed job (OOM killer, pre-empted node, ``kill -9``) dies.

    python tests/reliability/driver.py KILLSPEC -- <tan arguments>

KILLSPEC is one of

* ``step:E:S``    -- at training step S of epoch E, before the optimiser step (mid-epoch);
* ``write:NAME:N`` -- during the N-th atomic write of the run file NAME (e.g. last.pt): half
  of the bytes are written to the temporary file, flushed, then the process dies, as a kill
  in the middle of ``atomic_write_bytes`` would leave it;
* ``finish:N``    -- at the N-th run's final metrics step, i.e. after the test evaluations
  have written metrics.json with results but before the run's summary is added.

or, instead of a kill, a pause:

* ``hold:E:S:DIR`` -- at training step S of epoch E, write ``DIR/ready`` (this process's
  pid) and wait until ``DIR/go`` exists (at most 10 minutes), then go on: a writer caught
  in the middle of its run, for the concurrent-writer cases.

Nothing else is changed: the command runs the real ``tanlib.cli.main``.

The tests start it with ``start`` / ``run`` below, not as ``python driver.py``: each
command is a fresh process forked from a server that has imported tanlib, torch and
torchvision once (``multiprocessing``'s forkserver, one per pytest worker), so it is
SIGKILLed and leaves its files exactly as a ``tan`` command would, without spending
seconds importing torch first. Its stdout goes to /dev/null, its stderr to a log file.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

#: what the fork server imports before forking a driven command
PRELOAD = ["driver", "tanlib.cli", "tanlib.engine.train", "tanlib.engine.evaluate", "tanlib.pipeline", "torchvision"]


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    kind, *args = spec.split(":")
    if kind in ("step", "hold"):  # through train()'s on_step hook (docs/training.md)
        import functools
        import time

        train_mod = importlib.import_module("tanlib.engine.train")
        target = (int(args[0]), int(args[1]))
        sync = Path(":".join(args[2:])) if kind == "hold" else None

        def on_step(epoch, step, out, labels):
            if (epoch, step) == target:
                if sync is None:
                    die()
                (sync / "ready").write_text(str(os.getpid()))
                deadline = time.monotonic() + 600
                while not (sync / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            return None

        train_mod.train = functools.partial(train_mod.train, on_step=on_step)
    elif kind == "write":
        atomicio = importlib.import_module("tanlib.atomicio")
        name, nth = args[0], int(args[1])
        real = atomicio.atomic_write_bytes
        seen = {"n": 0}

        def atomic_write_bytes(path, data):
            path = Path(path)
            if path.name == name:
                seen["n"] += 1
                if seen["n"] == nth:
                    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                    with open(tmp, "wb") as f:
                        f.write(data[: len(data) // 2])
                        f.flush()
                        os.fsync(f.fileno())
                    die()
            return real(path, data)

        importlib.import_module("tanlib.engine.checkpoint")  # save_checkpoint holds its own reference
        for module in [m for name, m in sys.modules.items() if name.startswith("tanlib")]:
            if getattr(module, "atomic_write_bytes", None) is real:  # every module holding a reference
                module.atomic_write_bytes = atomic_write_bytes
    elif kind == "finish":
        train_mod = importlib.import_module("tanlib.engine.train")
        nth = int(args[0])
        real = train_mod._finish_metrics
        seen = {"n": 0}

        def finish(*a, **k):
            seen["n"] += 1
            if seen["n"] == nth:
                die()
            return real(*a, **k)

        train_mod._finish_metrics = finish
    else:
        raise SystemExit(f"driver: unknown kill point {spec!r}")


class Driven:
    """A driven command started by ``start``, with the parts of ``subprocess.Popen`` the
    tests use: ``pid``, ``poll()``, ``returncode`` (-9 after a SIGKILL), ``wait()``,
    ``send_signal()``."""

    def __init__(self, spec: str, args: list, log: Path):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # read once, when the server starts
        self._proc = ctx.Process(target=_child, args=(spec, [str(a) for a in args], str(log)))
        self._proc.start()
        self.pid = self._proc.pid

    def poll(self):
        return self._proc.exitcode

    @property
    def returncode(self):
        return self._proc.exitcode

    def wait(self, timeout=None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired(f"driver pid {self.pid}", timeout)
        return self._proc.exitcode

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)


def start(spec: str, args: list, log: Path) -> Driven:
    """Start ``tan ARGS`` with the kill point or pause ``spec``; its stderr goes to ``log``."""
    return Driven(spec, args, log)


def run(spec: str, args: list, log: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``start`` and wait: the return code (-9 when killed) and the stderr text."""
    proc = start(spec, args, log)
    try:
        rc = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    return subprocess.CompletedProcess(["tan", *map(str, args)], rc, "", Path(log).read_text())


def _child(spec: str, args: list[str], log: str) -> None:
    """The forked process: stdout to /dev/null, stderr to ``log``, then the command."""
    for fd, target in ((1, os.devnull), (2, log)):
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, fd)
        os.close(out)
    install(spec)
    from tanlib.cli import main as tan

    code = tan(args)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def main() -> int:
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit(__doc__)
    install(argv[0])
    from tanlib.cli import main as tan

    return tan(argv[2:])


if __name__ == "__main__":
    sys.exit(main())
