"""End to end through the command line, as the acceptance checks do it:
``publisher protect`` -> ``publisher package`` -> ``eval "$(scripts/ckan-local.sh up)"`` ->
``publisher publish DIR`` against the real local CKAN."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import ckanapi
import pytest
import requests

pytestmark = pytest.mark.ckan
PUBLISHER = Path(sys.executable).parent / "publisher"
INPUT = (
    "region,sex,obs_value\nR01D01,F,12\nR01D01,M,3\nR01D02,F,20\nR01D02,M,14\n"
    "R02D01,F,30\nR02D01,M,31\nR02D02,F,8\nR02D02,M,9\n"
)
TITLE = {"kk": "Өңірлер бойынша көшіп келушілер", "ru": "Прибывшие по регионам",
         "en": "Arrivals by region"}


def spec_text(series: str, version: str) -> str:
    return f"""id: {series}
version: {version}
title: {json.dumps(TITLE, ensure_ascii=False)}
dimensions:
  - name: region
    hierarchy:
      _T: [R01, R02]
      R01: [R01D01, R01D02]
      R02: [R02D01, R02D02]
  - name: sex
    codes: [F, M]
measure: obs_value
disclosure:
  min_frequency: 5
  secondary: optimal
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(PUBLISHER), *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def build(tmp: Path, series: str, version: str, env: dict[str, str]) -> Path:
    tmp.mkdir(parents=True)
    (tmp / "spec.yaml").write_text(spec_text(series, version), "utf-8")
    (tmp / "in.csv").write_text(INPUT, "utf-8")
    run(["protect", str(tmp / "spec.yaml"), str(tmp / "in.csv"), "-o", str(tmp / "p.csv")], env)
    run(["package", str(tmp / "spec.yaml"), str(tmp / "p.csv"), "-o", str(tmp / "pkg")], env)
    return tmp / "pkg"


def test_cli_protect_package_publish_two_versions(ckan, tmp_path: Path):
    env = {**os.environ, "CKAN_URL": ckan.url, "CKAN_API_TOKEN": ckan.token}
    series = f"it-cli-{uuid.uuid4().hex[:8]}"
    pkg = build(tmp_path / "v1", series, "1.0.0", env)
    out = run(["publish", str(pkg)], env)
    name = f"{series}-v1-0-0"
    assert name in out.stdout and "verified" in out.stdout

    descriptor = json.loads((pkg / "datapackage.json").read_text("utf-8"))
    anon = ckanapi.RemoteCKAN(ckan.url)
    ds = anon.action.package_show(id=name)
    assert ds["private"] is False and ds["title_translated"] == TITLE
    stated = {r["path"]: r["hash"].split(":", 1)[1] for r in descriptor["resources"]}
    remote = {r["name"]: r for r in ds["resources"]}
    assert set(remote) == set(stated) | {"datapackage.json", "pkg.zip"}
    for path, digest in stated.items():
        assert remote[path]["hash"] == digest
        body = requests.get(remote[path]["url"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == digest

    # the raw count behind the primary-suppressed cell never reaches CKAN
    table = next(r for r in descriptor["resources"] if r["path"].startswith("data/"))
    rows = list(csv.DictReader(io.StringIO(
        requests.get(remote[table["path"]]["url"], timeout=30).content.decode("utf-8"))))
    cell = next(r for r in rows if r["region"] == "R01D01" and r["sex"] == "M")
    assert cell["obs_value"] == "" and cell["conf_status"] == "C"

    ttl = requests.get(f"{ckan.url}/dataset/{name}.ttl", timeout=30).content.decode("utf-8")
    assert all(f'"{t}"@{lang}' in ttl for lang, t in TITLE.items())
    table_titles = table["x_translations"]["title"]
    assert remote[table["path"]]["name_translated"] == table_titles
    assert all(f'"{t}"@{lang}' in ttl for lang, t in table_titles.items())
    for lang in ("kk", "ru", "en"):  # the dataset page renders in each language
        page = requests.get(f"{ckan.url}/{lang}/dataset/{name}", timeout=30)
        assert page.status_code == 200 and TITLE[lang] in page.content.decode("utf-8")

    again = run(["publish", str(pkg)], env)  # idempotent
    assert name in again.stdout
    assert len(anon.action.package_show(id=name)["resources"]) == len(remote)

    v1_bytes = {n: requests.get(r["url"], timeout=30).content for n, r in remote.items()}
    pkg2 = build(tmp_path / "v2", series, "1.1.0", env)
    run(["publish", str(pkg2)], env)
    ds2 = anon.action.package_show(id=f"{series}-v1-1-0")
    assert ds2["previous_version"] == name and ds2["id"] != ds["id"]
    for n, r in {r["name"]: r for r in anon.action.package_show(id=name)["resources"]}.items():
        assert requests.get(r["url"], timeout=30).content == v1_bytes[n]
