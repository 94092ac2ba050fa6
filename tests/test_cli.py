"""The command-line contract: exit codes and one-line refusals naming file, row, column, reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from disclosure.report import report_from_dict

SAMPLE = Path(__file__).resolve().parent.parent / "config" / "sample"

PUBLISHER = [sys.executable, "-m", "publisher.cli"]
SPEC = {
    "id": "tiny", "version": "1.0.0", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "dimensions": [{"name": "region", "codes": ["A", "B", "C"]}, {"name": "sex", "codes": ["F", "M"]}],
    "disclosure": {"min_frequency": 3, "secondary": "heuristic"},
}
GOOD = "region,sex,obs_value\nA,F,10\nA,M,12\nB,F,1\nB,M,9\nC,F,14\nC,M,8\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PUBLISHER, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "ASHYQ_OUTPUT_DIR": str(cwd / "out"),
                               "ASHYQ_DATABASE_URL": f"sqlite:///{cwd / 'db.sqlite'}",
                               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC), "utf-8")
    (tmp_path / "in.csv").write_text(GOOD, "utf-8")
    return tmp_path


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p.stdout
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help_explains_each_command(tmp_path: Path):
    p = run("--help", cwd=tmp_path)
    assert p.returncode == 0
    for cmd in ("protect", "package", "publish", "demo"):
        assert cmd in p.stdout
        sub = run(cmd, "--help", cwd=tmp_path)
        assert sub.returncode == 0 and "Usage:" in sub.stdout and len(sub.stdout) > 200


def test_protect_writes_every_cell_with_flags_and_a_report(files: Path):
    p = run("protect", "spec.yaml", "in.csv", "-o", "out.csv", "--report", "rep.json", cwd=files)
    assert p.returncode == 0, p.stderr
    lines = (files / "out.csv").read_text().splitlines()
    assert lines[0] == "region,sex,obs_value,obs_status,conf_status"
    assert len(lines) == 1 + 4 * 3
    row = next(ln for ln in lines if ln.startswith("B,F,"))
    assert row == "B,F,,Q,C"  # the primary cell is suppressed: empty value, flagged
    rep = json.loads((files / "rep.json").read_text("utf-8"))  # the typed report's JSON form
    assert (rep["schema_version"], rep["method"]) == (1, "suppression")
    typed = report_from_dict(rep)
    assert typed.primary.cells == 1 and typed.audit.passed and typed.cells == 12


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("region,gender,obs_value\nA,F,1\n", "in.csv, column sex: missing column 'sex' (expected columns: region, sex, obs_value)"),
        ("region,sex,obs_value\nA,F,10\nA,M,x1\n", "in.csv, row 3, column obs_value: the count 'x1' is not a number"),
        ("region,sex,obs_value\nA,F,10\nA,M,-2\n", "in.csv, row 3, column obs_value: the count '-2' is negative"),
        ("region,sex,obs_value\nA,F,2.5\n", "in.csv, row 2, column obs_value: the count '2.5' is not a whole number"),
        ("region,sex,obs_value\nA,F,10\nZ,M,2\n", "in.csv, row 3, column region: 'Z' is not a code of dimension 'region'"),
        ("region,sex,obs_value\nA,F,10\n_T,F,11\n", "in.csv, row 3, column obs_value: the total (region=_T, sex=F) does not equal the sum of its parts"),
        ("", "in.csv: the file is empty"),
    ],
)
def test_protect_refuses_bad_input_in_one_line(files: Path, content: str, expected: str):
    (files / "in.csv").write_text(content, "utf-8")
    line = one_line_error(run("protect", "spec.yaml", "in.csv", "-o", "out.csv", cwd=files))
    assert line.startswith(f"error: {expected}")
    assert not (files / "out.csv").exists()


def test_protect_refuses_a_missing_file_and_a_bad_spec(files: Path):
    line = one_line_error(run("protect", "spec.yaml", "nope.csv", "-o", "out.csv", cwd=files))
    assert line == "error: nope.csv: no such file"
    bad = dict(SPEC, disclosure={"min_frequency": 1})
    (files / "bad.yaml").write_text(yaml.safe_dump(bad), "utf-8")
    line = one_line_error(run("protect", "bad.yaml", "in.csv", "-o", "out.csv", cwd=files))
    assert line == "error: bad.yaml: disclosure.min_frequency: must be at least 2"
    (files / "bad.yaml").write_text("id: [unclosed", "utf-8")
    assert "bad.yaml: line" in one_line_error(run("protect", "bad.yaml", "in.csv", "-o", "o.csv", cwd=files))


def test_package_refuses_a_missing_file_and_a_bad_spec(files: Path):
    line = one_line_error(run("package", "nope.yaml", "in.csv", "-o", "pkg", cwd=files))
    assert line == "error: nope.yaml: (file): no such file"
    bad = dict(SPEC, id="Not A Slug")
    (files / "bad.yaml").write_text(yaml.safe_dump(bad), "utf-8")
    line = one_line_error(run("package", "bad.yaml", "in.csv", "-o", "pkg", cwd=files))
    assert line == "error: bad.yaml: id: must be a slug: a-z 0-9 - _"
    assert not (files / "pkg").exists()


def test_package_refuses_a_protected_csv_with_a_wrong_column(files: Path):
    p = run("protect", "spec.yaml", "in.csv", "-o", "out.csv", cwd=files)
    assert p.returncode == 0, p.stderr
    text = (files / "out.csv").read_text().replace("conf_status", "conf")
    (files / "bad.csv").write_text(text, "utf-8")
    line = one_line_error(run("package", "spec.yaml", "bad.csv", "-o", "pkg", cwd=files))
    assert "bad.csv" in line and "conf" in line
    assert not (files / "pkg").exists()
    line = one_line_error(run("package", "spec.yaml", "missing.csv", "-o", "pkg", cwd=files))
    assert "missing.csv" in line


@pytest.mark.slow
def test_demo_runs_end_to_end_to_a_local_folder(tmp_path: Path):
    p = run("demo", "--output", str(tmp_path / "demo"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "SYNTHETIC" in p.stdout
    published = tmp_path / "demo" / "published"
    for series in ("demo-migrant-children", "demo-migrant-children-family"):
        d = published / series / "1.0.0"
        assert (d / "datapackage.json").is_file(), list(published.rglob("*"))
    assert SAMPLE.joinpath("children.csv").is_file()


def test_noise_spends_the_budget_until_it_is_refused(files: Path):
    noisy = dict(SPEC, disclosure={"noise": {"mechanism": "geometric", "epsilon": 2.0}},
                 source_id="src", reference_period="2025")
    (files / "dp.yaml").write_text(yaml.safe_dump(noisy), "utf-8")
    # adapted (issue 13): the source is registered first; without --budget it gets the
    # EPSILON_BUDGET setting's 4.0 per reference period
    p = run("source", "add", "src", cwd=files)
    assert p.returncode == 0, p.stderr
    for i in (1, 2):
        p = run("protect", "dp.yaml", "in.csv", "-o", f"o{i}.csv", "--report", f"r{i}.json", cwd=files)
        assert p.returncode == 0, p.stderr
        assert f"budget left {4 - 2 * i:g} of 4" in p.stderr
    line = one_line_error(run("protect", "dp.yaml", "in.csv", "-o", "o3.csv", cwd=files))
    assert "privacy budget exceeded" in line and "0 of 4 remains" in line
    assert not (files / "o3.csv").exists()
    header = (files / "o1.csv").read_text().splitlines()[0]
    assert header == "region,sex,obs_value,obs_status,conf_status,obs_moe,obs_lower,obs_upper"
    rep = report_from_dict(json.loads((files / "r2.json").read_text("utf-8")))
    assert rep.method == "noise" and rep.privacy.epsilon == 2.0
    assert (rep.privacy.budget.spent, rep.privacy.budget.remaining) == (4.0, 0.0)


def test_epsilon_above_the_ceiling_is_refused(files: Path):
    noisy = dict(SPEC, disclosure={"noise": {"mechanism": "geometric", "epsilon": 9.0}})
    (files / "dp.yaml").write_text(yaml.safe_dump(noisy), "utf-8")
    line = one_line_error(run("protect", "dp.yaml", "in.csv", "-o", "o.csv", cwd=files))
    assert "epsilon 9 is above the ceiling 5" in line
