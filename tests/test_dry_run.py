"""``publisher protect --dry-run``: the accuracy of a noise release per epsilon and what it would
spend, before anything is drawn or charged; the figures depend on the code lists, never the data."""

from __future__ import annotations

import math

import yaml
from click.testing import CliRunner

from disclosure.noise import expected_accuracy, protect_noise
from disclosure.table import read_cells
from publisher.cli import main
from publisher.service import read_table_bytes
from publisher.specs import spec_from_mapping

SPEC = {
    "id": "noisy", "version": "1.0.0", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "source_id": "src", "reference_period": "2025",
    "dimensions": [{"name": "region", "hierarchy": {"_T": ["A", "B"], "A": ["A1", "A2"],
                                                    "B": ["B1", "B2", "B3"]}},
                   {"name": "sex", "codes": ["F", "M"]}],
    "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}},
}
TABLE = "region,sex,obs_value\n" + "".join(
    f"{r},{s},{v}\n" for (r, s), v in zip(
        [(r, s) for r in ("A1", "A2", "B1", "B2", "B3") for s in ("F", "M")],
        [10, 12, 1, 9, 14, 8, 0, 3, 40, 2], strict=True))


def test_expected_accuracy_is_data_independent_and_matches_the_release() -> None:
    spec = spec_from_mapping(SPEC)
    acc = expected_accuracy(spec)
    assert [a.level for a in acc] == ["inner", "region@1", "region@2", "sex@1", "other", "total"]
    assert sum(a.cells for a in acc) == 8 * 3  # every cell: 8 region codes x 3 sex codes
    # the release's own sd (from its measurements and data) equals the dry run's, for any data
    for scale in (1, 7):
        df = read_table_bytes(TABLE.encode(), source="t.csv")
        df["obs_value"] = (df["obs_value"].astype(int) * scale).astype(str)
        pt = protect_noise(read_cells(df, spec, "t.csv"), rng=scale)
        rep = pt.report
        inner = next(a for a in acc if a.level == "inner")
        # the half-width of the 95 % range around the estimate is the dry run's figure; a
        # published range is that range widened to hold the value, so it is no narrower
        assert math.ceil(rep.uncertainty.inner_halfwidth_median - 1e-9) == inner.moe_median
        assert rep.uncertainty.inner_moe_median >= inner.moe_median - 1
        gt = next(a for a in acc if a.level == "total")
        assert rep.uncertainty.grand_total_moe >= gt.moe_max - 1
    # a larger epsilon, a smaller margin of error; halving epsilon doubles the sd
    a1 = {a.level: a.sd_median for a in expected_accuracy(spec, 1.0)}
    a2 = {a.level: a.sd_median for a in expected_accuracy(spec, 2.0)}
    assert all(a2[k] < a1[k] for k in a1)
    assert math.isclose(a1["inner"] / a2["inner"], 2.0, rel_tol=0.15)


def test_cli_dry_run_draws_and_charges_nothing(tmp_path, monkeypatch) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("ASHYQ_DATABASE_URL", db_url)
    spec_path, table_path = tmp_path / "spec.yaml", tmp_path / "in.csv"
    spec_path.write_text(yaml.safe_dump(SPEC, allow_unicode=True), "utf-8")
    table_path.write_text(TABLE, "utf-8")
    run = CliRunner().invoke
    r = run(main, ["source", "add", "src", "--budget", "3"])
    assert r.exit_code == 0, r.output
    r = run(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "nothing drawn, charged or written" in out
    assert "1 (spec) |" in out and "0.1 |" in out
    assert ("budget of source src, period 2025 (in epsilon): 0 of 3 spent; this draw would "
            "spend 1 and leave 2") in out
    # no raw count is printed: the figures are margins of error (±n) only
    for v in ("40", "14"):
        assert f" {v} " not in out
    assert list(tmp_path.glob("*.csv")) == [table_path]
    r = run(main, ["source", "list"])
    assert r.stdout.strip().endswith("nothing spent"), r.stdout
    # a real run now spends, and the next dry run says so
    out_csv = tmp_path / "out.csv"
    r = run(main, ["protect", str(spec_path), str(table_path), "-o", str(out_csv)])
    assert r.exit_code == 0, r.output
    r = run(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert "1 of 3 spent; this draw would spend 1 and leave 1" in r.stdout


def test_cli_dry_run_refusals(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    spec_path, table_path = tmp_path / "spec.yaml", tmp_path / "in.csv"
    spec_path.write_text(yaml.safe_dump(SPEC, allow_unicode=True), "utf-8")
    table_path.write_text(TABLE.replace("B3,M,2", "B3,M,-2"), "utf-8")
    run = CliRunner().invoke
    r = run(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 1 and "negative" in r.output and "row 11" in r.output
    table_path.write_text(TABLE, "utf-8")
    r = run(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 1 and "src" in r.output  # unregistered source: refused like a run
    r = run(main, ["protect", str(spec_path), str(table_path)])
    assert r.exit_code == 2 and "--output" in r.output


def test_suppression_dry_run_says_there_is_nothing_to_size(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    spec = dict(SPEC, disclosure={"min_frequency": 3})
    spec_path, table_path = tmp_path / "spec.yaml", tmp_path / "in.csv"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    table_path.write_text(TABLE, "utf-8")
    r = CliRunner().invoke(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "draws no noise" in r.stdout and "suppression" in r.stdout


def test_gaussian_dry_run_sizes_rho_and_converts_a_laplace_draw_on_a_rho_source(
        tmp_path, monkeypatch) -> None:
    from disclosure.noise import zcdp_rho_for
    from publisher.budget import add_source
    from publisher.db import session_scope

    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("ASHYQ_DATABASE_URL", db_url)
    with session_scope({"DATABASE_URL": db_url}) as s:
        add_source(s, "zc", 1.0, unit="rho")
    table_path = tmp_path / "in.csv"
    table_path.write_text(TABLE, "utf-8")
    gauss = {**SPEC, "source_id": "zc", "disclosure": {"noise": {"mechanism": "gaussian",
                                                                 "rho": 0.05}}}
    spec_path = tmp_path / "g.yaml"
    spec_path.write_text(yaml.safe_dump(gauss, allow_unicode=True), "utf-8")
    r = CliRunner().invoke(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "epsilon = rho + 2*sqrt(rho*ln(1/delta)), delta = 1e-06" in out
    assert "0.05 (epsilon 1.71) (spec) |" in out  # 0.05 + 2*sqrt(0.05*ln(1e6)) = 1.71
    assert f"{zcdp_rho_for(1.0):.4g} (epsilon 1) |" in out
    assert "(in rho): 0 of 1 spent; this draw would spend 0.05 and leave 0.95" in out
    laplace = {**SPEC, "source_id": "zc"}  # epsilon 1 on a rho-source: rho 0.5
    spec_path.write_text(yaml.safe_dump(laplace, allow_unicode=True), "utf-8")
    r = CliRunner().invoke(main, ["protect", str(spec_path), str(table_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert ("this draw would spend 0.5 (epsilon^2/2: pure epsilon-DP implies epsilon^2/2-zCDP)"
            " and leave 0.5") in r.stdout
