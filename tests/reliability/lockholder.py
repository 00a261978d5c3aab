"""Another writer, for the concurrency cases: hold a run directory's lock in a separate
process until told to stop, or until killed.

    python tests/reliability/lockholder.py RUN_DIR SYNC_DIR

takes ``tanlib.runlock.run_lock(RUN_DIR, create=True)``, writes ``SYNC_DIR/ready`` (its
pid), then waits until ``SYNC_DIR/go`` exists (at most 10 minutes) and releases the lock.
It imports only ``tanlib.runlock``, so it starts in well under a second.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    run_dir, sync = Path(sys.argv[1]), Path(sys.argv[2])
    from tanlib.runlock import run_lock

    with run_lock(run_dir, create=True):
        (sync / "ready").write_text(str(os.getpid()))
        deadline = time.monotonic() + 600
        while not (sync / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
