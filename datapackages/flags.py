"""The SDMX observation flags a published table carries, and what each code means (kk/ru/en).

``obs_status`` is SDMX CL_OBS_STATUS (``A`` normal, ``Q`` missing: suppressed) and
``conf_status`` SDMX CL_CONF_STATUS (``F`` free, ``C`` primary confidential, ``D`` secondary
confidentiality). A disclosure method declares which codes its tables may carry
(``DisclosureMethod.flags``); the labels live here, once, as msgids of the package-text
catalogue (:mod:`datapackages.i18n`).
"""

from __future__ import annotations

from .errors import R_, PackageError
from .i18n import N_, tr

#: ``{column: {code: msgid}}``: what each code means (msgids of the package-text catalogue)
FLAG_LABELS: dict[str, dict[str, str]] = {
    "obs_status": {
        "A": N_("Normal value"),
        "Q": N_("Missing value; suppressed"),
    },
    "conf_status": {
        "F": N_("Free (not confidential)"),
        "C": N_("Confidential statistical information (primary suppression)"),
        "D": N_("Secondary confidentiality (suppressed to protect primary cells)"),
    },
}

#: ``{column: msgid}``: the title of each flag column
FIELD_TEXT = {
    "obs_status": N_("Observation status (SDMX CL_OBS_STATUS)"),
    "conf_status": N_("Confidentiality status (SDMX CL_CONF_STATUS)"),
}


def flag_meanings(flags: dict[str, tuple[str, ...]]) -> dict[str, dict[str, dict[str, str]]]:
    """``{column: {code: {kk, ru, en}}}`` for the codes a method declares."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for col, codes in flags.items():
        known = FLAG_LABELS.get(col, {})
        missing = [c for c in codes if c not in known]
        if missing:
            raise PackageError(R_("flag %(col)s=%(missing)s has no label (labels exist for %(value)s)"), col=col, missing=repr(missing[0]), value=', '.join(known) or 'no code')
        out[col] = {c: tr(known[c]) for c in codes}
    return out
