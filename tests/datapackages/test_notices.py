"""A correction's notice in kk/ru/en: in the package's descriptor, read back for CKAN (the new
version's dataset carries it), and the corrected version's CKAN dataset is marked as corrected
with a link to the new one."""

from __future__ import annotations

import dataclasses
import json

import pytest

from datapackages.errors import PackageError

NOTICE = {"kk": "1-жолдағы қате түзетілді.", "ru": "Исправлена ошибка в строке 1."}


def test_the_notice_is_in_the_descriptor_in_every_language(build, spec, protected_csv):
    spec = dataclasses.replace(spec, version="1.0.1")
    res = build(spec, protected_csv, previous_version="1.0.0", notice=NOTICE)
    release = json.loads((res.path / "datapackage.json").read_text("utf-8"))["x_release"]
    assert release["previous_version"] == "1.0.0"
    assert release["notice"]["kk"] == NOTICE["kk"] and release["notice"]["ru"] == NOTICE["ru"]
    assert release["notice"]["en"] == NOTICE["kk"]  # not written in English: the default's text
    assert release["notice_languages"] == ["kk", "ru"]


def test_a_notice_without_the_default_language_is_refused(build, spec, protected_csv):
    spec = dataclasses.replace(spec, version="1.0.1")
    with pytest.raises(PackageError, match=r"notice: the text in the default language \(kk\)"):
        build(spec, protected_csv, previous_version="1.0.0", notice={"ru": "только по-русски"})
    with pytest.raises(PackageError, match="notice: unknown language 'de'"):
        build(spec, protected_csv, previous_version="1.0.0", notice={"kk": "x", "de": "y"})


class _Client:
    url = "http://ckan.example"

    def __init__(self, missing: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.missing = missing

    def call(self, action: str, data: dict, **_kw):  # noqa: ANN003, ANN201
        from publisher.ckan import CkanPublishError

        self.calls.append((action, data))
        if self.missing:
            raise CkanPublishError(action, "id", "not found: dataset")
        return {}


def test_ckan_carries_the_notice_and_marks_the_corrected_version(build, spec, protected_csv):
    from publisher import ckan

    spec = dataclasses.replace(spec, version="1.0.1")
    res = build(spec, protected_csv, previous_version="1.0.0", notice=NOTICE)
    pkg = ckan.read_package(res.path)
    assert pkg.previous_version == "1.0.0" and pkg.corrects == "1.0.0"
    assert pkg.notice == {"kk": NOTICE["kk"], "ru": NOTICE["ru"], "en": NOTICE["kk"]}
    client, said = _Client(), []
    run = ckan._Run(client, pkg, "ashyq-demo", None, said.append)
    meta = ckan._metadata(run, "1.0.0")
    assert meta["notice_translated"] == pkg.notice
    client.calls.clear()
    ckan._mark_corrected(run, {"name": pkg.dataset_name})
    (action, patch), = [c for c in client.calls if c[0] == "package_patch"]
    assert patch["id"] == ckan.dataset_slug(pkg.series, "1.0.0")
    assert patch["corrected_by"] == pkg.dataset_name
    assert patch["corrected_by_url"] == pkg.landing_url
    assert patch["notice_translated"] == pkg.notice
    # an old version that is not on this CKAN is said, not a failure
    run = ckan._Run(_Client(missing=True), pkg, "ashyq-demo", None, said.append)
    ckan._mark_corrected(run, {"name": pkg.dataset_name})
    assert "not marked as corrected" in said[-1]


def test_a_revision_does_not_mark_the_previous_version_corrected(build, spec, protected_csv):
    from publisher import ckan

    spec = dataclasses.replace(spec, version="1.1.0")
    pkg = ckan.read_package(build(spec, protected_csv, previous_version="1.0.0").path)
    assert pkg.corrects is None and pkg.notice is None
    client = _Client()
    ckan._mark_corrected(ckan._Run(client, pkg, "ashyq-demo", None, print), {"name": "x"})
    assert client.calls == []
