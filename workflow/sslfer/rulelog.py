"""Logging for code run by a Snakemake rule: everything (logging, warnings, progress bars) to the rule log."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from .signals import sigterm_exits


@contextlib.contextmanager
def rule_log(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send logging and stderr (tqdm writes there) to ``path`` for the duration of the block.

    An exception is logged with its traceback before it propagates, so the rule log says what failed.
    SIGTERM (a cluster's time limit) is such an exception (:func:`sslfer.signals.sigterm_exits`): temporary
    files are removed on the way out.
    """
    logger = logging.getLogger("sslfer")
    if path is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_stderr = sys.stderr
        sys.stderr = fh
        try:
            with sigterm_exits():
                yield logger
        except BaseException:
            logger.exception("failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)
            root.setLevel(old_level)
