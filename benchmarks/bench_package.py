"""Benchmark of building a data package: seconds per phase and zip size, by table size.

    .venv/bin/python benchmarks/bench_package.py [--max-cells 300000] [--bench-dir DIR]

Tables: ``synth_small`` and ``synth_full`` from the bench tables (``--bench-dir DIR``, else
``$ASHYQ_BENCH_DIR``, else ``../shared/bench`` next to the repository; see
``benchmarks/_bench.py``) with tau-Argus' published suppression pattern (codes as labels: those
specs carry no code lists), and synthetic tables of growing size (region hierarchy x citizenship
x age x sex, counts drawn at random, cells below 5 marked primary ``C``; no secondary suppression:
packaging does not protect, it checks and writes).
Phases (``PackageResult.timings``): check = read + check the protected CSV (flags,
confidentiality, every cell, additivity of free relations) + metadata + code lists; csv = data
and code-list files + schema; xlsx = three XLSX (kk/ru/en); jsonstat = three JSON-stat files;
validate = frictionless over the whole package (hashes, types, keys, foreign keys) + the
confidentiality row rule; zip = the reproducible zip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._bench import add_bench_dir, bench_dir  # noqa: E402
from datapackages import package_table  # noqa: E402
from disclosure.protect import published_frame  # noqa: E402
from disclosure.table import read_cells  # noqa: E402
from publisher.settings import config_path  # noqa: E402
from publisher.specs import load_spec, spec_from_mapping  # noqa: E402

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
PHASES = ("check", "csv", "xlsx", "jsonstat", "validate", "zip")


def shared_table(bench: Path, name: str, work: Path) -> tuple[object, Path] | None:
    d = bench / name
    pattern = d / "tauargus-MOD.csv"
    if not pattern.is_file():
        return None
    spec = load_spec(d / "spec.yaml")
    df = pd.read_csv(pattern, dtype=str, keep_default_na=False)
    df["obs_status"] = np.where(df["conf_status"] == "F", "A", "Q")
    dims = list(spec.dimension_names)
    df = df[[*dims, "obs_value", "obs_status", "conf_status"]]
    out = work / f"{name}.csv"
    df.to_csv(out, index=False)
    return spec, out


def synthetic_table(oblasts: int, districts: int, countries: int, work: Path,
                    seed: int = 1) -> tuple[object, Path]:
    hier = {"_T": [f"R{i:02d}" for i in range(1, oblasts + 1)]}
    for i in range(1, oblasts + 1):
        hier[f"R{i:02d}"] = [f"R{i:02d}D{j:02d}" for j in range(1, districts + 1)]
    spec = spec_from_mapping({
        "id": f"synthetic-{oblasts}x{districts}x{countries}",
        "title": {"kk": "Синтетикалық кесте", "ru": "Синтетическая таблица",
                  "en": "Synthetic table"},
        "dimensions": [
            {"name": "region", "hierarchy": hier},
            {"name": "citizenship", "codes": [f"C{k:03d}" for k in range(countries)]},
            {"name": "age", "codes": ["Y0T4", "Y5T9", "Y10T14", "Y15T17"]},
            {"name": "sex", "codelist": "sex", "codes": ["F", "M"]},
        ],
        "disclosure": {"min_frequency": 5},
    })
    rng = np.random.default_rng(seed)
    leaves = [c for c in spec.dimensions[0].hierarchy.leaves]
    idx = pd.MultiIndex.from_product([leaves, spec.dimensions[1].hierarchy.leaves,
                                      spec.dimensions[2].hierarchy.leaves, ["F", "M"]],
                                     names=list(spec.dimension_names))
    df = idx.to_frame(index=False)
    df["obs_value"] = rng.negative_binomial(0.6, 0.6 / (0.6 + 12), size=len(df))
    table = read_cells(df, spec)
    conf = np.where((table.values > 0) & (table.values < 5), "C", "F").astype(object)
    out = work / f"{spec.id}.csv"
    published_frame(table, conf).to_csv(out, index=False)
    return spec, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-cells", type=int, default=300_000)
    add_bench_dir(ap)
    args = ap.parse_args()
    bench = bench_dir(args.bench_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = []
        for name in ("synth_small", "synth_full"):
            t = shared_table(bench, name, work)
            if t is not None:
                cases.append((name, *t))
        for o, d, c in ((6, 7, 20), (17, 9, 40), (17, 9, 120)):
            spec, path = synthetic_table(o, d, c, work)
            cases.append((spec.id, spec, path))
        head = f"{'table':<26}{'cells':>9}" + "".join(f"{p:>10}" for p in PHASES) + \
            f"{'total s':>10}{'zip MB':>9}"
        print(head)
        print("-" * len(head))
        for name, spec, path in cases:
            n = int(np.prod([len(d.hierarchy.codes) for d in spec.dimensions]))
            if n > args.max_cells:
                continue
            t = time.perf_counter()
            res = package_table(spec, path, work / "out" / name, created=CREATED,
                                codelist_dir=config_path("codelists"))
            total = time.perf_counter() - t
            mb = res.zip_path.stat().st_size / 2**20
            print(f"{name:<26}{n:>9,}" + "".join(f"{res.timings.get(p, 0):>10.2f}"
                                                 for p in PHASES) + f"{total:>10.2f}{mb:>9.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
