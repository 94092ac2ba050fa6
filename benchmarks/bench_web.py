"""Web layer: time to render the review page, the public version page and the public cells API,
and to diff two versions, for tables of growing size.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_bench_dir(ap)
    bench = bench_dir(ap.parse_args().bench_dir)

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
