"""Helpers of the CKAN integration tests: the local stack and minimal built packages.

(Kept out of conftest.py so test modules import them by a unique module name.)
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ckan-local.sh"

TITLE = {"kk": "Өңірлер бойынша көшіп келушілер", "ru": "Прибывшие мигранты по регионам",
         "en": "Arriving migrants by region"}
DESCRIPTION = {"kk": "Тұрақты тұруға келгендер саны.", "ru": "Число прибывших на ПМЖ.",
               "en": "Persons arriving for permanent residence."}


@dataclass(frozen=True)
class Ckan:
    url: str
    token: str

    def restart(self) -> None:
        """Bring the stack up again (after a fault injected with ``stop_web``)."""
        ckan_up()

    def stop_web(self) -> None:
        """Stop the CKAN web process (fault injection: CKAN unreachable)."""
        subprocess.run([str(SCRIPT), "stop-web"], check=True, capture_output=True, timeout=60)

    def stop_solr(self) -> None:
        """Stop the Solr stand-in (fault injection: CKAN answers HTTP 500)."""
        subprocess.run([str(SCRIPT), "stop-solr"], check=True, capture_output=True, timeout=60)


def ckan_up() -> dict[str, str]:
    proc = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/ckan-local.sh up failed:\n{proc.stderr[-3000:]}")
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
    assert set(env) >= {"CKAN_URL", "CKAN_API_TOKEN"}, proc.stdout
    return env


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_package(where: Path, series: str, version: str, csv: bytes, *,
                 package_id: str | None = None, state_hash: bool = True,
                 title: dict[str, str] | None = None) -> Path:
    """A minimal valid built package: ``<where>/<series>-<version>/`` (datapackage.json +
    data/table.csv) and the sibling zip of the folder, as ``publisher package`` lays it out."""
    title = title or TITLE
    pkg = where / f"{series}-{version}"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "table.csv").write_bytes(csv)
    resource = {
        "name": "table", "path": "data/table.csv", "format": "csv", "mediatype": "text/csv",
        "encoding": "utf-8", "bytes": len(csv),
        "schema": {"fields": [{"name": "region", "type": "string"},
                              {"name": "obs_value", "type": "integer"}],
                   "missingValues": [""]},
    }
    if state_hash:
        resource["hash"] = "sha256:" + sha256(csv)
    descriptor = {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": series, "id": package_id or f"urn:uuid:{uuid.uuid4()}", "version": version,
        "title": title["kk"], "description": DESCRIPTION["kk"], "languages": ["kk", "ru", "en"],
        "licenses": [{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"}],
        "x_translations": {"title": dict(title), "description": dict(DESCRIPTION)},
        "resources": [resource],
    }
    (pkg / "datapackage.json").write_text(json.dumps(descriptor, ensure_ascii=False, indent=2),
                                          "utf-8")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(pkg.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(pkg).as_posix())
    pkg.with_name(pkg.name + ".zip").write_bytes(buf.getvalue())
    return pkg


def table_csv(rows: int = 3, seed: int = 0) -> bytes:
    lines = ["region,obs_value"] + [f"R{i:03d},{(i * 7 + seed) % 50}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()
