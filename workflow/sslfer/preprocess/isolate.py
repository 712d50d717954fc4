"""Run a shard's videos one at a time so that one bad video never costs the others.

A *work* function maps a task (one video) to an iterator of picklable results (its frames). Two runners:

- :class:`InProcess`: the work runs here; an exception becomes :class:`ItemFailed` (``video_error``).
- :class:`Watchdog`: the work runs in a forked child process that streams results back through a pipe.
  A task without its last result within ``timeout_s`` seconds gets the child killed (SIGKILL, which
  also stops a hang inside C code, where no Python signal handler runs) and becomes :class:`ItemFailed`
  (``timeout``); a child that dies (a segfault in a C library, the OOM killer) becomes ``video_error``;
  either way a fresh child takes the next task. The child's models are loaded after the fork (no thread
  pool of the parent is inherited in use), it ignores SIGTERM/SIGINT (the parent, which owns the
  temporary files, handles them and kills it) and dies with the parent (``PR_SET_PDEATHSIG``). Like torch's
own DataLoader workers, the child sets torch to one thread before anything else: a forked child that enters
an OpenMP pool its parent had already started hangs (seen with the FAN backend after the parent ran torch).

Results do not depend on the runner: the same code computes them, only in another process.
:func:`sslfer.signals.sigterm_exits` turns SIGTERM (a SLURM time limit) into an exception, so ``finally``
blocks remove temporary files before the process exits with status 143.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

Work = Callable[[Any], Iterator[Any]]
#: Builds the work function (loads the models); runs once per (re)started child.
Setup = Callable[[], Work]


class ItemFailed(Exception):
    """A task without a complete result: ``status`` (``video_error``/``timeout``), a message that does not
    depend on timing, and ``done``, the results received before it failed."""

    def __init__(self, status: str, message: str, done: int = 0) -> None:
        super().__init__(message)
        self.status, self.message, self.done = status, message, done


class WorkError(Exception):
    """Raised by a work function with a complete message (e.g. naming the stage that failed)."""


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, WorkError) else describe(exc)


class InProcess:
    """Runs the work here, in this process (no time limit)."""

    def __init__(self, setup: Setup) -> None:
        self._work = setup()

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def results(self, task: Any) -> Iterator[Any]:
        """The task's results; :class:`ItemFailed` when the work raises."""
        done = 0
        try:
            for out in self._work(task):
                yield out
                done += 1
        except Exception as exc:  # noqa: BLE001 - one task's failure is recorded, the others go on
            raise ItemFailed("video_error", _message(exc), done) from exc


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (best effort; other systems: no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:           # the parent died before prctl took effect
        os._exit(1)


def _child(conn: Any, setup: Setup) -> None:
    """The child's loop: load the models, then run each task received, streaming its results back."""
    parent = os.getppid()          # the shard process
    if "torch" in sys.modules:     # as torch's own DataLoader workers: a forked child whose parent ran torch's
        sys.modules["torch"].set_num_threads(1)   # OpenMP pool must not enter it (it hangs); shards are 1-core
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    try:
        work = setup()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            conn.send(("fatal", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle goes as text
            conn.send(("fatal", RuntimeError(describe(exc))))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            for out in work(task):
                conn.send(("item", out))
        except Exception as exc:  # noqa: BLE001 - one task's failure is reported, the next task runs
            conn.send(("error", _message(exc)))
            continue
        conn.send(("done", None))


class Watchdog:
    """Runs the work in a child process, killing and restarting it when a task passes ``timeout_s``."""

    def __init__(self, setup: Setup, timeout_s: float, name: str = "preprocess worker") -> None:
        self.setup, self.timeout_s, self.name = setup, float(timeout_s), name
        self._proc: Any = None
        self._conn: Any = None
        self._ctx = mp.get_context("fork")      # the child inherits the loaded code; models load after the fork

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        if exc_type is None:
            self.close()
        else:                       # SIGTERM, Ctrl-C, an error here: no waiting for the child
            self._kill()

    def _start(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_child, args=(child_conn, self.setup), name=self.name, daemon=True)
        proc.start()
        child_conn.close()
        self._proc, self._conn = proc, parent_conn
        # loading the models is not part of any video's time, but must not hang forever either
        if not parent_conn.poll(max(self.timeout_s, 60.0)):
            self._kill()
            raise RuntimeError(f"{self.name} did not start within {max(self.timeout_s, 60.0):g} s")
        try:
            kind, payload = parent_conn.recv()
        except EOFError:
            code = self._kill()
            raise RuntimeError(f"{self.name} died while loading its models ({_exit_reason(code)})") from None
        if kind == "fatal":
            self._kill()
            raise payload

    def _kill(self) -> int | None:
        """Kill the child (if any) and return its exit code."""
        proc, self._proc = self._proc, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None:
            return None
        if proc.is_alive():
            proc.kill()
        proc.join(10.0)                    # a child in uninterruptible I/O may not die at once: never block on it
        if proc.is_alive():
            log.warning("%s (pid %s) did not exit 10 s after SIGKILL; left to the kernel", self.name, proc.pid)
        return proc.exitcode

    def close(self) -> None:
        """Stop the child: politely (end of tasks) when idle, else by SIGKILL."""
        if self._proc is not None and self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(5.0)
        self._kill()

    def results(self, task: Any) -> Iterator[Any]:
        """The task's results, streamed from the child; :class:`ItemFailed` on an error, timeout or crash."""
        if self._proc is not None and not self._proc.is_alive():
            self._kill()                   # died between two tasks (e.g. the OOM killer): a fresh one takes this
        if self._proc is None:
            self._start()
        conn = self._conn
        try:
            conn.send(task)
        except OSError:                    # it died just now: once more with a fresh child
            self._kill()
            self._start()
            conn = self._conn
            conn.send(task)
        deadline = time.monotonic() + self.timeout_s
        done, in_sync = 0, False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not conn.poll(remaining):
                    self._kill()
                    raise ItemFailed("timeout", f"not finished within preprocess.video_timeout_s = "
                                                f"{self.timeout_s:g} s; worker killed, video skipped", done)
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    code = self._kill()
                    raise ItemFailed("video_error", f"worker process died ({_exit_reason(code)})", done) from None
                if kind == "item":
                    yield payload
                    done += 1
                    continue
                in_sync = True          # the child finished the task and waits for the next
                if kind == "done":
                    return
                raise ItemFailed("video_error", payload, done)
        finally:
            if not in_sync and self._proc is not None:     # abandoned mid-task: the child's stream is stale
                self._kill()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
