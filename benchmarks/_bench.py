"""Where the benchmarks find the bench tables: one lookup shared by every benchmark.

The bench tables (one folder per table: ``spec.yaml``, ``inner.csv``, ``truth.csv``, ``peers.csv``
and the peers' suppression patterns ``sdctable-<METHOD>.csv`` / ``tauargus-<METHOD>.csv``) are not
part of this repository. A benchmark finds them, in this order, at

1. ``--bench-dir DIR`` on its command line,
2. the environment variable ``ASHYQ_BENCH_DIR``,
3. ``../shared/bench`` next to the repository root (the default).

A missing folder stops the benchmark with one line on stderr saying how to point it at the tables.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = "ASHYQ_BENCH_DIR"
DEFAULT = ROOT.parent / "shared" / "bench"


def add_bench_dir(ap: argparse.ArgumentParser, *aliases: str) -> None:
    """Add ``--bench-dir DIR`` (and any older spellings in ``aliases``) to a parser."""
    ap.add_argument("--bench-dir", *aliases, dest="bench_dir", type=Path, metavar="DIR",
                    default=None,
                    help=f"folder of the bench tables (default: ${ENV}, else {DEFAULT})")


def bench_dir(given: Path | str | None = None) -> Path:
    """The bench-table folder: ``given``, else $ASHYQ_BENCH_DIR, else ../shared/bench.

    Exits with a one-line message on stderr when that folder does not exist.
    """
    if given:
        where, how = Path(given), "--bench-dir"
    elif os.environ.get(ENV):
        where, how = Path(os.environ[ENV]), f"${ENV}"
    else:
        where, how = DEFAULT, "the default"
    if not where.is_dir():
        sys.exit(f"error: bench tables not found at {where} ({how}); point the benchmark at the "
                 f"folder holding ex_vignette/, synth_small/, synth_full/ ... with --bench-dir DIR "
                 f"or {ENV}=DIR")
    return where
