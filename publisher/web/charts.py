"""Server-rendered SVG for the public pages: a bar or line chart of the explorer's view, a tile
map (grid cartogram) of Kazakhstan's regions, and the time series of a periodic series.

Every text is escaped; suppressed cells are drawn as a mark (never a bar or a colour made up from
a guessed value) and a suppressed region is hatched. No open-licence boundaries of Kazakhstan's
regions ship in a registry package (npm ``world-atlas`` has countries only, and the 2022 regions
Abai, Zhetisu and Ulytau are missing from older admin-1 sets), so the map is a tile map: one
square per region, placed roughly where the region lies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour-blind-safe categorical palette (Okabe & Ito), dark enough on white for 3:1 contrast.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00", "#56b4e9", "#000000",
           "#e69f00")
# Sequential blues for the map, light to dark (5 classes).
BLUES = ("#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
NO_DATA = "#f0f0f0"


@dataclass(frozen=True)
class Tile:
    code: str        # KATO code of the region (first level)
    col: int
    row: int
    short: str       # a 3-letter tag drawn in the tile
    names: dict[str, str]


# KATO codes of Kazakhstan's 17 regions and 3 cities of republican significance (since 2022),
# laid out west→east, north→south. Check codes against the official KATO classifier.
KZ_TILES: tuple[Tile, ...] = (
    Tile("59", 3, 0, "СҚО", {"kk": "Солтүстік Қазақстан облысы", "ru": "Северо-Казахстанская область", "en": "North Kazakhstan Region"}),
    Tile("55", 4, 0, "ПВЛ", {"kk": "Павлодар облысы", "ru": "Павлодарская область", "en": "Pavlodar Region"}),
    Tile("27", 0, 1, "БҚО", {"kk": "Батыс Қазақстан облысы", "ru": "Западно-Казахстанская область", "en": "West Kazakhstan Region"}),
    Tile("15", 1, 1, "АҚТ", {"kk": "Ақтөбе облысы", "ru": "Актюбинская область", "en": "Aktobe Region"}),
    Tile("39", 2, 1, "ҚОС", {"kk": "Қостанай облысы", "ru": "Костанайская область", "en": "Kostanay Region"}),
    Tile("11", 3, 1, "АҚМ", {"kk": "Ақмола облысы", "ru": "Акмолинская область", "en": "Akmola Region"}),
    Tile("71", 4, 1, "АСТ", {"kk": "Астана қаласы", "ru": "город Астана", "en": "Astana city"}),
    Tile("10", 5, 1, "АБА", {"kk": "Абай облысы", "ru": "Абайская область", "en": "Abai Region"}),
    Tile("63", 6, 1, "ШҚО", {"kk": "Шығыс Қазақстан облысы", "ru": "Восточно-Казахстанская область", "en": "East Kazakhstan Region"}),
    Tile("23", 0, 2, "АТР", {"kk": "Атырау облысы", "ru": "Атырауская область", "en": "Atyrau Region"}),
    Tile("43", 1, 2, "ҚЫЗ", {"kk": "Қызылорда облысы", "ru": "Кызылординская область", "en": "Kyzylorda Region"}),
    Tile("62", 2, 2, "ҰЛТ", {"kk": "Ұлытау облысы", "ru": "Улытауская область", "en": "Ulytau Region"}),
    Tile("35", 3, 2, "ҚАР", {"kk": "Қарағанды облысы", "ru": "Карагандинская область", "en": "Karaganda Region"}),
    Tile("33", 4, 2, "ЖТС", {"kk": "Жетісу облысы", "ru": "Жетысуская область", "en": "Zhetisu Region"}),
    Tile("47", 0, 3, "МАҢ", {"kk": "Маңғыстау облысы", "ru": "Мангистауская область", "en": "Mangystau Region"}),
    Tile("61", 1, 3, "ТҮР", {"kk": "Түркістан облысы", "ru": "Туркестанская область", "en": "Turkestan Region"}),
    Tile("79", 2, 3, "ШЫМ", {"kk": "Шымкент қаласы", "ru": "город Шымкент", "en": "Shymkent city"}),
    Tile("31", 3, 3, "ЖАМ", {"kk": "Жамбыл облысы", "ru": "Жамбылская область", "en": "Zhambyl Region"}),
    Tile("19", 4, 3, "АЛО", {"kk": "Алматы облысы", "ru": "Алматинская область", "en": "Almaty Region"}),
    Tile("75", 5, 3, "АЛА", {"kk": "Алматы қаласы", "ru": "город Алматы", "en": "Almaty city"}),
)
TILE_CODES = frozenset(t.code for t in KZ_TILES)


def fmt(value: float | None) -> str:
    """A count as people read it: 12 345 (thin no-break space), decimals only when there are."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:,.1f}".replace(",", "\u202f")


@dataclass(frozen=True)
class Series:
    """One line or one colour of bars: its label and a value per category (None: suppressed)."""

    label: str
    values: Sequence[float | None]


def _svg_open(width: int, height: int, title: str, desc: str = "", uid: str = "chart") -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-labelledby="{uid}-t {uid}-d">',
            f'<title id="{uid}-t">{escape(title)}</title>',
            f'<desc id="{uid}-d">{escape(desc)}</desc>']


def _legend(series: Sequence[Series], y: int, width: int) -> tuple[list[str], int]:
    parts, x, row = [], 10, 0
    for k, s in enumerate(series):
        w = 22 + 7 * min(len(s.label), 40)
        if x + w > width - 10 and x > 10:
            x, row = 10, row + 1
        yy = y + row * 18
        parts.append(f'<rect x="{x}" y="{yy}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 16}" y="{yy + 11}" font-size="12">{escape(s.label[:40])}</text>')
        x += w
    return parts, (row + 1) * 18 if series else 0


def bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
              suppressed_mark: str = "×", desc: str = "", uid: str = "chart") -> Markup:
    """Horizontal grouped bars: one group per category, one bar per series."""
    if not categories or not series:
        return Markup("")
    width, left, bar_h, gap = 640, 200, 14, 10
    group_h = bar_h * len(series) + gap
    legend, legend_h = _legend(series if len(series) > 1 else [], 0, width)
    top = 8 + legend_h
    height = top + group_h * len(categories) + 10
    finite = [v for s in series for v in s.values if v is not None and not math.isnan(v)]
    peak = max(finite, default=1) or 1
    parts = _svg_open(width, height, title, desc, uid)
    parts += legend
    for i, cat in enumerate(categories):
        y0 = top + i * group_h
        parts.append(f'<text x="{left - 6}" y="{y0 + group_h / 2 + 2:.0f}" text-anchor="end" '
                     f'font-size="12">{escape(cat[:32])}</text>')
        for k, s in enumerate(series):
            v = s.values[i]
            y = y0 + k * bar_h
            if v is None or math.isnan(v):
                parts.append(f'<text x="{left + 4}" y="{y + bar_h - 3}" font-size="12" '
                             f'fill="#8b1a1a" class="bar-suppressed">{escape(suppressed_mark)}</text>')
                continue
            w = max(1.0, (width - left - 80) * max(v, 0) / peak)
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(s.label)}: '
                         f'{escape(cat)} = {escape(fmt(v))}</title></rect>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" font-size="11">'
                         f'{escape(fmt(v))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def line_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
               suppressed_mark: str = "×", desc: str = "", uid: str = "chart") -> Markup:
    """Lines over the categories (x axis); a suppressed point breaks the line and is marked."""
    if not categories or not series:
        return Markup("")
    width, left, right, bottom = 640, 60, 20, 70
    legend, legend_h = _legend(series if len(series) > 1 else [], 0, width)
    top = 12 + legend_h
    plot_h = 220
    height = top + plot_h + bottom
    finite = [v for s in series for v in s.values if v is not None and not math.isnan(v)]
    peak = max(finite, default=1) or 1
    n = len(categories)
    step = (width - left - right) / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (i * step if n > 1 else (width - left - right) / 2), top + plot_h * (1 - max(v, 0) / peak)

    parts = _svg_open(width, height, title, desc, uid)
    parts += legend
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#4a5568"/>')
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.0f}" text-anchor="end" font-size="11">'
                     f'{escape(fmt(round(peak * frac)))}</text>')
    for i, cat in enumerate(categories):
        x = left + (i * step if n > 1 else (width - left - right) / 2)
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="end" font-size="11" '
                     f'transform="rotate(-30 {x:.1f} {top + plot_h + 16})">{escape(cat[:24])}</text>')
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate(list(s.values) + [None]):
            if v is None or math.isnan(v):
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                                 f'points="{" ".join(run)}"/>')
                run = []
                if i < n:
                    x, _ = xy(i, 0)
                    parts.append(f'<text x="{x:.1f}" y="{top + plot_h - 4}" text-anchor="middle" '
                                 f'font-size="12" fill="#8b1a1a" class="bar-suppressed">'
                                 f'{escape(suppressed_mark)}</text>')
                continue
            x, y = xy(i, v)
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>'
                         f'{escape(s.label)}: {escape(categories[i])} = {escape(fmt(v))}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def classes(values: Sequence[float]) -> list[float]:
    """Upper bounds of up to five equal-count classes of ``values`` (published values only)."""
    vals = sorted(v for v in values if not math.isnan(v))
    if not vals:
        return []
    k = min(len(BLUES), len(set(vals)))
    bounds = []
    for j in range(1, k + 1):
        b = vals[min(len(vals) - 1, math.ceil(j * len(vals) / k) - 1)]
        if not bounds or b > bounds[-1]:
            bounds.append(b)
    return bounds


def tile_map(cells: dict[str, tuple[float, bool]], lang: str, *, title: str, desc: str,
             suppressed_text: str, no_data_text: str, uid: str = "map") -> Markup:
    """The tile map: ``cells`` maps a region code to (value, suppressed). A suppressed region is
    hatched and never coloured; a region not in the table is light grey."""
    size, gap, pad = 78, 4, 6
    cols = max(t.col for t in KZ_TILES) + 1
    rows = max(t.row for t in KZ_TILES) + 1
    bounds = classes([v for v, s in cells.values() if not s])
    legend_h = 26 * (len(bounds) + 2) + 10
    width = pad * 2 + cols * (size + gap)
    height = pad * 2 + rows * (size + gap) + legend_h
    parts = _svg_open(width, height, title, desc, uid)
    parts.append('<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
                 'patternTransform="rotate(45)"><rect width="8" height="8" fill="#ffffff"/>'
                 '<line x1="0" y1="0" x2="0" y2="8" stroke="#8b1a1a" stroke-width="3"/></pattern></defs>')

    def colour(v: float) -> str:
        for j, b in enumerate(bounds):
            if v <= b:
                return BLUES[j + (len(BLUES) - len(bounds))]
        return BLUES[-1]

    for t in KZ_TILES:
        x, y = pad + t.col * (size + gap), pad + t.row * (size + gap)
        name = t.names.get(lang) or t.names["en"]
        if t.code in cells:
            v, suppressed = cells[t.code]
            if suppressed:
                fill, text, cls, dark = "url(#hatch)", "×", "tile-suppressed", False
                what = f"{name}: {suppressed_text}"
            else:
                fill, text, cls = colour(v), fmt(v), "tile-value"
                dark = fill in BLUES[3:]
                what = f"{name}: {fmt(v)}"
        else:
            fill, text, cls, dark = NO_DATA, "", "tile-nodata", False
            what = f"{name}: {no_data_text}"
        ink = "#ffffff" if dark else "#1a202c"
        parts.append(f'<g class="tile {cls}" data-code="{escape(t.code)}"><title>{escape(what)}</title>'
                     f'<rect x="{x}" y="{y}" width="{size}" height="{size}" rx="4" fill="{fill}" '
                     f'stroke="#4a5568"/>'
                     f'<text x="{x + size / 2}" y="{y + 30}" text-anchor="middle" font-size="14" '
                     f'font-weight="600" fill="{ink}">{escape(t.short)}</text>'
                     f'<text x="{x + size / 2}" y="{y + 52}" text-anchor="middle" font-size="13" '
                     f'fill="{ink}">{escape(text)}</text></g>')
    y = pad + rows * (size + gap) + 8
    shift = len(BLUES) - len(bounds)
    shown = sorted(v for v, s in cells.values() if not s and not math.isnan(v))
    lower = -math.inf
    for j, b in enumerate(bounds):
        members = [v for v in shown if lower < v <= b]
        label = fmt(members[0]) if members[0] == members[-1] else f"{fmt(members[0])} – {fmt(members[-1])}"
        parts.append(f'<rect x="{pad}" y="{y}" width="18" height="18" fill="{BLUES[j + shift]}" stroke="#4a5568"/>'
                     f'<text x="{pad + 26}" y="{y + 14}" font-size="13">{escape(label)}</text>')
        lower, y = b, y + 26
    parts.append(f'<rect x="{pad}" y="{y}" width="18" height="18" fill="url(#hatch)" stroke="#4a5568"/>'
                 f'<text x="{pad + 26}" y="{y + 14}" font-size="13">× {escape(suppressed_text)}</text>')
    y += 26
    parts.append(f'<rect x="{pad}" y="{y}" width="18" height="18" fill="{NO_DATA}" stroke="#4a5568"/>'
                 f'<text x="{pad + 26}" y="{y + 14}" font-size="13">{escape(no_data_text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
