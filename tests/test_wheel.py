"""The built wheel works outside the checkout.

Builds the wheel from a copy of the sources, installs it with ``--no-deps`` into a fresh venv in a
temporary folder, gives that venv the dependencies of the running one through a ``.pth`` file (no
download), and runs, with the temporary folder as working directory (so the checkout is not
importable): ``publisher demo`` (protect, package — which validates against the Data Package
profiles — and publish to a local folder) and the web app (``create_app()``, templates, Babel
catalogues, static files, migrations, code lists and defaults read from package data).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# folder of the checkout -> where its files are in the wheel
SHIPPED = {"publisher": "publisher", "disclosure": "disclosure", "datapackages": "datapackages",
           "config": "publisher/_config"}
SOURCES = ["pyproject.toml", "README.md", "MANIFEST.in", *SHIPPED]
SERIES = ("demo-migrant-children", "demo-migrant-children-family")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p


def _files(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            yield p


def _setuptools_can_build() -> bool:
    """The running venv can build the wheel itself (setuptools >= 77 reads the SPDX licence)."""
    try:
        return int(version("setuptools").split(".")[0]) >= 77
    except (PackageNotFoundError, ValueError):
        return False


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ashyq-wheel-")).resolve()
    assert ROOT not in d.parents and d != ROOT
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(scratch: Path) -> Path:
    """Built from a copy of the sources, so that nothing (build/, *.egg-info) lands in the checkout."""
    src = scratch / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=ignore)
        elif p.is_file():
            shutil.copy2(p, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(scratch / "dist")]
    env = dict(os.environ)
    if _setuptools_can_build():
        cmd.append("--no-build-isolation")  # no network at all
    else:
        # pip builds in an isolated environment, with setuptools from the configured index (a
        # local mirror, or PyPI); fail fast rather than wait out pip's retries when it is down.
        env.update(PIP_DEFAULT_TIMEOUT="20", PIP_RETRIES="1")
    _run([*cmd, str(src)], cwd=scratch, env=env, timeout=300)
    (built,) = (scratch / "dist").glob("ashyq-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(scratch: Path, wheel: Path) -> Path:
    """A fresh venv holding only the wheel; the running venv's packages reach it by a .pth file."""
    env_dir = scratch / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=scratch)
    py = env_dir / "bin" / "python"
    # Installed before the .pth exists, so pip sees no other installation of ashyq.
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          "--no-compile", str(wheel)], cwd=scratch, timeout=300)
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                cwd=scratch).stdout.strip()
    deps = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    Path(site, "zz_ashyq_test_deps.pth").write_text("\n".join(deps) + "\n", "utf-8")
    return env_dir


def _env(venv: Path) -> dict[str, str]:
    """The environment minus anything pointing at the checkout or at a configured service."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASHYQ_", "CKAN_", "PYTHON", "VIRTUAL_ENV", "FLASK_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _site(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3*/site-packages")
    return site.resolve()


def test_the_wheel_holds_every_file_of_the_packages_and_config(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [str(p.relative_to(ROOT)) for folder, inside in SHIPPED.items()
               for p in _files(ROOT / folder)
               if f"{inside}/{p.relative_to(ROOT / folder).as_posix()}" not in names]
    assert not missing, ("not in the wheel (pyproject.toml [tool.setuptools] packages / "
                         f"package-data): {missing}")
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"publisher", "disclosure", "datapackages"}


def test_demo_runs_from_the_installed_wheel(venv: Path, scratch: Path):
    run = scratch / "run-demo"
    run.mkdir()
    p = _run([str(venv / "bin" / "publisher"), "demo", "--output", str(run / "demo")], cwd=run,
             env=_env(venv), timeout=300)
    assert "SYNTHETIC" in p.stdout and "Demo release complete" in p.stdout
    assert "HiGHS" not in p.stdout + p.stderr
    for series in SERIES:
        assert (run / "demo" / "packages" / series / "datapackage.json").is_file()
        assert (run / "demo" / "packages" / f"{series}.zip").is_file()
        assert (run / "demo" / "published" / series / "1.0.0" / "datapackage.json").is_file()
    assert not (run / "instance").exists() and not (run / "output").exists()


APP_SCRIPT = r"""
import json
from pathlib import Path

import datapackages
import disclosure
import publisher
import publisher.tasks  # creates no file (the queue's storage is made on first use)
from publisher import settings
from publisher.db import upgrade

here = Path.cwd()
out = {"modules": [m.__file__ for m in (publisher, disclosure, datapackages)],
       "config_dir": str(settings.CONFIG_DIR), "codelists": str(settings.config_path("codelists"))}
defaults = settings.load_settings(environ={})
out["relative"] = [defaults["OUTPUT_DIR"], defaults["WORK_DIR"], defaults["DATABASE_URL"]]
url = f"sqlite:///{here / 'app.sqlite'}"
upgrade(url)
from publisher.app import create_app

app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "WORK_DIR": str(here / "work"),
                  "OUTPUT_DIR": str(here / "out"), "CKAN_URL": None, "CKAN_API_TOKEN": None})
c = app.test_client()
login = c.get("/login", headers={"Accept-Language": "ru"})
css = c.get("/ui-static/style.css")
out["login"] = [login.status_code, login.get_data(as_text=True)]
out["css"] = [css.status_code, css.get_data(as_text=True)]
out["healthz"] = c.get("/healthz").get_json()
out["instance"] = (here / "instance").exists()
print(json.dumps(out))
"""


def test_web_app_runs_from_the_installed_wheel(venv: Path, scratch: Path):
    from babel.messages.pofile import read_po

    run = scratch / "run-app"
    run.mkdir()
    p = _run([str(venv / "bin" / "python"), "-c", APP_SCRIPT], cwd=run, env=_env(venv))
    out = json.loads(p.stdout.strip().splitlines()[-1])
    site = _site(venv)
    for module in out["modules"]:  # the installed copies, not the checkout
        assert site in Path(module).resolve().parents, module
    assert Path(out["config_dir"]) == site / "publisher" / "_config"
    assert Path(out["codelists"]) == site / "publisher" / "_config" / "codelists"
    # outside a checkout, relative paths of the settings are relative to the working directory
    assert out["relative"] == [str(run / "output"), str(run / "instance" / "work"),
                               f"sqlite:///{run / 'instance' / 'ashyq.db'}"]
    assert out["instance"] is False  # importing publisher.tasks / create_app() made no huey.db

    with (ROOT / "publisher/translations/ru/LC_MESSAGES/messages.po").open("rb") as f:
        sign_in = read_po(f).get("Sign in").string
    status, html = out["login"]
    assert status == 200 and sign_in and sign_in in html, html[:2000]
    status, css = out["css"]
    assert status == 200 and css == (ROOT / "publisher/web/static/style.css").read_text("utf-8")
    assert out["healthz"] == {"status": "ok", "database": "ok"}
