"""Primary suppression: which cells are sensitive in themselves.

Rules: the frequency rule (``0 < n < min_frequency``; with ``zero_policy: primary`` zeros are
sensitive too), cells the statistician marks confidential by hand, and cells marked
"must publish" (never primary; refused if a rule makes them sensitive).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import R_, AshyqError
from .table import CellTable

if TYPE_CHECKING:
    from .methods.suppression import SuppressionSpec


class ProtectionImpossible(AshyqError):
    """The requested protection cannot be achieved (e.g. a must-publish cell is sensitive)."""


def primary_mask(table: CellTable, rules: SuppressionSpec) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean mask of primary-sensitive cells, and how many each rule flagged."""
    v = table.values
    k = rules.min_frequency or 0
    freq = (v > 0) & (v < k)
    zeros = (v == 0) if rules.zero_policy == "primary" else np.zeros_like(freq)
    manual = np.zeros_like(freq)
    for ref in rules.confidential:
        manual[table.cell_id(ref)] = True
    mask = freq | zeros | manual
    for ref in rules.must_publish:
        cid = table.cell_id(ref)
        if mask[cid]:
            codes = ", ".join(f"{d}={c}" for d, c in table.codes_of(cid).items())
            raise ProtectionImpossible(
                R_("cell (%(codes)s) is marked 'must publish' but is primary-sensitive; it cannot "
                   "be published"), codes=codes)
    return mask, {"frequency": int(freq.sum()), "zero": int(zeros.sum()), "manual": int(manual.sum())}


def must_publish_mask(table: CellTable, rules: SuppressionSpec) -> np.ndarray:
    mask = np.zeros(table.n_cells, dtype=bool)
    for ref in rules.must_publish:
        mask[table.cell_id(ref)] = True
    return mask
