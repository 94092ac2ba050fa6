"""Where a published version lives, for citations: one rule for the package, the pages and CKAN.

A citation must point at an address every reader can reach. The version's public page
(``ASHYQ_PUBLIC_BASE_URL/v/SERIES/VERSION``) when that base URL is a public address; otherwise,
when a CKAN is configured at a public address, the version's CKAN dataset
(``CKAN_URL/dataset/SERIES-vX-Y-Z``); otherwise (a development machine) the local page.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(url: str | None) -> bool:
    """True for an address on this machine only (127.0.0.0/8, ::1, localhost) or no address."""
    if not url:
        return True
    host = (urlsplit(str(url)).hostname or "").lower()
    if not host or host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def landing_url(settings: dict[str, Any], series: str, version: str) -> str:
    """The address a citation of ``series`` ``version`` gives (see the module docstring)."""
    from .ckan import dataset_slug

    base = str(settings.get("PUBLIC_BASE_URL") or "").rstrip("/")
    page = f"{base}/v/{series}/{version}"
    if base and not is_loopback(base):
        return page
    ckan = str(settings.get("CKAN_URL") or "").rstrip("/")
    if ckan and not is_loopback(ckan):
        return f"{ckan}/dataset/{dataset_slug(series, version)}"
    return page


__all__ = ["is_loopback", "landing_url"]
