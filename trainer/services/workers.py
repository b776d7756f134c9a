"""Who runs a piece of work, and when it is taken for dead: one rule for every record a worker
keeps "running" (fine-tuning runs here, judge runs in evalhub).

A worker writes ``worker_id()`` and a heartbeat time on the record while it works. The next
command or worker to start closes the records whose worker stopped: no heartbeat for
``ORPHAN_AFTER``, or a process on this host that is gone. Another host's process cannot be
seen from here, so there only the heartbeat counts.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

# Taken for dead after this long without a heartbeat. Training beats after every micro-batch and
# a judge after every answer, so only model loading or a very slow device comes near it.
ORPHAN_AFTER = timedelta(minutes=15)


def worker_id() -> str:
    """``host:pid`` of this process, which ``worker_stopped`` reads back."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_stopped(
    *, worker: str, last_seen: datetime, now: datetime, stale_after: timedelta = ORPHAN_AFTER
) -> bool:
    """True when the work ``worker`` reported on at ``last_seen`` is no longer being done."""
    return last_seen < now - stale_after or _process_gone(worker)


def _process_gone(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
