"""Publication history at scale: an annual flow table protected against its twelve months.

A synthetic source (fixed seeds): 12 monthly flow tables of region (3 oblasts x 5 districts,
3 levels) x citizenship (17) x sex x age group (4), 5,130 cells each, published one by one
(each month protected alone: months of a flow do not constrain each other), then the annual
table (the sum of the months) protected with ``published=`` all twelve: the joint system of
13 tables, the year = the sum of its months for every cell. Prints one row per method: cells,
primary, secondary, seconds, the audit result and its components.

    .venv/bin/python benchmarks/bench_history.py [--secondary heuristic optimal] [--months 12]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--secondary", nargs="+", default=["heuristic", "optimal"])
    ap.add_argument("--months", type=int, default=12)
    args = ap.parse_args()
    print(f"{args.months} monthly flow tables + the annual table, source bench-src\n")
    rows = []
    for method in args.secondary:
        months = [month_counts(m) for m in range(args.months)]
        t0 = time.perf_counter()
        pubs = []
        for m, c in enumerate(months):
            t = table(c, f"2024-{m + 1:02d}", method, f"flows-m{m + 1:02d}")
            [pt] = protect_suppression([t])
            pubs.append(PublishedTable(table=t, conf_status=pt.published["conf_status"]
                                       .astype(str).to_numpy(), source=t.spec.id))
        months_s = time.perf_counter() - t0
        period = "2024" if args.months == 12 else f"2024-01/2024-{args.months:02d}"
        year = table(np.sum(months, axis=0), period, method, "flows-year")
        t0 = time.perf_counter()
        [pt] = protect_suppression([year], published=pubs)
        secs = time.perf_counter() - t0
        r = pt.report
        a = r.audit
        rows.append({
            "method": method, "cells (annual)": r.cells,
            "cells (joint)": year.n_cells * (1 + args.months),
            "primary": r.primary.cells, "secondary": r.secondary.cells,
            "seconds": round(secs, 1), "months: seconds (alone)": round(months_s, 1),
            "audit": ("passed" if a.passed else "FAILED") + f", {a.exact} exact / {a.narrow} "
                     f"narrow ({a.mode})",
            "primaries checked (annual + months)":
                f"{a.primary_cells_checked} + {r.details.get('published_primaries_checked', 0)}",
            "components": a.components, "largest component": a.largest_component,
            "fallback": "; ".join(r.fallbacks)[:60] or "-",
        })
        print(pd.DataFrame(rows[-1:]).T.to_string(header=False), "\n", flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
