"""Citations point at an address readers can reach: the public page, else the CKAN dataset; a
package that cites a loopback address is refused by a CKAN at a public address (before any call)."""

from __future__ import annotations

import json

import pytest
import yaml

from publisher.addresses import is_loopback, landing_url
from publisher.ckan import CkanPublishError, publish_package
from publisher.service import package_release, protect_files
from publisher.specs import load_spec

SPEC = {
    "id": "cite-me", "version": "1.2.0", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "dimensions": [{"name": "region", "codes": ["A", "B"]}, {"name": "sex", "codes": ["F", "M"]}],
    "disclosure": {"min_frequency": 3},
}
TABLE = "region,sex,obs_value\nA,F,10\nA,M,12\nB,F,7\nB,M,9\n"


@pytest.mark.parametrize("url, loop", [
    ("http://127.0.0.1:5000", True), ("http://localhost:8080/x", True), ("http://[::1]/", True),
    ("http://127.8.9.1", True), ("", True), (None, True), ("http://0.0.0.0:5000", True),
    ("https://stat.gov.kz", False), ("http://10.0.0.5", False), ("https://data.example.org/ckan", False),
])
def test_is_loopback(url, loop) -> None:
    assert is_loopback(url) is loop


def test_landing_url_rule() -> None:
    public = {"PUBLIC_BASE_URL": "https://open.stat.kz/", "CKAN_URL": "https://ckan.stat.kz"}
    assert landing_url(public, "kids", "1.2.0") == "https://open.stat.kz/v/kids/1.2.0"
    ckan_only = {"PUBLIC_BASE_URL": "http://127.0.0.1:5000", "CKAN_URL": "https://ckan.stat.kz/"}
    assert landing_url(ckan_only, "kids", "1.2.0") == "https://ckan.stat.kz/dataset/kids-v1-2-0"
    dev = {"PUBLIC_BASE_URL": "http://127.0.0.1:5000", "CKAN_URL": "http://127.0.0.1:5055"}
    assert landing_url(dev, "kids", "1.2.0") == "http://127.0.0.1:5000/v/kids/1.2.0"


def _package(tmp_path, settings) -> object:
    spec_path, table = tmp_path / "spec.yaml", tmp_path / "in.csv"
    spec_path.write_text(yaml.safe_dump(SPEC, allow_unicode=True), "utf-8")
    table.write_text(TABLE, "utf-8")
    out = tmp_path / "out.csv"
    (oc,) = protect_files([(str(spec_path), str(table), str(out))], settings=settings)
    return package_release(load_spec(spec_path), out, tmp_path / "pkg", report=oc.report.to_dict(),
                           settings=settings)


def test_package_cites_the_ckan_dataset_when_the_public_base_is_loopback(tmp_path) -> None:
    from publisher.settings import load_settings

    s = dict(load_settings())
    s.update(PUBLIC_BASE_URL="http://127.0.0.1:5000", CKAN_URL="https://ckan.stat.kz")
    res = _package(tmp_path, s)
    d = json.loads((res.path / "datapackage.json").read_text("utf-8"))
    assert d["x_landing_url"] == "https://ckan.stat.kz/dataset/cite-me-v1-2-0"
    assert "https://ckan.stat.kz/dataset/cite-me-v1-2-0" in d["x_citation"]["text"]["en"]


def test_a_loopback_citation_is_refused_by_a_public_ckan(tmp_path) -> None:
    from publisher.settings import load_settings

    s = dict(load_settings())
    s.update(PUBLIC_BASE_URL="http://127.0.0.1:5000", CKAN_URL=None)
    res = _package(tmp_path, s)
    with pytest.raises(CkanPublishError) as e:
        publish_package(res.path, url="https://ckan.stat.kz", token="t" * 40)
    msg = str(e.value)
    assert "x_landing_url" in msg and "127.0.0.1:5000" in msg and "ASHYQ_PUBLIC_BASE_URL" in msg
