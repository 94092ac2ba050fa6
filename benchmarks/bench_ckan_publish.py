"""Benchmark of publishing to the local CKAN 2.12 (scripts/ckan-local.sh): wall time of a first
publication (create private, upload every file, authorized read-back + sha256 of every download,
make public, anonymous read-back + sha256), of an idempotent re-run (nothing to do but verify),
by size of the data file.

    .venv/bin/python benchmarks/bench_ckan_publish.py [--sizes-kib 1 1024 8192] [--reps 1]

Needs the stack: it runs ``scripts/ckan-local.sh up`` (seconds when already up). Each package is
data/table.csv of the given size + datapackage.json + the zip (deflated, so smaller); every run
uses a fresh series, so it adds datasets to the local CKAN.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from ckan_testlib import ckan_up, make_package  # noqa: E402

from publisher.ckan import publish_package  # noqa: E402


def csv_of(kib: int) -> bytes:
    rows, out, i = [b"region,obs_value\n"], 17, 0
    while out < kib * 1024:
        line = f"R{i:07d},{(i * 7919) % 100000}\n".encode()
        rows.append(line)
        out += len(line)
        i += 1
    return b"".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-kib", type=int, nargs="+", default=[1, 1024, 8192])
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    env = ckan_up()
    url, token = env["CKAN_URL"], env["CKAN_API_TOKEN"]
    print(f"{'data file':>10} {'files':>5} {'bytes sent':>11} {'first publish s':>16} "
          f"{'re-run s':>9} {'MB/s (first)':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for kib in args.sizes_kib:
            data = csv_of(kib)
            firsts, reruns, sent, nfiles = [], [], 0, 0
            for rep in range(args.reps):
                where = Path(tmp) / f"{kib}-{rep}"
                where.mkdir()
                pkg = make_package(where, f"bench-{uuid.uuid4().hex[:8]}", "1.0.0", data)
                t0 = time.perf_counter()
                res = publish_package(pkg, url=url, token=token, organization="ashyq-bench")
                t1 = time.perf_counter()
                publish_package(pkg, url=url, token=token, organization="ashyq-bench")
                t2 = time.perf_counter()
                assert res.verified and res.public
                firsts.append(t1 - t0)
                reruns.append(t2 - t1)
                sent = sum(r.bytes for r in res.resources)
                nfiles = len(res.resources)
            first = statistics.median(firsts)
            print(f"{kib:>7} KiB {nfiles:>5} {sent:>11} {first:>16.2f} "
                  f"{statistics.median(reruns):>9.2f} {sent / first / 1e6:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
