"""A disclosure method and a download format registered from the test folder alone
(tests/web/toy_plugins.py) reach the CLI, the data package and the web review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from publisher.cli import main

from . import toy_plugins
from .conftest import TABLE
from .test_ui import _upload, client, login

TOY_SPEC = {
    "id": "toy-series",
    "version": "1.0.0",
    "title": {"kk": "Ойыншық", "ru": "Игрушка", "en": "Toy table"},
    "dimensions": [
        {"name": "region", "hierarchy": {"_T": ["R01", "R02"], "R01": ["R01D01", "R01D02"],
                                         "R02": ["R02D01", "R02D02"]}},
        {"name": "sex", "codes": ["F", "M"]},
    ],
    "disclosure": {"round_base": 5},
}


@pytest.fixture
def toys():  # noqa: ANN201
    toy_plugins.register()
    yield
    toy_plugins.unregister()


def test_toy_method_and_format_in_the_cli_and_the_package(toys, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")
    spec = tmp_path / "toy.yaml"
    spec.write_text(yaml.safe_dump(TOY_SPEC, allow_unicode=True), "utf-8")
    table = tmp_path / "in.csv"
    table.write_text(TABLE, "utf-8")
    runner = CliRunner()
    r = runner.invoke(main, ["protect", str(spec), str(table), "-o", str(tmp_path / "out.csv"),
                             "--report", str(tmp_path / "report.json")])
    assert r.exit_code == 0, r.output
    assert "rounded to multiples of 5" in r.stderr
    report = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert report["method"] == "toy-rounding" and report["round_base"] == 5
    assert report["schema_version"] == 1
    out = (tmp_path / "out.csv").read_text("utf-8").splitlines()
    assert out[0] == "region,sex,obs_value,obs_status,conf_status"
    assert all(int(line.split(",")[2]) % 5 == 0 for line in out[1:])

    r = runner.invoke(main, ["package", str(spec), str(tmp_path / "out.csv"), "-o",
                             str(tmp_path / "pkg"), "--report", str(tmp_path / "report.json")])
    assert r.exit_code == 0, r.output
    desc = json.loads((tmp_path / "pkg" / "datapackage.json").read_text("utf-8"))
    assert desc["x_method"]["method"] == "toy-rounding"
    assert desc["x_method"]["parameters"]["round_base"] == 5
    assert "multiple of 5" in desc["x_method"]["text"]["en"]
    tsv = [res for res in desc["resources"] if res.get("format") == "tsv"]
    assert [res["path"] for res in tsv] == ["downloads/toy-series.tsv"]
    body = (tmp_path / "pkg" / "downloads" / "toy-series.tsv").read_text("utf-8")
    assert body.splitlines()[0].split("\t")[:2] == ["region", "sex"]
    # the built-in formats are still there beside the toy one
    assert any(res["path"].endswith(".xlsx") for res in desc["resources"])


def test_a_mixed_spec_names_both_methods(toys, tmp_path: Path):
    from disclosure.spec_schema import SpecValidationError, spec_from_mapping

    bad = dict(TOY_SPEC, disclosure={"round_base": 5, "min_frequency": 3})
    with pytest.raises(SpecValidationError, match="suppression and toy-rounding"):
        spec_from_mapping(bad, "toy.yaml")


def test_toy_method_and_format_in_the_web_review(toys, app):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    r = _upload(c, spec=TOY_SPEC)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "toy rounding" in page
    assert "Rounding base" in page and "Cells changed" in page
    assert "Toy TSV" in page
    # the method is offered on the form, by its label
    assert "toy rounding" in c.get("/releases/new").get_data(as_text=True)
