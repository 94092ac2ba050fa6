"""The CKAN client without a CKAN: reading/checking the package, slugs, bounded retries."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from ckan_testlib import sha256, table_csv

from publisher.ckan import (
    CkanPublishError,
    RetryPolicy,
    dataset_slug,
    publish_package,
    read_package,
    version_order,
)


def test_read_package_lists_files_with_their_sha256(package_factory):
    pkg = package_factory("migr-by-region", "1.2.0")
    local = read_package(pkg)
    assert local.dataset_name == "migr-by-region-v1-2-0"
    assert [f.name for f in local.files] == [
        "data/table.csv", "datapackage.json", "migr-by-region-1.2.0.zip"]
    assert local.files[0].sha256 == sha256(table_csv())
    assert local.files[0].format == "CSV"
    assert set(local.title) == {"kk", "ru", "en"}


def test_a_stated_hash_that_does_not_match_the_file_is_refused_before_any_network(
        package_factory):
    pkg = package_factory("s1", "1.0.0")
    (pkg / "data" / "table.csv").write_bytes(table_csv(seed=5))  # same length, other bytes
    with pytest.raises(CkanPublishError) as exc:
        publish_package(pkg, url="http://127.0.0.1:9", token="t")
    assert exc.value.action == "datapackage.json"
    assert exc.value.field == "resources[table].hash"
    assert "rebuild the package" in exc.value.reason


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.update(version="1.2"), "version"),
    (lambda d: d.update(name="Has Space"), "name"),
    (lambda d: d["x_translations"]["title"].pop("ru"), "x_translations.title"),
    (lambda d: d["resources"][0].update(path="../outside.csv"), "resources[table].path"),
    (lambda d: d["resources"][0].update(path="https://example.org/x.csv"), "resources[table].path"),
    (lambda d: d.update(resources=[]), "resources"),
])
def test_bad_descriptors_name_the_field(package_factory, mutate, field):
    pkg = package_factory("s2", "1.0.0")
    d = json.loads((pkg / "datapackage.json").read_text("utf-8"))
    mutate(d)
    (pkg / "datapackage.json").write_text(json.dumps(d), "utf-8")
    with pytest.raises(CkanPublishError) as exc:
        read_package(pkg)
    assert exc.value.field == field


def test_v1_shapes_and_missing_hash_are_read(package_factory):
    pkg = package_factory("s3", "1.0.0", state_hash=False)
    d = json.loads((pkg / "datapackage.json").read_text("utf-8"))
    d.pop("$schema")
    d["profile"] = "tabular-data-package"
    d["x_translations"] = {lang: {"title": t} for lang, t in d["x_translations"]["title"].items()}
    (pkg / "datapackage.json").write_text(json.dumps(d), "utf-8")
    local = read_package(pkg)
    assert local.title["ru"] == "Прибывшие мигранты по регионам"
    assert local.files[0].sha256 == sha256(table_csv())
    assert any("no hash stated" in n for n in local.notes)


def test_slug_and_version_order():
    assert dataset_slug("kz-migration", "1.2.0") == "kz-migration-v1-2-0"
    assert dataset_slug("kz", "2.0.0-rc.1") == "kz-v2-0-0-rc-1"
    assert version_order("1.10.0") > version_order("1.9.0")
    assert version_order("2.0.0") > version_order("2.0.0-rc.1")


def test_unreachable_ckan_is_retried_a_bounded_number_of_times(package_factory, monkeypatch):
    from publisher import ckan as mod

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    monkeypatch.setattr(mod.time, "sleep", slept.append)
    policy = RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5, connect_timeout=1)
    with pytest.raises(CkanPublishError) as exc:
        publish_package(package_factory("s4", "1.0.0"), url=f"http://127.0.0.1:{port}",
                        token="t", policy=policy)
    assert exc.value.retryable is True
    assert str(exc.value) == (
        f"organization_show: connection: cannot reach CKAN at http://127.0.0.1:{port}")
    assert slept == [0.5, 1.0, 1.5]


def test_missing_url_or_token_or_naive_embargo(package_factory, tmp_path: Path):
    from datetime import datetime

    pkg = package_factory("s5", "1.0.0")
    with pytest.raises(CkanPublishError, match="CKAN_API_TOKEN"):
        publish_package(pkg, url="http://127.0.0.1:9", token="")
    with pytest.raises(CkanPublishError, match="timezone-aware"):
        publish_package(pkg, url="http://127.0.0.1:9", token="t", embargo=datetime(2030, 1, 1))


def test_the_client_leaves_a_callers_session_as_it_found_it(package_factory):
    import requests

    s = requests.Session()
    before = list(s.hooks["response"])
    with pytest.raises(CkanPublishError):
        publish_package(package_factory("s6", "1.0.0"), url="http://127.0.0.1:9", token="t",
                        session=s, policy=RetryPolicy(attempts=1))
    assert s.hooks["response"] == before
