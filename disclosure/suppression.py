"""Cell suppression (foundation stage): primary suppression only.

Secondary suppression is NOT applied yet: a primary cell may be recomputable from published
totals. The report says so in ``secondary.applied = false`` and a warning; the disclosure-engine
issue replaces this module.
"""

from __future__ import annotations

import time

import numpy as np

from .primary import primary_mask
from .protect import FREE, PRIMARY, ProtectedTable, published_frame
from .table import CellTable


def protect_suppression(tables: list[CellTable]) -> list[ProtectedTable]:
    out = []
    for table in tables:
        t0 = time.perf_counter()
        rules = table.spec.disclosure
        mask, by_rule = primary_mask(table, rules)
        status = np.where(mask, PRIMARY, FREE)
        report = {
            "method": "cell suppression",
            "parameters": {"min_frequency": rules.min_frequency, "zero_policy": rules.zero_policy,
                           "secondary": rules.secondary},
            "cells": table.n_cells,
            "primary": {"cells": int(mask.sum()), "by_rule": by_rule},
            "secondary": {"applied": False, "cells": 0},
            "warnings": ["secondary suppression was not applied: primary cells may be recomputable from totals"],
            "seconds": round(time.perf_counter() - t0, 3),
        }
        out.append(ProtectedTable(table=table, published=published_frame(table, status), report=report))
    return out
