"""The table model: hierarchies, every marginal, additive relations, input validation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from disclosure.table import InputError, read_cells
from publisher.specs import SpecValidationError, spec_from_mapping


def spec(dims: list[dict], **disclosure) -> dict:
    return {"id": "t", "title": {"kk": "т", "ru": "т", "en": "t"}, "dimensions": dims,
            "disclosure": disclosure or {"min_frequency": 3}}


REGION = {"name": "region", "hierarchy": {"_T": ["A", "B"], "A": ["A1", "A2"], "B": ["B1"]}}
SEX = {"name": "sex", "codes": ["F", "M"]}


def frame(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "sex", "obs_value"]).astype(str)


def test_marginals_of_a_hierarchical_table_are_computed():
    s = spec_from_mapping(spec([REGION, SEX]))
    t = read_cells(frame([["A1", "F", 1], ["A1", "M", 2], ["A2", "F", 3], ["A2", "M", 4], ["B1", "F", 5], ["B1", "M", 6]]), s)
    assert t.n_cells == 6 * 3
    assert t.values[t.cell_id({})] == 21
    assert t.values[t.cell_id({"region": "A"})] == 10
    assert t.values[t.cell_id({"region": "A", "sex": "M"})] == 6
    assert t.values[t.cell_id({"sex": "F"})] == 9
    assert t.check_additive(t.values)
    # relations: region has 3 parents (_T, A, B) x 3 sex codes, sex has 1 parent x 6 region codes
    assert t.relations.shape == (3 * 3 + 6, 18)
    assert t.inner_mask.sum() == 6


def test_five_dimensions_with_a_three_level_hierarchy():
    deep = {"name": "geo", "hierarchy": {"_T": ["R1", "R2"], "R1": ["O1", "O2"], "O1": ["D1", "D2"],
                                         "O2": ["D3"], "R2": ["O3"], "O3": ["D4", "D5"]}}
    dims = [deep] + [{"name": f"d{i}", "codes": [f"c{j}" for j in range(i + 2)]} for i in range(4)]
    s = spec_from_mapping(spec(dims))
    leaves = [["D1", "D2", "D3", "D4", "D5"]] + [[f"c{j}" for j in range(i + 2)] for i in range(4)]
    rng = np.random.default_rng(1)
    rows = [[*combo, int(rng.integers(0, 20))] for combo in itertools.product(*leaves)]
    df = pd.DataFrame(rows, columns=["geo", "d0", "d1", "d2", "d3", "obs_value"]).astype(str)
    t = read_cells(df, s)
    assert t.values[0] == sum(r[-1] for r in rows)
    assert t.check_additive(t.values)
    assert t.values[t.cell_id({"geo": "R1"})] == sum(r[-1] for r in rows if r[0] in {"D1", "D2", "D3"})


def test_given_totals_that_add_up_are_accepted_and_wrong_ones_are_named():
    s = spec_from_mapping(spec([REGION, SEX]))
    ok = frame([["A1", "F", 1], ["A2", "F", 3], ["A", "F", 4], ["B1", "F", 2], ["_T", "_T", 6]])
    assert read_cells(ok, s).values[0] == 6
    bad = frame([["A1", "F", 1], ["A2", "F", 3], ["A", "F", 5], ["B1", "F", 2]])
    with pytest.raises(InputError) as e:
        read_cells(bad, s, "in.csv")
    assert e.value.row == 4 and e.value.column == "obs_value"
    assert "region=A, sex=F" in str(e.value) and "does not equal the sum" in str(e.value)
    assert "5" not in str(e.value)  # no value is quoted back


@pytest.mark.parametrize(
    ("rows", "row", "column", "reason"),
    [
        ([["A1", "F", "1"], ["X9", "F", "2"]], 3, "region", "'X9' is not a code of dimension 'region'"),
        ([["A1", "F", "1"], ["A2", "F", "two"]], 3, "obs_value", "'two' is not a number"),
        ([["A1", "F", "1.5"]], 2, "obs_value", "not a whole number"),
        ([["A1", "F", "-3"]], 2, "obs_value", "is negative"),
        ([["A1", "F", ""]], 2, "obs_value", "is empty"),
        ([["A1", "F", "1"], ["A1", "F", "2"]], 3, None, "duplicate cell (region=A1, sex=F); first given at row 2"),
    ],
)
def test_bad_cells_are_refused_with_row_column_and_reason(rows, row, column, reason):
    s = spec_from_mapping(spec([REGION, SEX]))
    with pytest.raises(InputError) as e:
        read_cells(frame(rows), s, "in.csv")
    assert e.value.row == row
    assert e.value.column == column
    assert reason in str(e.value)
    assert str(e.value).startswith("in.csv, row")


def test_wrong_and_missing_columns_are_named():
    s = spec_from_mapping(spec([REGION, SEX]))
    df = pd.DataFrame([["A1", "F", "1"]], columns=["region", "gender", "obs_value"])
    with pytest.raises(InputError, match="missing column 'sex'"):
        read_cells(df, s, "in.csv")
    df = pd.DataFrame([["A1", "F", "1", "x"]], columns=["region", "sex", "obs_value", "note"])
    with pytest.raises(InputError, match="unexpected column 'note'"):
        read_cells(df, s, "in.csv")


@pytest.mark.parametrize(
    ("dims", "disclosure", "message"),
    [
        ([{"name": "r", "hierarchy": {"_T": ["A"], "A": ["B"], "B": ["A"]}}], None, "code 'A' has two parents"),
        ([{"name": "r", "hierarchy": {"_T": ["A", "B"], "A": ["C"], "B": ["C"]}}], None, "code 'C' has two parents"),
        ([{"name": "r", "hierarchy": {"_T": ["A"], "X": ["Y"], "Y": ["X"]}}], None, "not reachable"),
        ([{"name": "r", "hierarchy": {"_T": ["A"], "A": ["_T"]}}], None, "cycle"),
        ([SEX], {"min_frequency": 1}, "disclosure.min_frequency: must be at least 2"),
        ([SEX], {"min_frequency": 3, "noise": {"mechanism": "geometric", "epsilon": 1}}, "noise and suppression"),
        ([SEX], {"noise": {"mechanism": "geometric", "epsilon": 0}}, "epsilon: must be greater than 0"),
        ([SEX, SEX], None, "dimension 'sex' is given twice"),
    ],
)
def test_specs_that_cannot_describe_a_table_are_refused(dims, disclosure, message):
    with pytest.raises(SpecValidationError) as e:
        spec_from_mapping(spec(dims, **(disclosure or {"min_frequency": 3})), "s.yaml")
    assert message in str(e.value)
    assert str(e.value).startswith("s.yaml: ")


def test_spec_title_needs_language_keys_and_clean_text():
    bad = spec([SEX])
    bad["title"] = {"kk": "a", "de": "b"}
    with pytest.raises(SpecValidationError, match="title"):
        spec_from_mapping(bad)
    bad["title"] = {"kk": "a\x07b"}
    with pytest.raises(SpecValidationError, match="control characters"):
        spec_from_mapping(bad)
