"""Bad input for cell suppression is refused with the code, row or key named; nothing returned."""

from __future__ import annotations

import pandas as pd
import pytest
from supp_helpers import spec_map

from disclosure.table import InputError, read_cells
from publisher.specs import SpecValidationError, spec_from_mapping

FLAT = {"name": "sex", "codes": ["F", "M"]}


def _spec(region_hierarchy, **dis):
    return spec_from_mapping(spec_map([{"name": "region", "hierarchy": region_hierarchy}, FLAT],
                                      **dis))


def test_hierarchy_cycle_is_refused():
    with pytest.raises(SpecValidationError, match="'B'.*cycle"):
        _spec({"_T": ["A"], "B": ["C"], "C": ["B"]})
    # a cycle through a code already under the root shows as a second parent, named
    with pytest.raises(SpecValidationError, match="'A' has two parents"):
        _spec({"_T": ["A"], "A": ["B"], "B": ["A"]})
    with pytest.raises(SpecValidationError, match="cycle"):
        _spec({"_T": ["A"], "A": ["_T"]})


def test_code_with_two_parents_is_refused():
    with pytest.raises(SpecValidationError, match="'B1' has two parents"):
        _spec({"_T": ["A", "B"], "A": ["B1"], "B": ["B1", "B2"]})


def test_threshold_below_two_is_refused():
    with pytest.raises(SpecValidationError, match="min_frequency"):
        _spec({"_T": ["A", "B"]}, min_frequency=1)


def _read(rows):
    spec = _spec({"_T": ["A", "B"], "A": ["A1", "A2"]})
    df = pd.DataFrame(rows, columns=["region", "sex", "obs_value"], dtype=str)
    return read_cells(df, spec, source="in.csv")


def test_cell_code_not_in_hierarchy_is_refused_with_row_and_column():
    with pytest.raises(InputError) as e:
        _read([["A1", "F", "3"], ["A9", "M", "4"]])
    assert e.value.row == 3 and e.value.column == "region" and "'A9'" in str(e.value)


def test_duplicate_cells_are_refused():
    with pytest.raises(InputError, match="duplicate cell") as e:
        _read([["A1", "F", "3"], ["B", "M", "4"], ["A1", "F", "5"]])
    assert e.value.row == 4


def test_negative_count_is_refused():
    with pytest.raises(InputError, match="negative") as e:
        _read([["A1", "F", "3"], ["B", "M", "-4"]])
    assert e.value.row == 3 and e.value.column == "obs_value"


def test_totals_that_do_not_add_up_are_refused_naming_the_cell():
    with pytest.raises(InputError, match="region=A") as e:
        _read([["A1", "F", "3"], ["A2", "F", "4"], ["A", "F", "8"]])
    assert e.value.row == 4
