"""Bounded load test of the web app under gunicorn: the public version page, the public cells
API (the whole table, and a page of 100 cells) and /healthz, optionally while a protection runs
beside it (a CPU-bound ``publisher protect`` of the shipped sample in a loop, as the worker would
run one).

It protects ``config/sample/children.yaml`` once, stores the result as a published release in a
fresh SQLite store, starts ``gunicorn -w 2 --threads 4`` (the deployment the issue measured) on a
free loopback port, and sends requests from ``--clients`` threads with keep-alive connections for
``--seconds`` per endpoint (at most ``--max-requests``). It prints requests per second and the
50th / 95th percentile latency per endpoint. Nothing outside a temporary folder is written.

    .venv/bin/python benchmarks/bench_load.py [--seconds 5] [--clients 8] [--no-protection]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "config" / "sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_spec(tmp: Path) -> Path:
    """The sample's spec with the heuristic secondary suppression (quicker than optimal)."""
    import yaml

    spec = yaml.safe_load((SAMPLE / "children.yaml").read_text("utf-8"))
    spec["disclosure"]["secondary"] = "heuristic"
    path = tmp / "children.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    return path


def protect_cmd(tmp: Path, out: Path, *extra: str) -> list[str]:
    return [str(BIN / "publisher"), "protect", str(sample_spec(tmp)), str(SAMPLE / "children.csv"),
            "-o", str(out), *extra]


def protect_sample(tmp: Path) -> tuple[dict, bytes, dict]:
    import yaml

    out, rep = tmp / "children.protected.csv", tmp / "children.report.json"
    t = time.perf_counter()
    subprocess.run(protect_cmd(tmp, out, "--report", str(rep)), check=True, capture_output=True,
                   env={**os.environ, "ASHYQ_DATABASE_URL": f"sqlite:///{tmp / 'cli.db'}"})
    print(f"protected the sample (children, heuristic) in {time.perf_counter() - t:.1f} s",
          file=sys.stderr)
    spec = yaml.safe_load((tmp / "children.yaml").read_text("utf-8"))
    return spec, out.read_bytes(), json.loads(rep.read_text("utf-8"))


def published_store(tmp: Path) -> tuple[str, str, str]:
    """A store holding one published release of the sample; returns (url, series, version)."""
    from publisher.db import make_engine, session_factory, transaction, upgrade
    from publisher.workflow_models import Release, User, utcnow

    spec, body, report = protect_sample(tmp)
    url = f"sqlite:///{tmp / 'load.db'}"
    upgrade(url)
    engine = make_engine(url)
    version = str(spec.get("version") or "1.0.0")
    with transaction(session_factory(engine)) as s:
        users = [User(username=n, display_name=n, password_hash="", active=True)
                 for n in ("load-prep", "load-appr")]
        s.add_all(users)
        s.flush()
        s.add(Release(series=spec["id"], version=version, kind="initial", state="published",
                      title=spec["title"], spec=spec, upload_name="children.csv",
                      upload_sha256="", content_rev=1, protected_csv=body, report=report,
                      prepared_by_id=users[0].id, approved_by_id=users[1].id, approved_rev=1,
                      published_at=utcnow(), published_target="local"))
    engine.dispose()
    return url, spec["id"], version


def start_gunicorn(tmp: Path, url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "ASHYQ_DATABASE_URL": url, "ASHYQ_SECRET_KEY": secrets.token_hex(32),
           "ASHYQ_WORK_DIR": str(tmp / "work"), "ASHYQ_OUTPUT_DIR": str(tmp / "out"),
           "ASHYQ_HUEY_SQLITE": str(tmp / "huey.db"), "CKAN_URL": "", "CKAN_API_TOKEN": ""}
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
         "--chdir", str(ROOT), "--log-level", "warning", "publisher.app:create_app()"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "gunicorn.log", "wb"))  # noqa: SIM115
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"error: gunicorn did not start (see {tmp / 'gunicorn.log'})")


def load(port: int, path: str, clients: int, seconds: float, max_requests: int
         ) -> dict[str, float]:
    """Hammer ``path`` from ``clients`` threads; latencies of the successful answers."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    budget = [max_requests]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < stop:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Accept-Language": "en"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                bad += 1
        conn.close()
        with lock:
            lat.extend(mine)
            errors[0] += bad

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat.sort()
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0.0)
    return {"requests": len(lat), "errors": errors[0], "rps": len(lat) / wall,
            "p50": pct(0.50), "p95": pct(0.95),
            "mean": statistics.fmean(lat) * 1000 if lat else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per endpoint (default 5)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    ap.add_argument("--max-requests", type=int, default=20000, help="per endpoint, at most")
    ap.add_argument("--no-protection", action="store_true",
                    help="do not run a protection beside the load")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ashyq-load-"))
    url, series, version = published_store(tmp)
    port = free_port()
    server = start_gunicorn(tmp, url, port)
    busy: subprocess.Popen | None = None
    stop_busy = threading.Event()

    def protect_loop() -> None:
        nonlocal busy
        n = 0
        while not stop_busy.is_set():
            n += 1
            busy = subprocess.Popen(
                protect_cmd(tmp, tmp / f"busy{n % 2}.csv"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "ASHYQ_DATABASE_URL": f"sqlite:///{tmp / 'busy.db'}"})
            busy.wait()

    loop = None
    if not args.no_protection:
        loop = threading.Thread(target=protect_loop, daemon=True)
        loop.start()
    endpoints = [
        ("public version page", f"/v/{series}/{version}"),
        ("public cells API", f"/api/public/series/{series}/{version}/cells"),
        ("public cells API, page of 100", f"/api/public/series/{series}/{version}/cells"
                                          "?offset=1000&limit=100"),
        ("healthz", "/healthz"),
    ]
    rows = []
    try:
        for name, path in endpoints:
            load(port, path, args.clients, min(1.0, args.seconds), 200)  # warm-up
            rows.append((name, path, load(port, path, args.clients, args.seconds,
                                          args.max_requests)))
    finally:
        stop_busy.set()
        if busy is not None and busy.poll() is None:
            busy.terminate()
        if loop is not None:
            loop.join(timeout=30)
        server.terminate()
        server.wait(timeout=30)
    cpus = os.cpu_count()
    print(f"gunicorn -w 2 --threads 4, {args.clients} clients, {args.seconds:g} s per endpoint, "
          f"{cpus} CPUs, protection beside it: {'no' if args.no_protection else 'yes'}")
    print("| endpoint | requests | errors | req/s | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for name, _path, r in rows:
        print(f"| {name} | {r['requests']:,} | {r['errors']} | {r['rps']:,.0f} | "
              f"{r['p50']:.1f} | {r['p95']:.1f} |")
    if any(r["errors"] for _n, _p, r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
