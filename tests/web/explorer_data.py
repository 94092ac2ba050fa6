"""Published versions for the explorer and catalogue tests: synthetic protected tables (every
cell and marginal, some cells suppressed), packaged with the real packager, stored as published
releases. Protection itself is not run (it is tested elsewhere and takes minutes on this table);
the tables are made consistent by construction.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from publisher.db import transaction
from publisher.workflow_models import Release, User, utcnow

REGIONS = {"_T": ["71", "75", "79"], "71": ["7101", "7102"], "75": ["7501", "7502"],
           "79": ["7901", "7902"]}


def spec(version: str = "1.0.0", period: str = "2024", series: str = "kids") -> dict[str, Any]:
    return {
        "id": series, "version": version,
        "title": {"kk": "Мигрант балалар (синтетикалық)", "ru": "Дети-мигранты (синтетические)",
                  "en": "Migrant children (synthetic)"},
        "description": {"kk": "Синтетикалық сынақ кестесі.", "ru": "Синтетическая тестовая таблица.",
                        "en": "A synthetic test table about migrant children."},
        "reference_period": period, "source_id": "test-source", "license": "CC-BY-4.0",
        "unit": {"kk": "адам", "ru": "человек", "en": "persons"},
        "keywords": ["migration", "children"], "synthetic": True,
        "dimensions": [
            {"name": "region", "hierarchy": REGIONS, "codelist": "kz-regions",
             "title": {"kk": "Өңір", "ru": "Регион", "en": "Region"}},
            {"name": "citizenship", "codes": ["UZ", "RU"], "codelist": "iso3166",
             "title": {"kk": "Азаматтық", "ru": "Гражданство", "en": "Citizenship"}},
            {"name": "sex", "codes": ["F", "M"], "codelist": "sex",
             "title": {"kk": "Жынысы", "ru": "Пол", "en": "Sex"}},
        ],
        "disclosure": {"min_frequency": 5, "secondary": "optimal"},
    }


def protected_csv(seed: int = 1, bump: int = 0) -> tuple[bytes, dict[tuple[str, ...], int]]:
    """The protected CSV and the raw value of every cell (to check nothing suppressed leaks).
    Inner cells (7101, UZ, F) = 3 and (7501, RU, M) = 2 are primary; a sibling of each is
    secondary; (71, UZ, F) is secondary too, so Astana city (71) has a hatched tile on the map
    for citizenship UZ, sex F."""
    rng = np.random.default_rng(seed)
    leaves = [c for p in ("71", "75", "79") for c in REGIONS[p]]
    inner = {}
    for r, c, s in itertools.product(leaves, ["UZ", "RU"], ["F", "M"]):
        inner[(r, c, s)] = int(rng.integers(20, 90)) + bump
    inner[("7101", "UZ", "F")] = 3
    inner[("7501", "RU", "M")] = 2
    parents = {c: p for p, kids in REGIONS.items() for c in kids}

    def ups(code: str) -> list[str]:
        out = [code]
        while code in parents:
            code = parents[code]
            out.append(code)
        return out

    cells: dict[tuple[str, ...], int] = {}
    for (r, c, s), v in inner.items():
        for key in itertools.product(ups(r), [c, "_T"], [s, "_T"]):
            cells[key] = cells.get(key, 0) + v
    status = dict.fromkeys(cells, "F")
    status[("7101", "UZ", "F")] = status[("7501", "RU", "M")] = "C"
    for key in [("7101", "UZ", "M"), ("7102", "UZ", "F"), ("7102", "UZ", "M"), ("7101", "UZ", "_T"),
                ("7102", "UZ", "_T"), ("71", "UZ", "F"), ("71", "UZ", "M"),
                ("7501", "RU", "F"), ("7502", "RU", "M"), ("7502", "RU", "F"),
                ("7501", "RU", "_T"), ("7502", "RU", "_T"), ("7101", "RU", "F"),
                ("7102", "RU", "F"), ("7101", "_T", "F"), ("7102", "_T", "F")]:
        status[key] = "D"
    order = ["_T", "71", "7101", "7102", "75", "7501", "7502", "79", "7901", "7902"]
    lines = ["region,citizenship,sex,obs_value,obs_status,conf_status"]
    for r, c, s in itertools.product(order, ["_T", "UZ", "RU"], ["_T", "F", "M"]):
        st = status[(r, c, s)]
        val = str(cells[(r, c, s)]) if st == "F" else ""
        lines.append(f"{r},{c},{s},{val},{'A' if st == 'F' else 'Q'},{st}")
    return ("\n".join(lines) + "\n").encode(), cells


def package(spec_map: dict[str, Any], body: bytes, out: Path, base_url: str) -> Path:
    from publisher.service import package_release
    from publisher.specs import spec_from_mapping

    res = package_release(spec_from_mapping(spec_map, source="test"), body, out, report=None,
                          settings={"PUBLIC_BASE_URL": base_url,
                                    "PUBLISHER_NAME": {"kk": "Сынақ", "ru": "Тест", "en": "Test office"}})
    return Path(res.path)


def build_packages(tmp: Path, base_url: str = "http://127.0.0.1:5000") -> dict[str, Path]:
    """The data packages of both versions of ``kids`` (built once per test module)."""
    return {"1.0.0": package(spec("1.0.0", "2024"), protected_csv(seed=1)[0],
                             tmp / "kids-1.0.0", base_url),
            "1.1.0": package(spec("1.1.0", "2025"), protected_csv(seed=1, bump=1)[0],
                             tmp / "kids-1.1.0", base_url)}


def publish_versions(factory: Any, packages: dict[str, Path], *, scheduled: bool = True
                     ) -> dict[str, Any]:
    """Two published versions of ``kids`` (2024, then 2025 with changed cells), one withdrawn
    series, one scheduled (embargoed) release. Returns the raw cells of each version."""
    v1, cells1 = protected_csv(seed=1)
    v2, cells2 = protected_csv(seed=1, bump=1)
    s1, s2 = spec("1.0.0", "2024"), spec("1.1.0", "2025")
    p1, p2 = packages["1.0.0"], packages["1.1.0"]
    with transaction(factory) as s:
        u = User(username="pub-maker", display_name="P", password_hash="", active=True)
        u.set_password("pub-maker-password")
        u.set_roles(["preparer"])
        a = User(username="pub-checker", display_name="A", password_hash="", active=True)
        a.set_password("pub-checker-password")
        a.set_roles(["approver"])
        s.add_all([u, a])
        s.flush()
        common = {"upload_name": "x.csv", "upload_sha256": "", "content_rev": 1,
                  "prepared_by_id": u.id, "approved_by_id": a.id, "approved_rev": 1}
        r1 = Release(series="kids", version="1.0.0", kind="initial", state="superseded",
                     title=s1["title"], spec=s1, protected_csv=v1, package_path=str(p1),
                     published_at=utcnow() - timedelta(days=30), **common)
        s.add(r1)
        s.flush()
        r2 = Release(series="kids", version="1.1.0", kind="revision", state="published",
                     title=s2["title"], spec=s2, protected_csv=v2, package_path=str(p2),
                     previous_id=r1.id, notice="The 2025 figures.",
                     published_at=utcnow() - timedelta(days=1), **common)
        s.add(r2)
        other = spec("1.0.0", "2023", series="old-flows")
        other["title"] = {"kk": "Көші-қон ағындары", "ru": "Миграционные потоки",
                          "en": "Migration flows"}
        other["description"] = {"kk": "Ағындар кестесі.", "ru": "Таблица потоков.",
                                "en": "A table of flows."}
        other["keywords"] = ["flows"]
        other["source_id"] = "other-source"
        s.add(Release(series="old-flows", version="1.0.0", kind="initial", state="withdrawn",
                      title=other["title"], spec=other, protected_csv=v1,
                      published_at=utcnow() - timedelta(days=60),
                      withdrawn_reason="wrong input", **common))
        if scheduled:
            secret = spec("1.0.0", "2026", series="secret-series")
            secret["title"] = {"kk": "Болашақ кесте", "ru": "Будущая таблица", "en": "Future table"}
            s.add(Release(series="secret-series", version="1.0.0", kind="initial",
                          state="scheduled", title=secret["title"], spec=secret,
                          protected_csv=v2, embargo_at=utcnow() + timedelta(days=7), **common))
    return {"cells1": cells1, "cells2": cells2, "csv1": v1, "csv2": v2}


def noise_release(factory: Any) -> None:
    """A published noise table (obs_moe) without a package: labels from the spec's code lists."""
    sp = spec("1.0.0", "2024", series="noisy")
    sp["disclosure"] = {"noise": {"mechanism": "geometric", "epsilon": 1.0}}
    lines = ["region,citizenship,sex,obs_value,obs_status,conf_status,obs_moe"]
    order = ["_T", "71", "7101", "7102", "75", "7501", "7502", "79", "7901", "7902"]
    for i, (r, c, s) in enumerate(itertools.product(order, ["_T", "UZ", "RU"], ["_T", "F", "M"])):
        lines.append(f"{r},{c},{s},{100 + i},A,F,{7 + i % 3}")
    with transaction(factory) as s:
        u = s.query(User).filter_by(username="pub-maker").one()
        a = s.query(User).filter_by(username="pub-checker").one()
        s.add(Release(series="noisy", version="1.0.0", kind="initial", state="published",
                      title=sp["title"], spec=sp, protected_csv=("\n".join(lines) + "\n").encode(),
                      upload_name="x.csv", upload_sha256="", content_rev=1, prepared_by_id=u.id,
                      approved_by_id=a.id, approved_rev=1, published_at=utcnow()))
