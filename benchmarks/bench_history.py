"""Publication history at scale: an annual flow table protected against its twelve months.

A synthetic source (fixed seeds): 12 monthly flow tables of region (3 oblasts x 5 districts,
3 levels) x citizenship (17) x sex x age group (4), 5,130 cells each, published one by one
(each month protected alone: months of a flow do not constrain each other), then the annual
table (the sum of the months) protected with ``published=`` all twelve: the joint system of
13 tables, the year = the sum of its months for every cell.

Prints, per method, one row of figures for the annual table's protection and the seconds of
each phase (wall clock and CPU time of this process: the machine is shared, so CPU seconds are
the comparable figure): linking the history and building the joint system, secondary suppression,
the release of wasted secondaries, the final attacker audit; and what the audit did (LPs solved,
components of the suppressed cells, the largest one, primaries checked). The monthly tables'
own protection is timed apart (it is not the history's cost). Results: results_history.md.

    .venv/bin/python benchmarks/bench_history.py [--secondary heuristic optimal] [--months 12]
                                                 [--cache DIR] [--profile FILE]

``--cache DIR`` keeps the months' published patterns in DIR (reused when the seeds and sizes
match), so repeated runs time only the annual table; ``--profile FILE`` writes a cProfile of the
annual protection and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import disclosure.audit as audit_mod  # noqa: E402
import disclosure.suppression as supp  # noqa: E402
from disclosure.history import PublishedTable  # noqa: E402
from disclosure.suppression import protect_suppression  # noqa: E402
from disclosure.table import read_cells  # noqa: E402
from publisher.specs import spec_from_mapping  # noqa: E402

OBLASTS = {f"O{i}": [f"O{i}D{j}" for j in range(1, 6)] for i in range(1, 4)}
REGION = {"_T": list(OBLASTS), **OBLASTS}
CITIZENSHIP = [f"C{i:02d}" for i in range(1, 18)]
SEX = ["F", "M"]
AGE = ["A0", "A1", "A2", "A3"]
LEAVES = [[d for ds in OBLASTS.values() for d in ds], CITIZENSHIP, SEX, AGE]
NAMES = ["region", "citizenship", "sex", "age"]


def spec(period: str, secondary: str, tid: str):  # noqa: ANN201
    return spec_from_mapping({
        "id": tid, "version": "1.0.0", "title": {"en": tid},
        "dimensions": [{"name": "region", "hierarchy": REGION},
                       {"name": "citizenship", "codes": CITIZENSHIP},
                       {"name": "sex", "codes": SEX}, {"name": "age", "codes": AGE}],
        "disclosure": {"min_frequency": 5, "secondary": secondary},
        "reference_period": period, "measure_type": "flow", "source_id": "bench-src"})


def month_counts(m: int) -> np.ndarray:
    rng = np.random.default_rng(1200 + m)
    n = int(np.prod([len(x) for x in LEAVES]))
    # about one inner cell in six is primary (1..4), a third are zeros
    base = rng.choice([0, 0, 0, 0, 1, 2, 3, 5, 6, 8, 10, 12, 15, 20, 30], size=n)
    big = rng.random(n) < 0.15
    return np.where(big, rng.integers(20, 120, size=n), base)


def table(counts: np.ndarray, period: str, secondary: str, tid: str):  # noqa: ANN201
    rows = list(itertools.product(*LEAVES))
    df = pd.DataFrame(rows, columns=NAMES)
    df["obs_value"] = [str(int(v)) for v in counts]
    return read_cells(df, spec(period, secondary, tid), source=tid)


# -- measuring the phases (wrappers installed for the run only) ----------------------------------

class Phases:
    """Wall and CPU seconds per phase of the annual protection, and LP counts."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.lps = 0

    def wrap(self, module, name: str, phase: str) -> None:  # noqa: ANN001
        fn = getattr(module, name)

        def timed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                self.wall[phase] += time.perf_counter() - w
                self.cpu[phase] += time.process_time() - c

        setattr(module, name, timed)
        self._undo.append((module, name, fn))

    @contextmanager
    def installed(self):  # noqa: ANN201
        import disclosure.history as hist
        import disclosure.secondary_optimal as opt

        self._undo: list = []
        self.wrap(hist, "link_history", "build")
        self.wrap(supp, "build_problem", "build")
        self.wrap(supp, "_in_reach", "build")
        self.wrap(supp, "_determined", "build")
        self.wrap(supp, "heuristic", "secondary")
        self.wrap(opt, "optimal", "secondary")
        self.wrap(supp, "wasted_secondaries", "wasted")
        self.wrap(supp, "audit", "audit")
        comp = audit_mod._Component
        solve, batch = comp.solve, comp.solve_batch
        counter = self

        def solve_counted(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            counter.lps += 1
            return solve(self, *a, **kw)

        def batch_counted(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            counter.lps += 2
            return batch(self, *a, **kw)

        comp.solve, comp.solve_batch = solve_counted, batch_counted
        try:
            yield self
        finally:
            comp.solve, comp.solve_batch = solve, batch
            for module, name, fn in reversed(self._undo):
                setattr(module, name, fn)


def months_published(months: list[np.ndarray], method: str, cache: Path | None
                     ) -> tuple[list[PublishedTable], float]:
    """The monthly tables as published (each protected alone), and the seconds that took."""
    tabs = [table(c, f"2024-{m + 1:02d}", method, f"flows-m{m + 1:02d}")
            for m, c in enumerate(months)]
    path = cache / f"bench_history_{method}_{len(months)}.npz" if cache else None
    t0 = time.perf_counter()
    if path is not None and path.exists():
        status = list(np.load(path)["status"])
        secs = float("nan")
    else:
        status = []
        for t in tabs:
            [pt] = protect_suppression([t])
            status.append(pt.published["conf_status"].astype(str).to_numpy())
        secs = time.perf_counter() - t0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, status=np.array(status, dtype="<U1"))
    return [PublishedTable(table=t, conf_status=s, source=t.spec.id)
            for t, s in zip(tabs, status, strict=True)], secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--secondary", nargs="+", default=["heuristic", "optimal"])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None)
    args = ap.parse_args()
    print(f"{args.months} monthly flow tables + the annual table, source bench-src\n")
    rows = []
    for method in args.secondary:
        months = [month_counts(m) for m in range(args.months)]
        pubs, months_s = months_published(months, method, args.cache)
        period = "2024" if args.months == 12 else f"2024-01/2024-{args.months:02d}"
        year = table(np.sum(months, axis=0), period, method, "flows-year")
        prof = cProfile.Profile() if args.profile else None
        with Phases().installed() as ph:
            t0, c0 = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            [pt] = protect_suppression([year], published=pubs)
            if prof:
                prof.disable()
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        r = pt.report
        a = r.audit
        ph_txt = {p: f"{ph.wall[p]:.1f} ({ph.cpu[p]:.1f})"
                  for p in ("build", "secondary", "wasted", "audit")}
        rows.append({
            "method": method, "cells (annual)": r.cells,
            "cells (joint)": year.n_cells * (1 + args.months),
            "primary": r.primary.cells, "secondary": r.secondary.cells,
            "seconds wall (cpu)": f"{secs:.1f} ({cpu:.1f})",
            **{f"{p}: s wall (cpu)": v for p, v in ph_txt.items()},
            "final audit: s (its own timer)": a.seconds,
            "LPs (all phases)": ph.lps, "LPs (audit)": a.lps,
            "audit": ("passed" if a.passed else "FAILED") + f", {a.exact} exact / {a.narrow} "
                     f"narrow ({a.mode})",
            "primaries checked (annual + months)":
                f"{a.primary_cells_checked} + {r.details.get('published_primaries_checked', 0)}",
            "components": a.components, "largest component": a.largest_component,
            "months: s (alone, each protected)": ("cached" if months_s != months_s
                                                 else round(months_s, 1)),
            "fallback": "; ".join(r.fallbacks)[:60] or "-",
        })
        print(pd.DataFrame(rows[-1:]).T.to_string(header=False), "\n", flush=True)
        if prof:
            prof.dump_stats(str(args.profile))
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    print(pd.DataFrame(rows).T.to_string(header=False))


if __name__ == "__main__":
    main()
