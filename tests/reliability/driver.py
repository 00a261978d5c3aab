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
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path


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
        ckpt = importlib.import_module("tanlib.engine.checkpoint")  # save_checkpoint holds its own reference
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

        atomicio.atomic_write_bytes = ckpt.atomic_write_bytes = atomic_write_bytes
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


def main() -> int:
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit(__doc__)
    install(argv[0])
    from tanlib.cli import main as tan

    return tan(argv[2:])


if __name__ == "__main__":
    sys.exit(main())
