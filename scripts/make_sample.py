"""Generate Ashyq's shipped demo sample: SYNTHETIC migrant-children tables (no real person).

Writes, under ``config/``:
- ``codelists/kz-regions.csv``: Kazakhstan's three cities of republican significance (KATO oblast
  codes 71 Astana, 75 Almaty, 79 Shymkent) and their districts, labels in kk/ru/en. District codes
  follow KATO's structure (region 2 digits + district 2 digits) but are illustrative: check them
  against the official classifier before publishing real data.
- ``sample/children.csv`` + ``children.yaml``: region (city → district) × citizenship × age group × sex.
- ``sample/family.csv`` + ``family.yaml``: region × family situation (both parents, one parent,
  unaccompanied). Its region totals equal those of the first table (linked tables).

The counts are drawn from a fixed seed so the sample is the same on every machine; this is sample
data, not privacy noise. Run: ``.venv/bin/python scripts/make_sample.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = {
    "kk": "СИНТЕТИКАЛЫҚ ДЕРЕКТЕР: демонстрацияға арналған, нақты адамдар туралы емес.",
    "ru": "СИНТЕТИЧЕСКИЕ ДАННЫЕ: для демонстрации, не о реальных людях.",
    "en": "SYNTHETIC DATA: for demonstration only, not about real people.",
}

CITIES = {
    "71": ({"kk": "Астана қаласы", "ru": "город Астана", "en": "Astana city"}, [
        ("Алматы ауданы", "район Алматы", "Almaty district"),
        ("Байқоңыр ауданы", "район Байконыр", "Baikonyr district"),
        ("Есіл ауданы", "район Есиль", "Yesil district"),
        ("Сарыарқа ауданы", "район Сарыарка", "Saryarka district"),
        ("Нұра ауданы", "район Нура", "Nura district"),
    ]),
    "75": ({"kk": "Алматы қаласы", "ru": "город Алматы", "en": "Almaty city"}, [
        ("Алатау ауданы", "Алатауский район", "Alatau district"),
        ("Алмалы ауданы", "Алмалинский район", "Almaly district"),
        ("Әуезов ауданы", "Ауэзовский район", "Auezov district"),
        ("Бостандық ауданы", "Бостандыкский район", "Bostandyk district"),
        ("Жетісу ауданы", "Жетысуский район", "Zhetysu district"),
        ("Медеу ауданы", "Медеуский район", "Medeu district"),
        ("Наурызбай ауданы", "Наурызбайский район", "Nauryzbay district"),
        ("Түрксіб ауданы", "Турксибский район", "Turksib district"),
    ]),
    "79": ({"kk": "Шымкент қаласы", "ru": "город Шымкент", "en": "Shymkent city"}, [
        ("Абай ауданы", "Абайский район", "Abay district"),
        ("Әл-Фараби ауданы", "Аль-Фарабийский район", "Al-Farabi district"),
        ("Еңбекші ауданы", "Енбекшинский район", "Yenbekshi district"),
        ("Қаратау ауданы", "Каратауский район", "Karatau district"),
        ("Тұран ауданы", "Туранский район", "Turan district"),
    ]),
}
CITIZENSHIP = ["UZ", "TJ", "KG", "RU", "CN", "AF", "TM", "TR"]
AGE = {
    "Y0T4": {"kk": "0–4 жас", "ru": "0–4 года", "en": "0–4 years"},
    "Y5T9": {"kk": "5–9 жас", "ru": "5–9 лет", "en": "5–9 years"},
    "Y10T14": {"kk": "10–14 жас", "ru": "10–14 лет", "en": "10–14 years"},
    "Y15T17": {"kk": "15–17 жас", "ru": "15–17 лет", "en": "15–17 years"},
}
SEX = {
    "F": {"kk": "Қыздар", "ru": "Девочки", "en": "Girls"},
    "M": {"kk": "Ұлдар", "ru": "Мальчики", "en": "Boys"},
}
FAMILY = {
    "PAR2": {"kk": "Екі ата-анасымен", "ru": "С обоими родителями", "en": "With both parents"},
    "PAR1": {"kk": "Бір ата-анасымен", "ru": "С одним родителем", "en": "With one parent"},
    "UNACC": {"kk": "Ересектердің қарауынсыз", "ru": "Без сопровождения взрослых", "en": "Unaccompanied"},
}


def hierarchy() -> dict[str, list[str]]:
    h: dict[str, list[str]] = {"_T": list(CITIES)}
    for city, (_, districts) in CITIES.items():
        h[city] = [f"{city}{i + 1:02d}" for i in range(len(districts))]
    return h


def write_codelist(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "parent", "label_kk", "label_ru", "label_en"])
        for city, (names, districts) in CITIES.items():
            w.writerow([city, "_T", names["kk"], names["ru"], names["en"]])
            for i, (kk, ru, en) in enumerate(districts):
                w.writerow([f"{city}{i + 1:02d}", city, kk, ru, en])


def base_spec(id_: str, title: dict, description: dict) -> dict:
    return {
        "id": id_,
        "version": "1.0.0",
        "title": title,
        "description": {k: f"{description[k]} {SYNTHETIC[k]}" for k in ("kk", "ru", "en")},
        "created": "2026-11-25T00:00:00Z",
        "reference_period": "2025",
        "next_release": "2027-03-31",
        "source_id": "demo-migrant-children-2025",
        "unit": {"kk": "адам", "ru": "человек", "en": "persons"},
        "keywords": {"kk": ["көші-қон", "балалар", "синтетикалық деректер"],
                     "ru": ["миграция", "дети", "синтетические данные"],
                     "en": ["migration", "children", "synthetic data"]},
        "license": "CC-BY-4.0",
        "synthetic": True,
    }


def main() -> None:
    rng = np.random.default_rng(20251125)
    h = hierarchy()
    districts = [d for city in CITIES for d in h[city]]
    write_codelist(ROOT / "config" / "codelists" / "kz-regions.csv")
    out = ROOT / "config" / "sample"
    out.mkdir(parents=True, exist_ok=True)

    cit_weight = np.array([8.0, 4.0, 3.0, 2.5, 1.2, 0.6, 0.4, 0.3])
    age_weight = np.array([1.0, 1.1, 0.9, 0.6])
    district_size = rng.gamma(2.0, 1.0, size=len(districts)) + 0.5
    rows = []
    totals = {}
    for di, d in enumerate(districts):
        tot = 0
        for ci, c in enumerate(CITIZENSHIP):
            for ai, a in enumerate(AGE):
                for s in SEX:
                    mean = district_size[di] * cit_weight[ci] * age_weight[ai] * 3.0
                    n = int(rng.poisson(mean))
                    rows.append([d, c, a, s, n])
                    tot += n
        totals[d] = tot
    with (out / "children.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["region", "citizenship", "age", "sex", "obs_value"])
        w.writerows(rows)

    fam_p = np.array([0.78, 0.19, 0.03])
    with (out / "family.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["region", "family", "obs_value"])
        for d in districts:
            for code, n in zip(FAMILY, rng.multinomial(totals[d], fam_p), strict=True):
                w.writerow([d, code, int(n)])

    region_dim = {"name": "region", "hierarchy": h, "codelist": "kz-regions",
                  "title": {"kk": "Өңір", "ru": "Регион", "en": "Region"}}
    children = base_spec(
        "demo-migrant-children",
        {"kk": "Мигрант балалар: өңір, азаматтық, жас және жыныс бойынша (синтетикалық)",
         "ru": "Дети-мигранты по регионам, гражданству, возрасту и полу (синтетические)",
         "en": "Migrant children by region, citizenship, age and sex (synthetic)"},
        {"kk": "Мигрант балалар саны, 2025 жыл.", "ru": "Число детей-мигрантов, 2025 год.",
         "en": "Number of migrant children, 2025."},
    )
    children["dimensions"] = [
        region_dim,
        {"name": "citizenship", "codes": CITIZENSHIP, "codelist": "iso3166",
         "title": {"kk": "Азаматтық", "ru": "Гражданство", "en": "Citizenship"}},
        {"name": "age", "codes": list(AGE), "labels": AGE,
         "title": {"kk": "Жас тобы", "ru": "Возрастная группа", "en": "Age group"}},
        {"name": "sex", "codes": list(SEX), "labels": SEX,
         "title": {"kk": "Жынысы", "ru": "Пол", "en": "Sex"}},
    ]
    children["measure"] = "obs_value"
    children["disclosure"] = {"min_frequency": 5, "secondary": "optimal"}
    family = base_spec(
        "demo-migrant-children-family",
        {"kk": "Мигрант балалар: өңір және отбасылық жағдай бойынша (синтетикалық)",
         "ru": "Дети-мигранты по регионам и семейному положению (синтетические)",
         "en": "Migrant children by region and family situation (synthetic)"},
        {"kk": "Мигрант балалар саны, отбасылық жағдайы бойынша, 2025 жыл.",
         "ru": "Число детей-мигрантов по семейному положению, 2025 год.",
         "en": "Number of migrant children by family situation, 2025."},
    )
    family["dimensions"] = [
        region_dim,
        {"name": "family", "codes": list(FAMILY), "labels": FAMILY,
         "title": {"kk": "Отбасылық жағдайы", "ru": "Семейное положение", "en": "Family situation"}},
    ]
    family["measure"] = "obs_value"
    family["disclosure"] = {"min_frequency": 5, "secondary": "optimal"}
    header = "# SYNTHETIC demo spec generated by scripts/make_sample.py: edit the script, not this file.\n"
    for name, spec in (("children.yaml", children), ("family.yaml", family)):
        (out / name).write_text(header + yaml.safe_dump(spec, allow_unicode=True, sort_keys=False),
                                encoding="utf-8")
    print(f"wrote {len(rows)} + {len(districts) * len(FAMILY)} inner cells under {out}")


if __name__ == "__main__":
    main()
