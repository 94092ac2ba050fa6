"""A published version for the CKAN language tests: a data table with translated titles and
descriptions, the same table as one file per language (titles that differ only at their end) and
the wait for ckanext-xloader to load the CSV into the DataStore.

(Shared by tests/integration/test_ckan_language.py and tests/browser/test_ckan_pages.py.)
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ckanapi

from publisher.ckan import PublishResult, publish_package
from tests.integration.ckan_testlib import DESCRIPTION, TITLE, make_package, sha256, table_csv

ORG = "ashyq-it"
TABLE_DESC = {"kk": "Кесте: бір жол бір ұяшық.", "ru": "Таблица: одна строка на ячейку.",
              "en": "The table: one row per cell."}
LANGUAGE_IN = {"kk": {"kk": "қазақша", "ru": "орысша", "en": "ағылшынша"},
               "ru": {"kk": "на казахском", "ru": "на русском", "en": "на английском"},
               "en": {"kk": "in Kazakh", "ru": "in Russian", "en": "in English"}}


@dataclass(frozen=True)
class Published:
    result: PublishResult
    series: str
    dataset: dict[str, Any]  # package_show after the DataStore load

    @property
    def name(self) -> str:
        return self.result.dataset_name

    def resource(self, name: str) -> dict[str, Any]:
        return next(r for r in self.dataset["resources"] if r["name"] == name)


def _add_translated_resources(pkg: Path, csv: bytes) -> None:
    """Translated title/description on the data table and three per-language copies whose
    titles are the dataset's plus ``(CSV, <language>)``, as ``publisher package`` writes them."""
    dp = pkg / "datapackage.json"
    descriptor = json.loads(dp.read_text("utf-8"))
    table = descriptor["resources"][0]
    table["title"], table["description"] = TITLE["kk"], TABLE_DESC["kk"]
    table["x_translations"] = {"title": dict(TITLE), "description": dict(TABLE_DESC)}
    (pkg / "downloads").mkdir()
    for lg in ("kk", "ru", "en"):
        body = csv.replace(b"region", f"region_{lg}".encode())
        (pkg / "downloads" / f"table-{lg}.csv").write_bytes(body)
        titles = {x: f"{TITLE[x]} (CSV, {LANGUAGE_IN[x][lg]})" for x in TITLE}
        descriptor["resources"].append({
            "name": f"table-{lg}", "path": f"downloads/table-{lg}.csv", "type": "file",
            "format": "csv", "mediatype": "text/csv", "bytes": len(body),
            "hash": "sha256:" + sha256(body), "title": titles["kk"],
            "x_translations": {"title": titles}})
    dp.write_text(json.dumps(descriptor, ensure_ascii=False, indent=2), "utf-8")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(pkg.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(pkg).as_posix())
    pkg.with_name(pkg.name + ".zip").write_bytes(buf.getvalue())


def publish_translated(where: Path, url: str, token: str, *, rows: int = 12,
                       wait: float = 180.0) -> Published:
    """Publish the version and wait until xloader has loaded ``data/table.csv``."""
    api = ckanapi.RemoteCKAN(url, apikey=token)
    try:
        api.action.organization_show(id=ORG)
    except ckanapi.NotFound:
        api.action.organization_create(name=ORG)
    series = f"it-lang-{uuid.uuid4().hex[:8]}"
    csv = table_csv(rows)
    pkg = make_package(where, series, "1.0.0", csv)
    _add_translated_resources(pkg, csv)
    result = publish_package(pkg, url=url, token=token, organization=ORG)
    deadline = time.monotonic() + wait
    while True:
        ds = api.action.package_show(id=result.dataset_name)
        csvs = [r for r in ds["resources"] if r["format"] == "CSV"]
        statuses = {r["name"]: _xloader_status(api, r["id"]) for r in csvs}
        if "error" in statuses.values():
            raise AssertionError(f"xloader failed: {statuses}")
        table = next(r for r in csvs if r["name"] == "data/table.csv")
        if (set(statuses.values()) == {"complete"}
                and api.action.resource_view_list(id=table["id"])):
            ds = api.action.package_show(id=result.dataset_name)
            return Published(result, series, ds)
        if time.monotonic() > deadline:
            raise AssertionError(f"xloader did not load the CSV files within {wait:.0f} s "
                                 "(is CKAN's job worker running? .stack/ckan/log/worker.log)")
        time.sleep(1.0)


def _xloader_status(api: ckanapi.RemoteCKAN, resource_id: str) -> str | None:
    try:
        return api.action.xloader_status(resource_id=resource_id).get("status")
    except ckanapi.NotFound:  # not submitted yet
        return None


__all__ = ["DESCRIPTION", "TABLE_DESC", "TITLE", "Published", "publish_translated"]
