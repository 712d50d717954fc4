"""SIGTERM as an exception: a job killed by a time limit (SLURM sends SIGTERM first) unwinds its stack, so
every ``finally`` block and context manager removes its temporary files before the process exits with status
128 + 15 = 143. :func:`sslfer.rulelog.rule_log` installs it for every rule."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(SystemExit):
    """SIGTERM received: unwinds the stack (running ``finally`` blocks), then exits with 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return (f"terminated by {signal.Signals(self.signum).name} (e.g. a SLURM time limit); "
                "temporary files removed, outputs not written")


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)     # a second SIGTERM must not interrupt the clean-up
        raise Terminated(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
