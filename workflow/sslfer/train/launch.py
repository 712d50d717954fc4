"""``torchrun … -m sslfer.train.launch job.json``: one DDP rank of a pretraining job (see :mod:`.run`)."""

from __future__ import annotations

import json
import logging
import sys

from .run import train

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with open(sys.argv[1]) as fh:
        train(json.load(fh))
