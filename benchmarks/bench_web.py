"""Web layer: the public explorer on a 500,000-cell table (pivot, filter, unfold, view downloads:
server-side time per request, the target is under 300 ms), then the review page, the public
version page and the public cells API, and the diff of two versions, for the bench tables.

Explorer part: a synthetic protected table of 221 regions (3 levels) x 45 citizenships x 17 age
groups x 3 sexes = 507,195 cells (some suppressed), stored as a published release; requests go
through the Flask test client, so the figures are the server's own time (routing, the view, the
HTML/CSV/JSON); the first request builds the version's cube from the stored CSV (reported apart).

The protected tables are the peers' published patterns from the bench tables (``--bench-dir DIR``,
else ``$ASHYQ_BENCH_DIR``, else ``../shared/bench`` next to the repository; see
``benchmarks/_bench.py``), so protection time, measured in bench_suppression.py, is not part of
these figures. Each release stores a complete typed suppression report of its pattern (counts
from the pattern, audit figures from peers.csv), so the review page renders the report's figures
as it does for a real release. Run:
    .venv/bin/python benchmarks/bench_web.py [--bench-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._bench import add_bench_dir, bench_dir  # noqa: E402
from disclosure.methods.suppression import (  # noqa: E402
    AuditResult,
    LevelParameters,
    PrimaryCells,
    SecondaryCells,
    SuppressedCells,
    SuppressionParameters,
    SuppressionReport,
)

CASES = [("synth_small", "tauargus-OPT.csv", "sdctable-OPT.csv"),
         ("synth_full", "tauargus-MOD.csv", "sdctable-HYPERCUBE.csv")]


def timed(fn, repeat: int = 3) -> float:  # noqa: ANN001
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def pattern_report(case_dir: Path, fname: str, spec: dict) -> dict:
    """The typed report (JSON form) of a peer's pattern: counts from the pattern, the attacker
    audit's figures from peers.csv (no intervals kept)."""
    import pandas as pd

    df = pd.read_csv(case_dir / fname, dtype=str, keep_default_na=False)
    count = {f: int((df["conf_status"] == f).sum()) for f in ("C", "D")}
    tool, method = fname.removesuffix(".csv").split("-", 1)
    peers = pd.read_csv(case_dir / "peers.csv")
    row = peers[peers["tool"].str.lower().str.replace("-", "").str.startswith(tool)
                & (peers["method"] == method)].iloc[0]
    exact = int(row["audit_exact"])
    narrow = int(row["audit_narrow"]) + exact  # ours counts exact cells as narrow too
    k = int(spec["disclosure"]["min_frequency"])
    rep = SuppressionReport(
        cells=len(df),
        parameters=SuppressionParameters(
            min_frequency=k, zero_policy="safe", secondary=f"{row['tool']} {method}",
            cost="value", protection_level=LevelParameters(kind="absolute", value=float(k)),
            time_limit=0.0, protection_rule="peer pattern (bench table)"),
        primary=PrimaryCells(cells=count["C"], by_rule={"frequency": count["C"]}),
        secondary=SecondaryCells(cells=count["D"], applied=True),
        suppressed=SuppressedCells(cells=count["C"] + count["D"]),
        by_dimension={},
        audit=AuditResult(
            passed=exact == narrow == int(row["audit_missed_primary"]) == 0,
            primary_cells_checked=count["C"], exact=exact, narrow=narrow, min_width=None,
            intervals=[], intervals_kind="not kept (figures from peers.csv)", mode="exact",
            components=0, largest_component=0, lps=0, seconds=0.0),
    )
    return rep.to_dict()


def synthetic_table(seed: int = 7) -> tuple[dict, bytes]:
    """A spec and a consistent protected CSV of 507,195 cells: every marginal, cells of 1-4
    persons primary (C), 3% of the others secondary (D)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    oblasts = ["10", "11", "15", "19", "23", "27", "31", "33", "35", "39", "43", "47", "55", "59",
               "61", "62", "63", "71", "75", "79"]
    hierarchy = {"_T": oblasts} | {o: [f"{o}{d:02d}" for d in range(1, 11)] for o in oblasts}
    cits = [f"C{i:02d}" for i in range(44)]
    ages = [f"A{i:02d}" for i in range(16)]
    sexes = ["F", "M"]
    inner = rng.poisson(6, size=(200, 44, 16, 2)).astype(np.int64)

    def with_totals(a, axis, groups):  # noqa: ANN001, ANN202 - [total, (group total, children)...]
        parts = [a.sum(axis=axis, keepdims=True)]
        if groups is None:
            parts.append(a)
        else:
            for g in range(groups):
                chunk = np.take(a, range(g * 10, g * 10 + 10), axis=axis)
                parts += [chunk.sum(axis=axis, keepdims=True), chunk]
        return np.concatenate(parts, axis=axis)

    full = with_totals(inner, 0, 20)
    for axis in (1, 2, 3):
        full = with_totals(full, axis, None)
    region_codes = ["_T"] + [c for o in oblasts for c in [o, *hierarchy[o]]]
    codes = [region_codes, ["_T", *cits], ["_T", *ages], ["_T", *sexes]]
    grids = np.meshgrid(*[np.arange(len(c)) for c in codes], indexing="ij")
    df = pd.DataFrame({name: np.array(c, dtype=object)[g.ravel()] for name, c, g in
                       zip(("region", "citizenship", "age", "sex"), codes, grids, strict=True)})
    values = full.ravel()
    conf = np.where((values > 0) & (values < 5), "C", "F").astype(object)
    conf[(conf == "F") & (rng.random(len(values)) < 0.03)] = "D"
    df["obs_value"] = np.where(conf == "F", values.astype(str), "")
    df["obs_status"] = np.where(conf == "F", "A", "Q")
    df["conf_status"] = conf
    spec = {"id": "bench-explorer", "version": "1.0.0",
            "title": {"kk": "Өнімділік кестесі", "ru": "Таблица для замеров", "en": "Benchmark table"},
            "reference_period": "2025",
            "dimensions": [{"name": "region", "hierarchy": hierarchy},
                           {"name": "citizenship", "codes": cits}, {"name": "age", "codes": ages},
                           {"name": "sex", "codes": sexes, "codelist": "sex"}],
            "disclosure": {"min_frequency": 5, "secondary": "heuristic"}}
    return spec, df.to_csv(index=False).encode()


def explorer_bench(repeat: int = 7) -> None:
    from publisher import explore as ex
    from publisher.app import create_app
    from publisher.db import make_engine, session_factory, transaction, upgrade
    from publisher.workflow_models import Release, User, utcnow

    t0 = time.perf_counter()
    spec, body = synthetic_table()
    made = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'explorer.db'}"
    upgrade(url)
    with transaction(session_factory(make_engine(url))) as s:
        users = [User(username=n, display_name=n, password_hash="", active=True)
                 for n in ("bench-prep", "bench-appr")]
        s.add_all(users)
        s.flush()
        s.add(Release(series=spec["id"], version="1.0.0", kind="initial", state="published",
                      title=spec["title"], spec=spec, upload_name="x", upload_sha256="",
                      content_rev=1, protected_csv=body, prepared_by_id=users[0].id,
                      approved_by_id=users[1].id, approved_rev=1, published_at=utcnow()))
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "HUEY_IMMEDIATE": True,
                      "WORK_DIR": str(tmp / "w"), "OUTPUT_DIR": str(tmp / "o")})
    c = app.test_client()
    base = f"/v/{spec['id']}/1.0.0"
    cells = body.count(b"\n") - 1
    print(f"explorer: {cells:,} cells, {len(body) / 1e6:.1f} MB protected CSV "
          f"(made in {made:.1f} s)")
    ex.CACHE.clear()
    t = time.perf_counter()
    assert c.get(f"{base}?lang=en").status_code == 200
    cold = time.perf_counter() - t
    ex.CACHE.clear()  # as another worker process or a restart: the arrays come from disk
    t = time.perf_counter()
    assert c.get(f"{base}?lang=en").status_code == 200
    warm_disk = time.perf_counter() - t
    cases = [
        ("default view (regions x sex)", f"{base}?lang=en", 200),
        ("pivot: citizenship x region, filter age, sex",
         f"{base}?rows=citizenship&cols=region&c.region=_T,10,11,15,19,23&c.age=A03&c.sex=F", 200),
        ("filter: 3 regions x 16 ages, sex=M",
         f"{base}?rows=age&cols=region&c.region=71,75,79&c.age=_T,{','.join(f'A{i:02d}' for i in range(16))}&c.sex=M", 200),
        ("unfold an oblast (districts)",
         f"{base}?rows=region&cols=sex&c.region=_T,10,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,11", 200),
        ("two row variables: region x age by sex (1,020 cells)",
         f"{base}?rows=region,age&cols=sex&c.region=_T,{','.join(['10','11','15','19','23','27','31','33','35','39','43','47','55','59','61','62','63','71','75','79'])}&c.age=_T,A00,A01,A02,A03,A04,A05,A06,A07,A08,A09,A10,A11,A12,A13,A14,A15", 200),
    ]
    all_regions = ",".join(synthetic_regions(spec))
    all_cits = "_T," + ",".join(spec["dimensions"][1]["codes"])
    big = f"rows=region&cols=citizenship&c.region={all_regions}&c.citizenship={all_cits}"
    cases += [("too large: 221 x 45 = 9,945 cells (message)", f"{base}?{big}", 200),
              ("view.json 221 regions x 45 citizenships", f"{base}/view.json?{big}", 200),
              ("view.csv 221 x 45", f"{base}/view.csv?{big}", 200),
              ("view.xlsx 221 x 45", f"{base}/view.xlsx?{big}", 200)]
    print(f"{'request':<56} {'median ms':>10} {'max ms':>8} {'bytes':>10}  < 300 ms")
    print(f"{'first request (builds the cube from the stored CSV)':<56} {cold * 1000:>10.0f} "
          f"{'':>8} {'':>10}  (once per version)")
    print(f"{'first request of another process (cube from its .npz)':<56} {warm_disk * 1000:>10.0f}")
    for label, path, status in cases:
        runs, size = [], 0
        for _ in range(repeat):
            t = time.perf_counter()
            r = c.get(path)
            runs.append(time.perf_counter() - t)
            assert r.status_code == status, (label, r.status_code)
            size = len(r.data)
        med = statistics.median(runs)
        print(f"{label:<56} {med * 1000:>10.1f} {max(runs) * 1000:>8.1f} {size:>10,}  "
              f"{'yes' if med < 0.3 else 'NO'}")
    cube = next(iter(ex.CACHE._items.values()))
    view = ex.parse_view(cube, {"rows": "region,age", "cols": "citizenship,sex"})
    t = time.perf_counter()
    for _ in range(20):
        ex.compute(cube, view)
    print(f"engine only: select {view.n_cells():,} cells of {cube.cells:,}: "
          f"{(time.perf_counter() - t) / 20 * 1000:.2f} ms; cube in memory "
          f"{cube.nbytes / 1e6:.1f} MB")


def synthetic_regions(spec: dict) -> list[str]:
    h = spec["dimensions"][0]["hierarchy"]
    return ["_T"] + [c for o in h["_T"] for c in [o, *h[o]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_bench_dir(ap)
    ap.add_argument("--explorer-only", action="store_true",
                    help="only the explorer part (no bench tables needed)")
    args = ap.parse_args()
    explorer_bench()
    if args.explorer_only:
        return
    bench = bench_dir(args.bench_dir)

    from publisher.app import create_app
    from publisher.db import make_engine, session_factory, transaction, upgrade
    from publisher.workflow_models import ApiToken, Release, User, utcnow

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    factory = session_factory(make_engine(url))
    with transaction(factory) as s:
        prep = User(username="prep", display_name="p", password_hash="", active=True)
        prep.set_password("prep-password")
        prep.set_roles(["preparer", "approver", "admin"])
        appr = User(username="appr", display_name="a", password_hash="", active=True)
        appr.set_password("appr-password")
        appr.set_roles(["approver"])
        s.add_all([prep, appr])
        s.flush()
        tok, clear = ApiToken.issue(prep, "bench")
        s.add(tok)
        ids = {}
        for case, first, second in CASES:
            spec = yaml.safe_load((bench / case / "spec.yaml").read_text("utf-8"))
            spec["id"] = case.replace("_", "-")
            prev = None
            for n, fname in enumerate((first, second)):
                body = (bench / case / fname).read_bytes()
                r = Release(series=spec["id"], version=f"1.{n}.0", kind="initial" if n == 0
                            else "revision", state="published", title={"en": case}, spec=spec,
                            upload_name="x", upload_sha256="", content_rev=1,
                            protected_csv=body,
                            report=pattern_report(bench / case, fname, spec),
                            prepared_by_id=prep.id, approved_by_id=appr.id, approved_rev=1,
                            approved_at=utcnow() - timedelta(days=2),
                            published_at=utcnow() - timedelta(days=1 - n),
                            previous_id=prev)
                s.add(r)
                s.flush()
                prev = r.id
            ids[case] = (prev, spec["id"], body.count(b"\n") - 1)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "HUEY_IMMEDIATE": True,
                      "WORK_DIR": str(tmp / "w"), "OUTPUT_DIR": str(tmp / "o")})
    c = app.test_client()
    c.post("/login", data={"username": "prep", "password": "prep-password"})
    app.config["WTF_CSRF_ENABLED"] = False
    c.post("/login", data={"username": "prep", "password": "prep-password"})
    hdr = {"Authorization": f"Bearer {clear}"}
    print(f"{'table':<12} {'cells':>7} {'review page s':>14} {'public page s':>14} "
          f"{'public cells API s':>19} {'diff API s':>11}")
    for case, (rid, series, cells) in ids.items():
        def review(rid=rid):  # noqa: ANN202
            r = c.get(f"/releases/{rid}")
            assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[-600:])

        def public(series=series):  # noqa: ANN202
            assert c.get(f"/v/{series}/1.1.0").status_code == 200

        def api_cells(series=series):  # noqa: ANN202
            assert c.get(f"/api/public/series/{series}/1.1.0/cells").status_code == 200

        def api_diff(rid=rid):  # noqa: ANN202
            assert c.get(f"/api/releases/{rid}/diff", headers=hdr).status_code == 200

        print(f"{case:<12} {cells:>7} {timed(review):>14.3f} {timed(public):>14.3f} "
              f"{timed(api_cells):>19.3f} {timed(api_diff):>11.3f}")


if __name__ == "__main__":
    main()
