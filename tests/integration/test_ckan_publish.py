"""Publishing to the real local CKAN 2.12 (scripts/ckan-local.sh): full publish, versions,
faults, verification. Every test uses its own series so runs never collide."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ckanapi
import pytest
import requests
from ckan_testlib import TITLE, sha256, table_csv

from publisher.ckan import CkanPublishError, RetryPolicy, publish_package

pytestmark = pytest.mark.ckan
FAST = RetryPolicy(attempts=2, backoff=0.2, read_timeout=60)


def api(ckan, token: bool = True) -> ckanapi.RemoteCKAN:
    return ckanapi.RemoteCKAN(ckan.url, apikey=ckan.token if token else None)


def files_of(pkg: Path) -> dict[str, bytes]:
    return {
        "data/table.csv": (pkg / "data" / "table.csv").read_bytes(),
        "datapackage.json": (pkg / "datapackage.json").read_bytes(),
        pkg.name + ".zip": pkg.with_name(pkg.name + ".zip").read_bytes(),
    }


def anonymous_bytes(url: str) -> tuple[int, bytes]:
    r = requests.get(url, timeout=30)
    return r.status_code, r.content


def test_full_publish_is_public_verified_multilingual_and_idempotent(ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    messages: list[str] = []
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          progress=messages.append, policy=FAST)
    name = f"{series}-v1-0-0"
    assert (res.dataset_name, res.verified, res.public, res.anonymous_verified) == (
        name, True, True, True)
    assert res.dataset_url == f"{ckan.url}/dataset/{name}"
    assert res.latest_version == name
    assert any("private" in m for m in messages) and any("public" in m for m in messages)

    ds = api(ckan, token=False).action.package_show(id=name)  # anonymous: it is public
    assert ds["private"] is False
    assert ds["version"] == "1.0.0" and ds["series"] == series
    assert ds["title_translated"] == TITLE
    assert ds["organization"]["name"] == "ashyq-it"
    assert [g["name"] for g in ds["groups"]] == [series]
    expected = files_of(pkg)
    assert [r["name"] for r in ds["resources"]] == list(expected)
    for r in ds["resources"]:
        data = expected[r["name"]]
        assert r["hash"] == sha256(data) and r["url_type"] == "upload"
        status, body = anonymous_bytes(r["url"])
        assert status == 200 and body == data
    assert {r.sha256 for r in res.resources} == {sha256(b) for b in expected.values()}

    ttl = requests.get(f"{ckan.url}/dataset/{name}.ttl", timeout=30).content.decode("utf-8")
    for lang, text in TITLE.items():
        assert f'"{text}"@{lang}' in ttl

    again = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                            policy=FAST)
    assert again.dataset_id == res.dataset_id
    assert [r.id for r in again.resources] == [r.id for r in res.resources]
    assert len(api(ckan).action.package_show(id=name)["resources"]) == 3


def test_second_version_is_a_new_dataset_and_leaves_the_first_untouched(
        ckan, series, package_factory):
    v1 = package_factory(series, "1.1.0", table_csv(seed=1))
    r1 = publish_package(v1, url=ckan.url, token=ckan.token, organization="ashyq-it", policy=FAST)
    before = api(ckan).action.package_show(id=r1.dataset_name)
    bytes_before = {r["name"]: anonymous_bytes(r["url"])[1] for r in before["resources"]}

    v2 = package_factory(series, "1.2.0", table_csv(rows=5, seed=2))
    r2 = publish_package(v2, url=ckan.url, token=ckan.token, organization="ashyq-it", policy=FAST)
    assert r2.dataset_name == f"{series}-v1-2-0" and r2.dataset_id != r1.dataset_id
    assert r2.latest_version == r2.dataset_name

    after = api(ckan).action.package_show(id=r1.dataset_name)
    assert after["metadata_modified"] == before["metadata_modified"]
    assert [r["id"] for r in after["resources"]] == [r["id"] for r in before["resources"]]
    for r in after["resources"]:
        assert anonymous_bytes(r["url"])[1] == bytes_before[r["name"]]
    assert bytes_before["data/table.csv"] == table_csv(seed=1)

    v2ds = api(ckan, token=False).action.package_show(id=r2.dataset_name)
    assert v2ds["previous_version"] == r1.dataset_name
    newest = api(ckan, token=False).action.package_search(
        fq=f'series:"{series}"', sort="version_order desc", rows=1)
    assert newest["count"] == 2 and newest["results"][0]["name"] == r2.dataset_name
    group = api(ckan, token=False).action.group_show(id=series, include_datasets=True)
    assert {p["name"] for p in group["packages"]} == {r1.dataset_name, r2.dataset_name}


def test_rerun_after_ckan_stopped_mid_push_completes_without_duplicates(
        ckan, series, package_factory):
    pkg = package_factory(series, "2.0.0")
    name = f"{series}-v2-0-0"
    stopped: list[str] = []

    def stop_after_first_upload(msg: str) -> None:
        if msg.startswith("uploaded") and not stopped:
            stopped.append(msg)
            ckan.stop_web()

    try:
        with pytest.raises(CkanPublishError) as exc:
            publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                            progress=stop_after_first_upload, policy=FAST)
    finally:
        ckan.restart()
    assert stopped == ["uploaded data/table.csv (" + str(len(table_csv())) + " bytes)"]
    assert exc.value.retryable is True
    assert exc.value.action in ("package_show", "resource_create")
    assert exc.value.field == "connection" and ckan.url in exc.value.reason

    half = api(ckan).action.package_show(id=name)
    assert half["private"] is True and [r["name"] for r in half["resources"]] == ["data/table.csv"]
    with pytest.raises(ckanapi.NotAuthorized):
        api(ckan, token=False).action.package_show(id=name)
    assert anonymous_bytes(half["resources"][0]["url"])[0] == 403

    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          policy=FAST)
    assert res.verified and res.public and res.dataset_id == half["id"]
    done = api(ckan).action.package_show(id=name)
    assert [r["name"] for r in done["resources"]] == list(files_of(pkg))
    assert done["resources"][0]["id"] == half["resources"][0]["id"]
    found = api(ckan).action.package_search(fq=f'series:"{series}"', include_private=True)
    assert found["count"] == 1


def test_embargo_keeps_it_private_until_a_later_run(ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    future = datetime.now(UTC) + timedelta(days=1)
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          embargo=future, policy=FAST)
    assert res.verified and not res.public and not res.anonymous_verified
    with pytest.raises(ckanapi.NotAuthorized):
        api(ckan, token=False).action.package_show(id=res.dataset_name)
    for r in res.resources:
        assert anonymous_bytes(r.url)[0] == 403
    assert api(ckan, token=False).action.package_search(fq=f'series:"{series}"')["count"] == 0

    past = datetime.now(UTC) - timedelta(seconds=1)
    res2 = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                           embargo=past, policy=FAST)
    assert res2.public and res2.anonymous_verified and res2.dataset_id == res.dataset_id
    for r in res2.resources:
        status, body = anonymous_bytes(r.url)
        assert status == 200 and sha256(body) == r.sha256


def test_bogus_token_is_refused_with_403_and_creates_nothing(ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    with pytest.raises(CkanPublishError) as exc:
        publish_package(pkg, url=ckan.url, token="not-a-real-token", organization="ashyq-it",
                        policy=FAST)
    err = exc.value
    assert err.retryable is False and err.field == "authorization"
    assert err.action in ("organization_create", "group_create", "package_create")
    assert "HTTP 403" in str(err) and "not-a-real-token" not in str(err)
    with pytest.raises(ckanapi.NotFound):
        api(ckan).action.package_show(id=f"{series}-v1-0-0")


def test_name_clash_with_a_foreign_dataset_is_refused_and_it_stays_untouched(
        ckan, series, package_factory):
    publish_package(package_factory(series, "0.9.0"), url=ckan.url, token=ckan.token,
                    organization="ashyq-it", policy=FAST)  # organization + group exist
    name = f"{series}-v1-0-0"
    foreign = api(ckan).action.package_create(
        name=name, owner_org="ashyq-it", title_translated={"kk": "x", "ru": "y", "en": "z"},
        notes_translated={"kk": "x", "ru": "y", "en": "z"}, series="someone-else",
        version="1.0.0", datapackage_id="other")
    with pytest.raises(CkanPublishError) as exc:
        publish_package(package_factory(series, "1.0.0"), url=ckan.url, token=ckan.token,
                        organization="ashyq-it", policy=FAST)
    assert str(exc.value).startswith("package_create: name: That URL is already in use")
    assert exc.value.retryable is False
    still = api(ckan).action.package_show(id=name)
    assert still["metadata_modified"] == foreign["metadata_modified"] and still["resources"] == []


def test_upload_above_max_resource_size_fails_and_stays_private(ckan, series, package_factory):
    big = b"region,obs_value\n" + b"R000,1\n" * (11 * 1024 * 1024 // 7)  # ~11 MiB > 10 MB
    pkg = package_factory(series, "1.0.0", big)
    with pytest.raises(CkanPublishError) as exc:
        publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it", policy=FAST)
    assert str(exc.value) == "resource_create: upload: File upload too large"
    assert exc.value.retryable is False
    ds = api(ckan).action.package_show(id=f"{series}-v1-0-0")
    assert ds["private"] is True and ds["resources"] == []


def test_published_version_is_immutable(ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          policy=FAST)
    changed = pkg / "data" / "table.csv"
    changed.write_bytes(table_csv(seed=9))
    descriptor = json.loads((pkg / "datapackage.json").read_text("utf-8"))
    descriptor["resources"][0]["hash"] = "sha256:" + sha256(changed.read_bytes())
    descriptor["resources"][0]["bytes"] = len(changed.read_bytes())
    (pkg / "datapackage.json").write_text(json.dumps(descriptor), "utf-8")
    with pytest.raises(CkanPublishError) as exc:
        publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                        policy=FAST)
    assert exc.value.action == "verify" and "immutable" in str(exc.value)
    r = api(ckan, token=False).action.package_show(id=res.dataset_name)["resources"][0]
    assert anonymous_bytes(r["url"])[1] == table_csv()


def test_search_backend_down_gives_a_retryable_5xx_and_a_rerun_completes(
        ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    ckan.stop_solr()
    try:
        with pytest.raises(CkanPublishError) as exc:
            publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                            policy=FAST)
    finally:
        ckan.restart()
    err = exc.value
    assert err.retryable is True and err.field == "HTTP 500"
    assert err.action in ("group_create", "package_create"), str(err)
    assert err.detail.startswith("Search Index Error: Unable to add package to search index")
    with pytest.raises((ckanapi.NotFound, ckanapi.NotAuthorized)):
        api(ckan, token=False).action.package_show(id=f"{series}-v1-0-0")
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          policy=FAST)
    assert res.verified and res.public and len(res.resources) == 3


def test_a_rebuilt_package_takes_over_its_unfinished_private_version_but_not_a_public_one(
        ckan, series, package_factory):
    future = datetime.now(UTC) + timedelta(days=1)
    first = package_factory(series, "1.0.0", table_csv(seed=1))
    r1 = publish_package(first, url=ckan.url, token=ckan.token, organization="ashyq-it",
                         embargo=future, policy=FAST)
    assert not r1.public
    rebuilt = package_factory(series, "1.0.0", table_csv(rows=4, seed=2))  # new id, new bytes
    r2 = publish_package(rebuilt, url=ckan.url, token=ckan.token, organization="ashyq-it",
                         policy=FAST)
    assert r2.public and r2.verified and r2.dataset_id == r1.dataset_id
    ds = api(ckan, token=False).action.package_show(id=r2.dataset_name)
    assert ds["datapackage_id"] == json.loads(
        (rebuilt / "datapackage.json").read_text("utf-8"))["id"]
    assert ds.get("embargo_until") in ("", None)  # the embargo was lifted
    table = next(r for r in ds["resources"] if r["name"] == "data/table.csv")
    assert anonymous_bytes(table["url"])[1] == table_csv(rows=4, seed=2)
    assert len(ds["resources"]) == 3

    third = package_factory(series, "1.0.0", table_csv(rows=5, seed=3))
    with pytest.raises(CkanPublishError) as exc:
        publish_package(third, url=ckan.url, token=ckan.token, organization="ashyq-it",
                        policy=FAST)
    assert "already published from data package" in str(exc.value)
    assert "immutable" in str(exc.value) and exc.value.retryable is False


def test_a_bogus_token_on_an_unfinished_private_version_is_an_authorization_error(
        ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    future = datetime.now(UTC) + timedelta(days=1)
    publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                    embargo=future, policy=FAST)
    with pytest.raises(CkanPublishError) as exc:
        publish_package(pkg, url=ckan.url, token="expired-token", organization="ashyq-it",
                        policy=FAST)
    assert exc.value.action == "package_show" and exc.value.field == "authorization"
    assert "HTTP 403" in exc.value.reason and exc.value.retryable is False


def test_an_editor_publishes_and_a_slug_hidden_in_another_organization_is_a_name_clash(
        ckan, series, package_factory):
    admin = api(ckan)
    user = f"editor-{uuid.uuid4().hex[:8]}"
    admin.action.user_create(name=user, email=f"{user}@example.invalid",
                             password=uuid.uuid4().hex + "Aa1!")
    for org in ("ashyq-it", "ashyq-other"):
        try:
            admin.action.organization_show(id=org)
        except ckanapi.NotFound:
            admin.action.organization_create(name=org)
    admin.action.organization_member_create(id="ashyq-it", username=user, role="editor")
    token = admin.action.api_token_create(user=user, name="it")["token"]
    admin.action.group_create(name=series)  # editors may not create groups by default
    admin.action.group_member_create(id=series, username=user, role="member")

    res = publish_package(package_factory(series, "1.0.0"), url=ckan.url, token=token,
                          organization="ashyq-it", policy=FAST)
    assert res.public and res.verified

    admin.action.package_create(
        name=f"{series}-v2-0-0", owner_org="ashyq-other", private=True,
        title_translated={"kk": "x", "ru": "y", "en": "z"},
        notes_translated={"kk": "x", "ru": "y", "en": "z"})
    with pytest.raises(CkanPublishError) as exc:
        publish_package(package_factory(series, "2.0.0"), url=ckan.url, token=token,
                        organization="ashyq-it", policy=FAST)
    assert str(exc.value).startswith("package_create: name: That URL is already in use")
    assert "may not read it" in str(exc.value)
