"""Imported once by the forkserver that starts `workers.ParsePool`'s processes (issue 15,
memory): the parsing modules and the language model are loaded there, before any worker is
forked, so every worker shares them copy-on-write instead of loading its own copy (the model
is ~86 MB of numpy arrays whose pages no worker writes).

Not meant to be imported anywhere else: importing it loads the model (about a second).
"""

from __future__ import annotations

import gc
import logging
import os

# One BLAS thread per worker: the workers are the parallelism (one per core), and a process
# with fewer threads forks more safely. Effective when numpy is first imported here (by the
# model); when the CLI was preloaded first it already started OpenBLAS's threads, which
# OpenBLAS stops and restarts around fork itself (pthread_atfork).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Everything a worker's `workers.process` imports, so that no worker imports it again.
from . import language, normalise, parse, text, workers  # noqa: F401

# The title-key table (`text.normalise_title`'s, made on first use) made here, shared by all.
text.normalise_title("")

try:
    language.warm()
except Exception:  # pragma: no cover - each worker then loads the model itself, as before
    logging.getLogger("aggregator.workers").exception("could not preload the language model")

# Objects created so far are never collected: the collector then leaves their headers alone
# in the workers, so the pages holding them stay shared (Python docs, gc.freeze).
gc.freeze()
