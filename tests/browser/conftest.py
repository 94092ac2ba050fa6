"""A live Ashyq (web server thread + a real ``publisher worker`` process) for browser tests.

Chromium is Debian's (``/usr/bin/chromium``, installed by scripts/test-setup.d/40-browser.sh);
Playwright's own browser download does not work here. Publishing goes to the local CKAN when
``CKAN_URL``/``CKAN_API_TOKEN`` are set (scripts/test.sh exports them), else to a local folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("ASHYQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium not found at {CHROMIUM} (scripts/test-setup.d/40-browser.sh)")
        pytest.skip("Debian chromium is not installed (scripts/test-setup.d/40-browser.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app on a free loopback port, a migrated SQLite store, two users and a worker."""
    from werkzeug.serving import make_server

    from publisher.app import create_app
    from publisher.db import make_engine, session_factory, transaction, upgrade
    from publisher.workflow_models import User

    db_url = f"sqlite:///{tmp_path / 'ashyq.db'}"
    settings = {
        "DATABASE_URL": db_url, "SECRET_KEY": "browser-test", "HUEY_IMMEDIATE": False,
        "HUEY_SQLITE": str(tmp_path / "huey.db"), "WORK_DIR": str(tmp_path / "work"),
        "OUTPUT_DIR": str(tmp_path / "out"),
    }
    upgrade(db_url)
    engine = make_engine(db_url)
    with transaction(session_factory(engine)) as s:
        for name, roles in (("preparer1", ["preparer"]), ("approver1", ["approver"])):
            u = User(username=name, display_name=name.title(), password_hash="", active=True)
            u.set_password(f"{name}-password")
            u.set_roles(roles)
            s.add(u)
    engine.dispose()

    app = create_app({**settings, "PUBLIC_BASE_URL": "http://127.0.0.1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    env = {**os.environ, "ASHYQ_PUBLIC_BASE_URL": base}
    for key, value in settings.items():
        env[f"ASHYQ_{key}"] = str(value)
    env.pop("ASHYQ_HUEY_IMMEDIATE", None)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "publisher.cli", "worker", "--workers", "1"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"base": base, "tmp": tmp_path, "app": app, "ckan": bool(
            os.environ.get("CKAN_URL") and os.environ.get("CKAN_API_TOKEN"))}
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        server.shutdown()
        app.extensions["ashyq.engine"].dispose()
        from publisher import tasks

        tasks.configure({**app.config, "HUEY_IMMEDIATE": True})
