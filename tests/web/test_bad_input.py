"""Bad and hostile input never makes a 500 or an internal-error exit: every refusal is an
``AshyqError`` mapped in one place (HTTP 422 with the place and the reason; CLI exit 1 with one
line). The cases walk the raise sites of user input: the spec schema, each method's own checks,
the table reader, the packager's metadata rules, linked protection."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from publisher.cli import main

from .conftest import SPEC, TABLE, bearer

NOISE = {"mechanism": "geometric", "epsilon": 1.0}


def _with(**changes: Any) -> dict:
    spec = copy.deepcopy(SPEC)
    for key, value in changes.items():
        spec[key] = value
    return spec


def _deep(n: int) -> Any:
    x: Any = "x"
    for _ in range(n):
        x = {"a": x}
    return x


BAD_SPECS = [
    ("weights with an unknown group", _with(disclosure={"noise": {**NOISE, "weights": {"bogus": 1}}}),
     "weights.bogus"),
    ("epsilon above the ceiling", _with(disclosure={"noise": {**NOISE, "epsilon": 9}}), "ceiling"),
    ("epsilon not a number", _with(disclosure={"noise": {**NOISE, "epsilon": "lots"}}), "epsilon"),
    ("an unknown method", _with(disclosure={"method": "nope"}), "unknown disclosure method"),
    ("no method at all", _with(disclosure={}), "min_frequency"),
    ("two methods", _with(disclosure={"min_frequency": 5, "noise": NOISE}), "noise and suppression"),
    ("disclosure not a mapping", _with(disclosure=[1, 2]), "disclosure"),
    ("a manual cell of no dimension", _with(disclosure={"min_frequency": 5,
                                                        "confidential": [{"nope": "R01"}]}),
     "no dimension 'nope'"),
    ("a title of 10,000 characters", _with(title={"en": "x" * 10_000}), "title.en"),
    ("markup in a title", _with(title={"kk": "<script>alert(1)</script>", "ru": "a", "en": "b"}),
     "markup"),
    ("a dimension twice", _with(dimensions=[SPEC["dimensions"][1], SPEC["dimensions"][1]]),
     "given twice"),
    ("nesting 200 levels deep", _with(reference_metadata={"deep": _deep(200)}), "deeper"),
    ("contributors not a list", _with(contributors="me"), "contributors"),
    ("a bad measure type", _with(measure_type="sometimes"), "measure_type"),
]

BAD_TABLES = [
    ("a negative count", TABLE.replace("R01D01,F,40", "R01D01,F,-40"), "negative"),
    ("an unknown code", TABLE.replace("R01D01,F,40", "R09D09,F,40"), "not a code"),
    ("not a number", TABLE.replace("R01D01,F,40", "R01D01,F,forty"), "not a number"),
    ("a missing column", TABLE.replace("region,sex,obs_value", "region,obs_value"), "sex"),
]


@pytest.mark.parametrize(("what", "spec", "needle"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_api_refuses_bad_specs_with_422(app, tokens, what, spec, needle):  # noqa: ANN001
    r = app.test_client().post("/api/releases", json={"spec": spec, "table_csv": TABLE},
                               headers=bearer(tokens["prep"]))
    assert r.status_code in (400, 422), (what, r.status_code, r.get_data(as_text=True)[:500])
    body = r.get_json()
    assert body["code"] and needle in json.dumps(body, ensure_ascii=False), (what, body)


@pytest.mark.parametrize(("what", "table", "needle"), BAD_TABLES, ids=[c[0] for c in BAD_TABLES])
def test_api_refuses_bad_tables_with_the_place(app, tokens, what, table, needle):  # noqa: ANN001
    r = app.test_client().post("/api/releases", json={"spec": SPEC, "table_csv": table},
                               headers=bearer(tokens["prep"]))
    assert r.status_code == 422, (what, r.status_code)
    msg = r.get_json()["message"]
    assert needle in msg and ("row" in msg or "column" in msg), msg


def _cli(tmp_path: Path, spec: Any, table: str = TABLE, *extra: str) -> Any:
    sp = tmp_path / "spec.yaml"
    sp.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, allow_unicode=True),
                  "utf-8")
    tp = tmp_path / "in.csv"
    tp.write_text(table, "utf-8")
    return CliRunner().invoke(main, ["protect", str(sp), str(tp), "-o", str(tmp_path / "o.csv"),
                                     *extra])


# protect does not read release texts (markup is refused by the packager and at upload)
CLI_SPECS = [c for c in BAD_SPECS if c[0] != "markup in a title"]


@pytest.mark.parametrize(("what", "spec", "needle"), CLI_SPECS, ids=[c[0] for c in CLI_SPECS])
def test_cli_refuses_bad_specs_with_one_line(tmp_path, monkeypatch, what, spec, needle):  # noqa: ANN001
    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 's.sqlite'}")
    r = _cli(tmp_path, spec)
    assert r.exit_code == 1, (what, r.exit_code, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "o.csv").exists()


def test_cli_refuses_yaml_bombs_and_non_mappings(tmp_path):  # noqa: ANN001
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    r = _cli(tmp_path, bomb)
    assert r.exit_code == 1 and "aliases" in r.stderr, r.output
    # an anchor used a few times is fine YAML: the spec is read (and refused for its content)
    ok = yaml.safe_dump(SPEC) + "x_again: &d [1, 2]\nx_more: *d\n"
    r = _cli(tmp_path, ok)
    assert r.exit_code == 0, r.output
    r = _cli(tmp_path, "- just\n- a list\n")
    assert r.exit_code == 1 and "must be a mapping" in r.stderr, r.output
    r = _cli(tmp_path, "id: [unclosed\n")
    assert r.exit_code == 1 and "line" in r.stderr, r.output


def test_cli_link_with_noise_is_a_refusal_not_an_internal_error(tmp_path, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 's.sqlite'}")
    noise = _with(disclosure={"noise": NOISE})
    sp = tmp_path / "n.yaml"
    sp.write_text(yaml.safe_dump(noise), "utf-8")
    tp = tmp_path / "in.csv"
    tp.write_text(TABLE, "utf-8")
    r = CliRunner().invoke(main, ["protect", str(sp), str(tp), "-o", str(tmp_path / "a.csv"),
                                  "--link", str(sp), str(tp), str(tmp_path / "b.csv")])
    assert r.exit_code == 1, r.output  # linked noise runs now; this spec names no source
    assert "source_id" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
    # a registered source, the same table linked twice: one draw, one charge, equal outputs
    assert CliRunner().invoke(main, ["source", "add", "src", "--budget", "3"]).exit_code == 0
    sp.write_text(yaml.safe_dump({**noise, "source_id": "src"}), "utf-8")
    r = CliRunner().invoke(main, ["protect", str(sp), str(tp), "-o", str(tmp_path / "a.csv"),
                                  "--link", str(sp), str(tp), str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("this release spent 1, source spent 1, budget left 2 of 3") == 2
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_cli_package_refuses_a_report_that_is_not_json(tmp_path):  # noqa: ANN001
    sp = tmp_path / "spec.yaml"
    sp.write_text(yaml.safe_dump(SPEC), "utf-8")
    (tmp_path / "r.json").write_text("{not json", "utf-8")
    (tmp_path / "p.csv").write_text("x\n", "utf-8")
    r = CliRunner().invoke(main, ["package", str(sp), str(tmp_path / "p.csv"), "-o",
                                  str(tmp_path / "pkg"), "--report", str(tmp_path / "r.json")])
    assert r.exit_code == 1 and "not a JSON report" in r.stderr, r.output


def test_ui_refuses_a_bad_spec_without_a_500(app):  # noqa: ANN001
    from .test_ui import _upload, client, login

    c = client(app)
    login(c, "prep")
    for _what, spec, _needle in BAD_SPECS:
        r = _upload(c, spec=spec)
        assert r.status_code in (302, 422), (_what, r.status_code)
        assert r.status_code != 500
