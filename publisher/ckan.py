"""Publish a built data package to CKAN: one immutable dataset per version, verified by sha256.

:func:`publish_package` is the entry point. What it guarantees:

- **One dataset per version.** The dataset slug is ``<series>-v<MAJOR>-<MINOR>-<PATCH>``; it is
  created **private** and made public only after every file is uploaded and verified (or left
  private until ``embargo``). Another version's dataset is never written to, so publishing 1.2.0
  cannot change the bytes of 1.1.0. A slug held by anything that is not this package's version
  is a name clash and is refused.
- **Series.** Each version carries ``series``, ``version``, ``version_order`` (a zero-padded
  sort key) and ``previous_version``, and is a member of the CKAN group named after the series;
  the newest public version is ``package_search(fq='series:"<series>"',
  sort='version_order desc', rows=1)`` (:func:`latest_version`).
- **Files.** Every resource file of ``datapackage.json``, the ``datapackage.json`` itself and the
  sibling ``<package_dir>.zip`` are uploaded; the resource ``hash`` is the sha256 the descriptor
  states (checked against the local bytes before anything is sent).
- **Verification.** After the push the dataset is read back and every file downloaded (with the
  token while private, anonymously once public) and its sha256 compared with the package's. A
  mismatch while private is repaired once by re-uploading; a persisting mismatch, or a mismatch
  seen anonymously, fails the publication (and a public dataset is made private again).
- **Robustness.** All calls have timeouts; reads and connection errors are retried a bounded
  number of times with exponential backoff. Writes are idempotent because every step first
  observes CKAN's state and only does what is missing: re-running after any failure completes
  the version without a duplicate dataset or resource.
- **Withdrawal.** :func:`withdraw_dataset` makes a version's dataset private again and checks,
  as an anonymous reader, that ``package_show`` is refused, search does not find it and no file
  downloads.
- **Errors.** :class:`CkanPublishError` names the CKAN action, the field and CKAN's reason, e.g.
  ``package_create: name: That URL is already in use.``, and says whether a retry can help
  (``.retryable``). Tokens never appear in messages.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import ckanapi
import requests

from disclosure.errors import R_, AshyqError, Gettext, Phrase
from disclosure.spec import LANGUAGES

LANGS = LANGUAGES
SLUG_RE = re.compile(r"^[a-z0-9_-]{2,100}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SPDX_SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
DEFAULT_ORGANIZATION = "ashyq"
FORMATS = {
    ".csv": ("CSV", "text/csv"),
    ".xlsx": ("XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".json": ("JSON", "application/json"),
    ".zip": ("ZIP", "application/zip"),
    ".pdf": ("PDF", "application/pdf"),
    ".md": ("Markdown", "text/markdown"),
    ".txt": ("TXT", "text/plain"),
}


#: Frictionless (SPDX) licence ids -> ids of CKAN's default licence register, so that CKAN knows
#: the licence (title, URL, open or not). A register that has the SPDX id itself wins.
CKAN_LICENSES = {
    "cc-by-4.0": "cc-by", "cc-by-sa-4.0": "cc-by-sa", "cc0-1.0": "cc-zero",
    "odc-by-1.0": "odc-by", "odbl-1.0": "odc-odbl", "pddl-1.0": "odc-pddl",
    "ogl-uk-3.0": "uk-ogl", "gfdl-1.3": "gfdl",
}
#: Titles and descriptions of the two files Ashyq adds beside the package's resources.
DESCRIPTOR_TEXT = (
    {"kk": "Деректер пакетінің сипаттамасы (datapackage.json)",
     "ru": "Описание пакета данных (datapackage.json)",
     "en": "Data package descriptor (datapackage.json)"},
    {"kk": "Frictionless Data Package сипаттамасы: файлдар, құрылым, лицензия.",
     "ru": "Описание Frictionless Data Package: файлы, структура, лицензия.",
     "en": "Frictionless Data Package descriptor: files, structure, licence."},
)
ZIP_TEXT = (
    {"kk": "Бүкіл деректер пакеті (ZIP)", "ru": "Весь пакет данных (ZIP)",
     "en": "The whole data package (ZIP)"},
    {"kk": "Барлық файлдары бар деректер пакеті бір zip-файлда.",
     "ru": "Пакет данных со всеми файлами одним zip-файлом.",
     "en": "The whole data package as one zip file."},
)


def ckan_license_id(license_id: str, register: set[str] | None = None) -> str:
    """CKAN's id of a Frictionless licence id: the register's own spelling when it has the id
    (case-insensitively), else the mapped id of CKAN's default register (``CC-BY-4.0`` ->
    ``cc-by``) when ``register`` is unknown (None) or has it, else ``license_id`` unchanged."""
    if register is not None:
        for known in register:
            if known.lower() == license_id.lower():
                return known
    mapped = CKAN_LICENSES.get(license_id.lower())
    if mapped and (register is None or mapped in register):
        return mapped
    return license_id


def ckan_resource_titles(files: list[LocalFile], title: dict[str, str]) -> list[LocalFile]:
    """Resource titles that differ at their start in every language: a title that is the
    dataset's title plus a qualifier (``<title> (XLSX, in Russian)``) becomes
    ``XLSX, in Russian — <title>`` (CKAN cuts titles after 25-50 characters); titles still
    shared by two files get the file's path appended."""
    out = []
    for f in files:
        titles = {}
        for lang, text in f.title_translated.items():
            base = title.get(lang, "")
            rest = text[len(base):].strip() if base and text.startswith(base) else ""
            if rest.startswith("(") and rest.endswith(")"):
                rest = rest[1:-1].strip()
            titles[lang] = f"{rest} — {base}" if rest else text
        out.append(replace(f, title_translated=titles))
    for lang in LANGS:
        seen: dict[str, int] = {}
        for f in out:
            if lang in f.title_translated:
                seen[f.title_translated[lang]] = seen.get(f.title_translated[lang], 0) + 1
        for f in out:
            if seen.get(f.title_translated.get(lang, ""), 0) > 1:
                f.title_translated[lang] = f"{f.title_translated[lang]} ({f.name})"
    return out


class CkanPublishError(AshyqError):
    """A publication that did not complete: ``<action>: <field>: <reason>``.

    ``retryable`` is True when re-running the same publication can succeed (CKAN unreachable,
    5xx, timeouts, an interrupted push); False for refusals that need a change (validation,
    permission, name clash, a published version whose bytes differ).
    """

    def __init__(self, action: str, field: str | None, reason: str, *, retryable: bool = False,
                 **params: Any):
        # ``reason`` is a template marked R_ (or CKAN's own words); ``action: field:`` prefix it
        self.action, self.field, self.retryable = action, field, retryable
        self._prefix = f"{action}: {field}: " if field else f"{action}: "
        super().__init__(reason, **params)
        self.detail = self.reason
        self.reason = self._prefix + self.reason
        self.args = (self.message,)

    def localized_reason(self, gettext: Gettext) -> str:
        return self._prefix + super().localized_reason(gettext)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``attempts`` tries per call, sleeping ``backoff * 2**i`` (capped)."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    connect_timeout: float = 5.0
    read_timeout: float = 120.0

    def delays(self) -> Iterator[float]:
        for i in range(self.attempts - 1):
            yield min(self.max_backoff, self.backoff * (2**i))


@dataclass(frozen=True)
class PublishedResource:
    name: str
    id: str
    url: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class PublishResult:
    dataset_name: str
    dataset_url: str
    dataset_id: str
    series: str
    version: str
    resources: tuple[PublishedResource, ...]
    verified: bool
    public: bool
    anonymous_verified: bool
    latest_version: str | None = None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the local package
@dataclass(frozen=True)
class LocalFile:
    name: str  # CKAN resource name: the descriptor path (posix), or the file name
    path: Path
    sha256: str
    size: int
    format: str
    mimetype: str
    description: str = ""
    title_translated: dict[str, str] = field(default_factory=dict)
    description_translated: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalPackage:
    directory: Path
    series: str
    version: str
    package_id: str
    title: dict[str, str]
    description: dict[str, str]
    license_id: str | None
    keywords: tuple[str, ...]
    files: tuple[LocalFile, ...]
    notes: tuple[str, ...] = ()
    publisher_title: str | None = None
    landing_url: str | None = None  # the address the package's citations give
    previous_version: str | None = None  # the version this one replaces (x_release)
    notice: dict[str, str] | None = None  # its correction/revision notice, per language

    @property
    def corrects(self) -> str | None:
        """The version this one corrects: a PATCH after the same MAJOR.MINOR (semver)."""
        prev = self.previous_version
        if not prev:
            return None
        a, b = prev.split("+")[0].split("."), self.version.split("+")[0].split(".")
        return prev if len(a) >= 3 and len(b) >= 3 and a[:2] == b[:2] and a != b else None

    @property
    def dataset_name(self) -> str:
        return dataset_slug(self.series, self.version)


def dataset_slug(series: str, version: str) -> str:
    """``<series>-v1-2-0`` (pre-release/build parts lowercased, non-slug characters as ``-``)."""
    v = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    return f"{series}-v{v}"


def version_order(version: str) -> str:
    """A lexically sortable key: ``1.10.0`` -> ``000001.000010.000000.~`` (release after -rc)."""
    m = SEMVER_RE.match(version)
    if not m:
        raise ValueError(version)
    major, minor, patch, pre = m.groups()
    return f"{int(major):06d}.{int(minor):06d}.{int(patch):06d}.{pre or '~'}"


def sha256_of(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _bad(field_: str, reason: str, **params: Any) -> CkanPublishError:
    return CkanPublishError("datapackage.json", field_, reason, **params)


def _translations(descriptor: dict[str, Any], key: str) -> dict[str, str]:
    """``x_translations`` in either shape: ``{key: {lang: text}}`` or ``{lang: {key: text}}``."""
    tr = descriptor.get("x_translations") or {}
    out: dict[str, str] = {}
    if isinstance(tr, dict):
        by_key = tr.get(key)
        if isinstance(by_key, dict):
            out.update({k: v for k, v in by_key.items() if isinstance(v, str) and v.strip()})
        for lang in LANGS:
            by_lang = tr.get(lang)
            if isinstance(by_lang, dict) and isinstance(by_lang.get(key), str):
                out.setdefault(lang, by_lang[key])
    value = descriptor.get(key)
    if isinstance(value, dict):  # a language object where a plain string is expected
        out.update({k: v for k, v in value.items() if isinstance(v, str) and v.strip()})
    return {k: v.strip() for k, v in out.items() if k in LANGS}


def _default_language(descriptor: dict[str, Any]) -> str:
    langs = descriptor.get("languages")
    if isinstance(langs, list) and langs and isinstance(langs[0], str) and langs[0] in LANGS:
        return langs[0]
    return "kk"


def _stated_hash(res: dict[str, Any]) -> tuple[str | None, str | None]:
    """(algorithm, hex) the descriptor states for a resource, v1/v2/frictionless-stats shapes."""
    candidates: list[Any] = [res.get("hash")]
    stats = res.get("stats")
    if isinstance(stats, dict):
        candidates += [
            f"sha256:{stats['sha256']}" if stats.get("sha256") else None,
            stats.get("hash"),
        ]
    for c in candidates:
        if not isinstance(c, str) or not c.strip():
            continue
        c = c.strip().lower()
        if ":" in c:
            algo, hexd = c.split(":", 1)
            return algo, hexd
        if SHA256_RE.match(c):
            return "sha256", c
        return "md5", c
    return None, None


def _local_file(directory: Path, rel: str, *, name: str, description: str = "",
                fmt: str | None = None, mediatype: str | None = None) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or re.match(r"^[a-z][a-z0-9+.-]*://", rel, re.I):
        raise _bad(f"resources[{name}].path", R_("%(rel)s is not a relative path inside the package"), rel=repr(rel))
    path = directory / Path(*p.parts)
    if not path.is_file():
        raise _bad(f"resources[{name}].path", R_("file %(rel)s not found in %(directory)s"), rel=repr(rel), directory=directory)
    return path


def read_package(package_dir: Path, *, series: str | None = None) -> LocalPackage:
    """Read and check a built package (no network): descriptor fields, files and their hashes."""
    directory = Path(package_dir)
    dp_path = directory / "datapackage.json"
    try:
        descriptor = json.loads(dp_path.read_text("utf-8"))
    except FileNotFoundError:
        raise CkanPublishError("datapackage.json", None, R_("%(dp_path)s not found"), dp_path=dp_path) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CkanPublishError("datapackage.json", None, R_("%(dp_path)s is not JSON: %(exc)s"), dp_path=dp_path, exc=exc) from None
    if not isinstance(descriptor, dict):
        raise _bad("(root)", R_("the descriptor must be a JSON object"))

    series = series or descriptor.get("name")
    if not isinstance(series, str) or not SLUG_RE.match(series):
        raise _bad("name", R_("%(series)s is not a series slug (2-100 of a-z 0-9 - _)"), series=repr(series))
    version = descriptor.get("version")
    if not isinstance(version, str) or not SEMVER_RE.match(version):
        raise _bad("version", R_("%(version)s is not a semantic version (MAJOR.MINOR.PATCH)"), version=repr(version))
    slug = dataset_slug(series, version)
    if len(slug) > 100:
        raise _bad("name", R_("dataset name %(slug)s is longer than CKAN's 100 characters"), slug=repr(slug))
    package_id = str(descriptor.get("id") or f"{series}@{version}")

    default_lang = _default_language(descriptor)
    title = _translations(descriptor, "title")
    if isinstance(descriptor.get("title"), str) and descriptor["title"].strip():
        title.setdefault(default_lang, descriptor["title"].strip())
    missing = [lang for lang in LANGS if lang not in title]
    if missing:
        raise _bad("x_translations.title", R_("no title in %(languages)s"),
                   languages=", ".join(missing))
    description = _translations(descriptor, "description")
    if isinstance(descriptor.get("description"), str) and descriptor["description"].strip():
        description.setdefault(default_lang, descriptor["description"].strip())

    license_id = None
    licenses = descriptor.get("licenses")
    if isinstance(licenses, list) and licenses and isinstance(licenses[0], dict):
        license_id = licenses[0].get("name") or licenses[0].get("id")
    keywords = tuple(
        k for k in descriptor.get("keywords") or [] if isinstance(k, str) and k.strip()
    )

    files: list[LocalFile] = []
    notes: list[str] = []
    resources = descriptor.get("resources")
    if not isinstance(resources, list) or not resources:
        raise _bad("resources", R_("the package has no resources"))
    for i, res in enumerate(resources):
        if not isinstance(res, dict):
            raise _bad(f"resources[{i}]", R_("must be an object"))
        rname = str(res.get("name") or i)
        paths = res.get("path")
        if paths is None:
            if "data" in res:
                notes.append(f"resource {rname!r} is inline data (kept in datapackage.json)")
                continue
            raise _bad(f"resources[{rname}].path", R_("missing"))
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _bad(f"resources[{rname}].path", R_("must be a string or a list of strings"))
        algo, stated = _stated_hash(res)
        if len(paths) > 1 and stated:
            notes.append(f"resource {rname!r}: the stated hash covers all {len(paths)} parts")
        for rel in paths:
            path = _local_file(directory, rel, name=rname)
            digest, size = sha256_of(path)
            if stated and len(paths) == 1:
                if algo == "sha256" and stated != digest:
                    raise _bad(f"resources[{rname}].hash",
                               R_("states sha256 %(stated)s but %(rel)s has %(digest)s: rebuild the package"), stated=stated, rel=rel, digest=digest)
                if algo == "md5":
                    md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
                    if md5 != stated:
                        raise _bad(f"resources[{rname}].hash",
                                   R_("states md5 %(stated)s but %(rel)s has %(md5)s"), stated=stated, rel=rel, md5=md5)
                    notes.append(f"resource {rname!r}: md5 stated; sha256 computed locally")
                elif algo not in ("sha256", "md5"):
                    notes.append(f"resource {rname!r}: hash algorithm {algo!r} not checked")
            elif not stated:
                notes.append(f"resource {rname!r}: no hash stated; sha256 computed locally")
            stated_bytes = res.get("bytes")
            if isinstance(stated_bytes, int) and len(paths) == 1 and stated_bytes != size:
                raise _bad(f"resources[{rname}].bytes", R_("states %(stated_bytes)s but %(rel)s has %(size)s"), stated_bytes=stated_bytes, rel=rel, size=size)
            fmt, mime = FORMATS.get(path.suffix.lower(), (path.suffix.lstrip(".").upper(), ""))
            if isinstance(res.get("format"), str) and res["format"]:
                fmt = res["format"].upper() if len(res["format"]) <= 5 else res["format"]
            mime = res.get("mediatype") or res.get("mediaType") or mime
            if (rel.lower().endswith(".stat.json") or "jsonstat" in rname.lower().replace("-", "")
                    or mime == "application/json+stat"):
                fmt = "JSON-stat"
            desc = res.get("description") if isinstance(res.get("description"), str) else ""
            files.append(LocalFile(rel, path, digest, size, fmt, str(mime or ""), desc or "",
                                   _translations(res, "title"), _translations(res, "description")))

    dp_digest, dp_size = sha256_of(dp_path)
    files.append(LocalFile("datapackage.json", dp_path, dp_digest, dp_size, "JSON",
                           "application/json", "Frictionless Data Package descriptor",
                           dict(DESCRIPTOR_TEXT[0]), dict(DESCRIPTOR_TEXT[1])))
    zip_path = directory.with_name(directory.name + ".zip")
    if zip_path.is_file():
        z_digest, z_size = sha256_of(zip_path)
        files.append(LocalFile(zip_path.name, zip_path, z_digest, z_size, "ZIP",
                               "application/zip", "The whole data package as one zip file",
                               dict(ZIP_TEXT[0]), dict(ZIP_TEXT[1])))
    else:
        notes.append(f"no {zip_path.name} beside the package: the zip is not published")
    files = ckan_resource_titles(files, title)
    names = [f.name for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _bad("resources", R_("two files would get the same CKAN resource name: %(names)s"),
                   names=", ".join(dupes))
    landing = descriptor.get("x_landing_url")
    release = descriptor.get("x_release") if isinstance(descriptor.get("x_release"), dict) else {}
    notice = release.get("notice")
    notice = ({k: str(v) for k, v in notice.items() if k in LANGS and isinstance(v, str) and v}
              if isinstance(notice, dict) else None)
    previous = release.get("previous_version")
    return LocalPackage(directory, series, version, package_id, title, description, license_id,
                        keywords, tuple(files), tuple(notes), _publisher_title(descriptor),
                        landing if isinstance(landing, str) else None,
                        previous if isinstance(previous, str) else None, notice or None)


def _publisher_title(descriptor: dict[str, Any]) -> str | None:
    """English (else default-language) name of the contributor with role ``publisher``."""
    for c in descriptor.get("contributors") or []:
        if not isinstance(c, dict):
            continue
        roles = c.get("roles") if isinstance(c.get("roles"), list) else [c.get("role")]
        if "publisher" in roles:
            names = _translations(c, "title")
            title = names.get("en") or c.get("title")
            return title if isinstance(title, str) and title.strip() else None
    return None


# --------------------------------------------------------------------------- the CKAN client
class CkanClient:
    """ckanapi over a ``requests.Session`` with timeouts and bounded, backed-off retries."""

    def __init__(self, url: str, token: str | None, *, session: requests.Session | None = None,
                 policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.last_status: int | None = None
        self.last_error = ""
        self.session.hooks.setdefault("response", []).append(self._record_status)
        self.api = ckanapi.RemoteCKAN(self.url, apikey=token, session=self.session,
                                      user_agent="ashyq-publisher/0.1 (+ckanapi)")
        self.anon = ckanapi.RemoteCKAN(self.url, apikey=None, session=self.session,
                                       user_agent="ashyq-publisher/0.1 (+ckanapi; anonymous)")

    def close(self) -> None:
        """Detach from the session (a caller's session may serve many publications)."""
        hooks = self.session.hooks.get("response", [])
        if self._record_status in hooks:
            hooks.remove(self._record_status)

    def _record_status(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_status = response.status_code
        ctype = response.headers.get("Content-Type", "")
        self.last_error = ""
        if response.status_code >= 400 and "json" in ctype:
            try:
                err = json.loads(response.content[:20000].decode("utf-8", "replace")).get("error")
            except (ValueError, AttributeError):
                err = None
            if isinstance(err, dict):
                self.last_error = ": ".join(
                    str(err[k]) for k in ("__type", "message") if err.get(k))[:300]

    def timeout(self, size: int = 0) -> tuple[float, float]:
        return (self.policy.connect_timeout, max(self.policy.read_timeout, size / 1_000_000))

    # errors ---------------------------------------------------------------
    def _error(self, action: str, exc: Exception) -> CkanPublishError:
        if isinstance(exc, ckanapi.ValidationError):
            field_, reason = _first_error(exc.error_dict)
            return CkanPublishError(action, field_, reason)
        if isinstance(exc, ckanapi.NotAuthorized):
            msg = exc.args[0] if exc.args else ""
            if isinstance(msg, dict):
                msg = msg.get("message", "")
            hint = "" if self.token else " (no API token given)"
            return CkanPublishError(action, "authorization",
                                    R_("HTTP 403 %(value)s%(hint)s: check CKAN_API_TOKEN and the user's rights on the organization"), value=msg or 'access denied', hint=hint)
        if isinstance(exc, ckanapi.NotFound):
            return CkanPublishError(action, "id", R_("not found: %(value)s"), value=exc.args[0] if exc.args else '')
        if isinstance(exc, requests.Timeout):
            return CkanPublishError(action, "connection", R_("timed out talking to %(url)s"),
                                    retryable=True, url=self.url)
        if isinstance(exc, requests.ConnectionError):
            return CkanPublishError(action, "connection", R_("cannot reach CKAN at %(url)s"),
                                    retryable=True, url=self.url)
        status = self.last_status
        text = self.last_error or (R_("the response carried no CKAN error") if status
                                   else str(exc)[:300])
        if isinstance(exc, ckanapi.CKANAPIError | ckanapi.ServerIncompatibleError):
            retry = status is None or status >= 500 or status == 429
            return CkanPublishError(action, f"HTTP {status}", text, retryable=retry)
        return CkanPublishError(action, type(exc).__name__, text, retryable=False)

    @staticmethod
    def _transient(err: CkanPublishError) -> bool:
        return err.retryable

    def call(self, action: str, data: dict[str, Any] | None = None, *, anonymous: bool = False,
             files: dict[str, Any] | None = None, size: int = 0, retry: bool = True) -> Any:
        """One action; transient failures retried (``retry=False`` for non-idempotent writes)."""
        api = self.anon if anonymous else self.api
        delays = self.policy.delays() if retry else iter(())
        while True:
            self.last_status, self.last_error = None, ""
            try:
                if files:
                    for fh in files.values():
                        fh.seek(0)
                return api.call_action(action, data or {}, files=files,
                                       requests_kwargs={"timeout": self.timeout(size)})
            except (ckanapi.CKANAPIError, ckanapi.ServerIncompatibleError, requests.RequestException,
                    ValueError) as exc:
                err = self._error(action, exc)
                if not err.retryable:
                    raise err from None
                delay = next(delays, None)
                if delay is None:
                    raise err from None
                self.sleep(delay)

    def show(self, action: str, ident: str, *, anonymous: bool = False) -> dict[str, Any] | None:
        """``*_show`` returning None for NotFound (a read, retried)."""
        data: dict[str, Any] = {"id": ident}
        if action in ("organization_show", "group_show"):  # no member lists or search counts
            data.update(include_datasets=False, include_dataset_count=False, include_users=False,
                        include_extras=False, include_groups=False, include_tags=False,
                        include_followers=False)
        try:
            return self.call(action, data, anonymous=anonymous)
        except CkanPublishError as err:
            if err.field == "id" and err.detail.startswith("not found"):
                return None
            raise

    def download_sha256(self, url: str, *, anonymous: bool) -> tuple[str, int, int]:
        """(sha256, bytes, HTTP status) of a download; retried on connection errors and 5xx."""
        headers = {} if anonymous or not self.token else {"Authorization": self.token}
        delays = self.policy.delays()
        while True:
            try:
                with self.session.get(url, headers=headers, stream=True, timeout=self.timeout(),
                                      allow_redirects=True) as r:
                    if r.status_code >= 500 or r.status_code == 429:
                        raise requests.HTTPError(f"HTTP {r.status_code}", response=r)
                    if r.status_code != 200:
                        return "", 0, r.status_code
                    h, n = hashlib.sha256(), 0
                    for chunk in r.iter_content(1 << 20):
                        h.update(chunk)
                        n += len(chunk)
                    return h.hexdigest(), n, 200
            except requests.RequestException as exc:
                delay = next(delays, None)
                if delay is None:
                    raise CkanPublishError("download", url, R_("failed: %(name)s"),
                                           retryable=True, name=type(exc).__name__) from None
                self.sleep(delay)


def _first_error(error_dict: dict[str, Any]) -> tuple[str, str]:
    """(field, reason) from a CKAN validation error dict (nested lists/dicts flattened)."""
    def flat(value: Any) -> str:
        if isinstance(value, list):
            return "; ".join(flat(v) for v in value if v)
        if isinstance(value, dict):
            return "; ".join(f"{k}: {flat(v)}" for k, v in value.items() if v)
        return str(value)

    fields = [(k, v) for k, v in (error_dict or {}).items() if k != "__type" and v]
    if not fields:
        return "(unknown)", "validation error"
    return ", ".join(k for k, _ in fields), "; ".join(flat(v) for _, v in fields)


# --------------------------------------------------------------------------- publishing steps
@dataclass
class _Run:
    client: CkanClient
    pkg: LocalPackage
    organization: str
    embargo: datetime | None
    progress: Callable[[str], None]
    notes: list[str] = field(default_factory=list)


def _ensure_organization(run: _Run) -> dict[str, Any]:
    c = run.client
    org = c.show("organization_show", run.organization)
    if org is not None:
        return org
    run.progress(Phrase(R_("creating organization %(organization)s"), organization=run.organization))
    try:
        return c.call("organization_create",
                      {"name": run.organization,
                       "title": run.pkg.publisher_title or run.organization}, retry=False)
    except CkanPublishError as err:
        # a lost response may have created it (CKAN commits even when indexing fails)
        org = c.show("organization_show", run.organization)
        if org is not None:
            return org
        raise err from None


def _ensure_series_group(run: _Run) -> None:
    c, series = run.client, run.pkg.series
    if c.show("group_show", series) is not None:
        return
    run.progress(Phrase(R_("creating group %(series)s for the series"), series=series))
    title = run.pkg.title.get("en") or series
    desc = "\n".join(f"{lang}: {run.pkg.title[lang]}" for lang in LANGS if lang in run.pkg.title)
    try:
        c.call("group_create", {"name": series, "title": title,
                                "description": f"All versions of {series}.\n{desc}",
                                "extras": [{"key": "title_translated",  # ckanext-ashyq shows it
                                            "value": json.dumps(run.pkg.title,
                                                                ensure_ascii=False)}]},
               retry=False)
    except CkanPublishError as err:
        if c.show("group_show", series) is None:
            raise err from None


def _metadata(run: _Run, previous: str | None) -> dict[str, Any]:
    pkg = run.pkg
    meta: dict[str, Any] = {
        "name": pkg.dataset_name,
        "title_translated": pkg.title,
        "title": pkg.title.get("en") or next(iter(pkg.title.values())),
        "version": pkg.version,
        "series": pkg.series,
        "version_order": version_order(pkg.version),
        "datapackage_id": pkg.package_id,
        "owner_org": run.organization,
        "groups": [{"name": pkg.series}],
    }
    if pkg.description:
        meta["notes_translated"] = pkg.description
        meta["notes"] = pkg.description.get("en") or next(iter(pkg.description.values()))
    if previous:
        meta["previous_version"] = previous
    if pkg.notice:
        meta["notice_translated"] = pkg.notice
    if run.embargo:
        meta["embargo_until"] = run.embargo.astimezone(UTC).isoformat()
    if pkg.license_id:
        meta["license_id"] = _license_in_register(run, pkg.license_id)
    if pkg.keywords:
        meta["tags"] = [
            {"name": re.sub(r"[^\w .-]", "", k)[:100]} for k in pkg.keywords
            if len(re.sub(r"[^\w .-]", "", k)) >= 2
        ]
    return meta


def _license_in_register(run: _Run, license_id: str) -> str:
    """The id of CKAN's licence register for ``license_id`` (see :func:`ckan_license_id`)."""
    try:
        register = {str(lic["id"]) for lic in run.client.call("license_list", {}, anonymous=True)
                    if isinstance(lic, dict) and lic.get("id")}
    except CkanPublishError:
        register = None  # an old or unusual CKAN: map to the default register's ids
    found = ckan_license_id(license_id, register)
    if register is not None and found not in register:
        run.notes.append(f"licence {license_id!r} is not in CKAN's licence register: "
                         "CKAN shows it without a title and not as open")
    return found


def _is_ours(dataset: dict[str, Any], pkg: LocalPackage) -> bool:
    """The dataset is this version of this series: from this data package, or still private
    (an unfinished earlier attempt at the same version, e.g. from a rebuilt package)."""
    return (
        dataset.get("series") == pkg.series
        and dataset.get("version") == pkg.version
        and (dataset.get("datapackage_id") == pkg.package_id or bool(dataset.get("private")))
    )


REFRESHED = ("title_translated", "title", "notes_translated", "notes", "datapackage_id",
             "license_id", "version_order")


def _refresh_metadata(run: _Run, ds: dict[str, Any]) -> dict[str, Any]:
    """Bring a private (unfinished) dataset's metadata up to this package's."""
    meta = _metadata(run, None)
    patch = {k: meta[k] for k in REFRESHED if k in meta and ds.get(k) != meta[k]}
    if not patch:
        return ds
    run.progress(Phrase(R_("updating metadata: %(keys)s"), keys=", ".join(sorted(patch))))
    return run.client.call("package_patch", {"id": ds["id"], **patch})


def _previous_version(run: _Run) -> str | None:
    c, pkg = run.client, run.pkg
    try:
        found = c.call("package_search", {
            "fq": f'series:"{pkg.series}"', "sort": "version_order desc", "rows": 50,
            "include_private": True, "fl": "name,version_order",
        })
    except CkanPublishError:
        return None
    mine = version_order(pkg.version)
    older = [d for d in found.get("results", [])
             if d.get("version_order") and d["version_order"] < mine]
    return older[0]["name"] if older else None


def _may_create_in(c: CkanClient, organization: str) -> bool:
    """Whether the token's user may create datasets in ``organization``."""
    orgs = c.call("organization_list_for_user", {"permission": "create_dataset"})
    return any(o.get("name") == organization for o in orgs or [])


def _ensure_dataset(run: _Run) -> dict[str, Any]:
    c, pkg = run.client, run.pkg
    name = pkg.dataset_name
    try:
        ds = c.show("package_show", name)
    except CkanPublishError as err:
        if err.field != "authorization" or not _may_create_in(c, run.organization):
            raise  # a bogus/expired token (CKAN treats it as anonymous) or no rights
        raise CkanPublishError(
            "package_create", "name",
            R_("That URL is already in use: %(name)s exists but this token may not read it (another organization's private dataset?)"), name=name) from None
    if ds is not None:
        if ds.get("state") == "deleted":
            raise CkanPublishError("package_create", "name",
                                   R_("That URL is already in use by a deleted dataset (%(name)s); purge it in CKAN or publish a new version"), name=name)
        if (not _is_ours(ds, pkg) and ds.get("series") == pkg.series
                and ds.get("version") == pkg.version):
            raise CkanPublishError(
                "package_create", "name",
                R_("That URL is already in use: version %(version)s of %(series)s is already published from data package %(ds)s; a published version is immutable: give the release a new version"), version=pkg.version, series=pkg.series, ds=repr(ds.get('datapackage_id')))
        if not _is_ours(ds, pkg):
            raise CkanPublishError(
                "package_create", "name",
                R_("That URL is already in use: %(name)s exists but is not version %(version)s of series %(series)s from data package %(package_id)s (it holds series=%(ds)s, version=%(ds2)s)"), name=name, version=pkg.version, series=pkg.series, package_id=pkg.package_id, ds=repr(ds.get('series')), ds2=repr(ds.get('version')))
        run.progress(Phrase(R_("resuming %(name)s (private)") if ds.get("private")
                            else R_("resuming %(name)s (public)"), name=name))
        return _refresh_metadata(run, ds) if ds.get("private") else ds
    meta = _metadata(run, _previous_version(run))
    meta["private"] = True
    run.progress(Phrase(R_("creating dataset %(name)s (private)"), name=name))
    try:
        return c.call("package_create", meta, retry=False)
    except CkanPublishError as err:
        if not err.retryable:
            raise
        # the response was lost: look again before failing (a re-run completes it)
        ds = c.show("package_show", name)
        if ds is not None and _is_ours(ds, pkg):
            return ds
        raise


def _upload_fields(f: LocalFile) -> dict[str, str]:
    """Resource fields as strings (a multipart upload carries only strings)."""
    out = {
        "name": f.name,
        "hash": f.sha256,
        "hash_algorithm": SPDX_SHA256,
        "format": f.format,
        "mimetype": f.mimetype,
        "description": f.description,
    }
    if f.title_translated:
        out["name_translated"] = json.dumps(f.title_translated, ensure_ascii=False)
    if f.description_translated:
        out["description_translated"] = json.dumps(f.description_translated, ensure_ascii=False)
    return out


def _upload(run: _Run, dataset_id: str, f: LocalFile, existing_id: str | None) -> None:
    c = run.client
    action = "resource_update" if existing_id else "resource_create"
    data = _upload_fields(f)
    if existing_id:
        data["id"] = existing_id
    else:
        data["package_id"] = dataset_id
    with f.path.open("rb") as fh:
        c.call(action, data, files={"upload": _NamedFile(fh, f.path.name)}, size=f.size,
               retry=False)


class _NamedFile:
    """A file object whose ``name`` is the bare file name (CKAN names the download after it)."""

    def __init__(self, fh: Any, name: str) -> None:
        self._fh, self.name = fh, name

    def read(self, *args: Any) -> bytes:
        return self._fh.read(*args)

    def seek(self, *args: Any) -> int:
        return self._fh.seek(*args)

    def tell(self) -> int:
        return self._fh.tell()


def _delete_resource(c: CkanClient, resource_id: str) -> None:
    """Delete a resource of the private dataset; already gone counts as done."""
    try:
        c.call("resource_delete", {"id": resource_id})
    except CkanPublishError as err:
        if not (err.field == "id" and err.detail.startswith("not found")):
            raise


def _sync_resources(run: _Run, dataset_id: str) -> dict[str, Any]:
    """Make the private dataset's resources exactly the package's files (once each)."""
    c, pkg = run.client, run.pkg
    wanted = {f.name: f for f in pkg.files}
    for f in pkg.files:
        attempts = iter(c.policy.delays())
        while True:
            ds = c.call("package_show", {"id": dataset_id})
            same = [r for r in ds.get("resources", []) if r.get("name") == f.name]
            for extra in same[1:]:  # a duplicate from an earlier, interrupted run
                run.progress(Phrase(R_("removing duplicate resource %(name)s"), name=f.name))
                _delete_resource(c, extra["id"])
            current = same[0] if same else None
            if (current and current.get("hash") == f.sha256 and current.get("url_type") == "upload"
                    and int(current.get("size") or -1) == f.size):
                break
            try:
                _upload(run, dataset_id, f, current["id"] if current else None)
                run.progress(Phrase(R_("uploaded %(name)s (%(size)s bytes)"), name=f.name, size=f.size))
                break
            except CkanPublishError as err:
                delay = next(attempts, None)
                if not err.retryable or delay is None:
                    raise
                c.sleep(delay)
    ds = c.call("package_show", {"id": dataset_id})
    for r in ds.get("resources", []):
        if r.get("name") not in wanted:
            run.progress(Phrase(R_("removing resource %(name)s that is not in the package"), name=repr(r.get('name'))))
            _delete_resource(c, r["id"])
    ds = c.call("package_show", {"id": dataset_id})
    order = [f.name for f in pkg.files]
    by_name = {r["name"]: r["id"] for r in ds.get("resources", [])}
    if [r["name"] for r in ds.get("resources", [])] != order:
        c.call("package_resource_reorder",
               {"id": dataset_id, "order": [by_name[n] for n in order if n in by_name]})
        ds = c.call("package_show", {"id": dataset_id})
    return ds


def _verify(run: _Run, ds: dict[str, Any], *, anonymous: bool) -> list[str]:
    """Problems found reading back ``ds`` and downloading each file (empty list: verified)."""
    c, problems = run.client, []
    remote = {}
    for r in ds.get("resources", []):
        remote.setdefault(r.get("name"), []).append(r)
    for f in run.pkg.files:
        rs = remote.get(f.name, [])
        if len(rs) != 1:
            problems.append(f"{f.name}: {len(rs)} resources with this name (expected 1)")
            continue
        r = rs[0]
        if r.get("hash") != f.sha256:
            problems.append(f"{f.name}: resource hash {r.get('hash')!r} != {f.sha256}")
        digest, size, status = c.download_sha256(r["url"], anonymous=anonymous)
        who = "anonymous" if anonymous else "authorized"
        if status != 200:
            problems.append(f"{f.name}: {who} download answered HTTP {status}")
        elif digest != f.sha256 or size != f.size:
            problems.append(f"{f.name}: {who} download has sha256 {digest} ({size} bytes), "
                            f"expected {f.sha256} ({f.size} bytes)")
    return problems


def _result(run: _Run, ds: dict[str, Any], *, verified: bool, public: bool, anon: bool,
            latest: str | None) -> PublishResult:
    by_name = {r["name"]: r for r in ds.get("resources", [])}
    resources = tuple(
        PublishedResource(f.name, by_name[f.name]["id"], by_name[f.name]["url"], f.sha256, f.size)
        for f in run.pkg.files if f.name in by_name
    )
    return PublishResult(
        dataset_name=ds["name"], dataset_url=f"{run.client.url}/dataset/{ds['name']}",
        dataset_id=ds["id"], series=run.pkg.series, version=run.pkg.version,
        resources=resources, verified=verified, public=public, anonymous_verified=anon,
        latest_version=latest, notes=tuple(run.pkg.notes) + tuple(run.notes),
    )


def latest_version(url: str, series: str, *, session: requests.Session | None = None,
                   policy: RetryPolicy | None = None) -> str | None:
    """Name of the newest **public** version dataset of ``series`` (anonymous search)."""
    c = CkanClient(url, None, session=session, policy=policy)
    try:
        return _latest(c, series)
    finally:
        c.close()


def _latest(c: CkanClient, series: str) -> str | None:
    found = c.call("package_search", {"fq": f'series:"{series}"', "sort": "version_order desc",
                                      "rows": 1}, anonymous=True)
    results = found.get("results") or []
    return results[0]["name"] if results else None


@dataclass(frozen=True)
class WithdrawResult:
    dataset_name: str
    was_public: bool
    resources: int
    anonymous_verified: bool
    anonymous_status: str


def withdraw_dataset(
    dataset_name: str,
    *,
    url: str,
    token: str,
    session: requests.Session | None = None,
    progress: Callable[[str], None] | None = None,
    policy: RetryPolicy | None = None,
) -> WithdrawResult:
    """Withdraw a published version: make its dataset private (a deleted or purged one stays so)
    and verify anonymously that ``package_show`` is refused, the dataset is not found by search
    and no resource file downloads. Idempotent; raises :class:`CkanPublishError` (``retryable``
    when CKAN could not be reached or still serves it) otherwise."""
    if not url:
        raise CkanPublishError("withdraw", "CKAN_URL", R_("no CKAN URL given"))
    if not token:
        raise CkanPublishError("withdraw", "CKAN_API_TOKEN", R_("no API token given"))
    say = progress or (lambda _m: None)
    client = CkanClient(url, token, session=session, policy=policy)
    try:
        ds = client.show("package_show", dataset_name)
        was_public = bool(ds) and not ds.get("private") and ds.get("state") != "deleted"
        if was_public:
            say(Phrase(R_("making %(dataset_name)s private"), dataset_name=dataset_name))
            client.call("package_patch", {"id": ds["id"], "private": True})
        urls = [r["url"] for r in (ds or {}).get("resources", []) if r.get("url")]
        status, problems = _anonymous_gone(client, dataset_name, urls)
        if problems:
            raise CkanPublishError("verify", dataset_name,
                                   R_("still readable anonymously after the withdrawal: %(problems)s"),
                                   problems="; ".join(problems), retryable=True)
        say(Phrase(R_("%(dataset_name)s withdrawn: anonymous read-back refused (%(status)s)"), dataset_name=dataset_name, status=status))
        return WithdrawResult(dataset_name, was_public, len(urls), True, status)
    finally:
        client.close()


def _anonymous_gone(client: CkanClient, name: str, urls: list[str]) -> tuple[str, list[str]]:
    """How an anonymous reader is refused the dataset, and what it can still read (problems)."""
    problems: list[str] = []
    try:
        shown = client.show("package_show", name, anonymous=True)
        status = "not found" if shown is None else "readable"
        if shown is not None and shown.get("state") != "deleted":
            problems.append("package_show answers anonymously")
    except CkanPublishError as err:
        if err.field != "authorization":
            raise
        status = "not authorized"
    found = client.call("package_search", {"fq": f'name:"{name}"', "rows": 1}, anonymous=True)
    if found.get("results"):
        problems.append("package_search finds it anonymously")
    for u in urls:
        _digest, _size, code = client.download_sha256(u, anonymous=True)
        if code == 200:
            problems.append(f"{u.rsplit('/', 1)[-1]} downloads anonymously")
    return status, problems


def publish_package(
    package_dir: Path,
    *,
    url: str,
    token: str,
    organization: str | None = None,
    series: str | None = None,
    embargo: datetime | None = None,
    session: requests.Session | None = None,
    progress: Callable[[str], None] | None = None,
    policy: RetryPolicy | None = None,
) -> PublishResult:
    """Publish the built package in ``package_dir`` as one immutable CKAN dataset (see module doc).

    Returns a verified :class:`PublishResult`, or raises :class:`CkanPublishError` leaving the
    dataset private (never half-public); calling again with the same package completes it.
    """
    if not url:
        raise CkanPublishError("publish", "CKAN_URL", R_("no CKAN URL given"))
    if not token:
        raise CkanPublishError("publish", "CKAN_API_TOKEN", R_("no API token given"))
    if embargo is not None and embargo.tzinfo is None:
        raise CkanPublishError("publish", "embargo", R_("must be timezone-aware (e.g. UTC)"))
    pkg = read_package(Path(package_dir), series=series)
    from .addresses import is_loopback

    if pkg.landing_url and is_loopback(pkg.landing_url) and not is_loopback(url):
        raise _bad("x_landing_url", R_(
            "the package cites %(landing)s, an address on this machine that no reader of "
            "%(ckan)s can reach: set ASHYQ_PUBLIC_BASE_URL to the public address (or leave it "
            "on loopback to cite the CKAN dataset) and package the release again"),
            landing=pkg.landing_url, ckan=url)
    org = organization or DEFAULT_ORGANIZATION
    if not SLUG_RE.match(org):
        raise CkanPublishError("organization_create", "name", R_("%(org)s is not a CKAN name"), org=repr(org))
    client = CkanClient(url, token, session=session, policy=policy)
    try:
        return _publish(_Run(client, pkg, org, embargo, progress or (lambda _m: None)))
    finally:
        client.close()


def _publish(run: _Run) -> PublishResult:
    client, pkg, embargo = run.client, run.pkg, run.embargo
    _ensure_organization(run)
    _ensure_series_group(run)
    ds = _ensure_dataset(run)
    if not ds.get("private"):
        # already public: immutable; only confirm it is exactly this package
        problems = _verify(run, ds, anonymous=True)
        if problems:
            raise CkanPublishError("verify", ds["name"],
                                   R_("the published version differs from this package (a published "
                                      "version is immutable: give the release a new version): "
                                      "%(problems)s"), problems="; ".join(problems))
        run.progress(Phrase(R_("%(ds)s is already published and identical"), ds=ds['name']))
        return _result(run, ds, verified=True, public=True, anon=True,
                       latest=_latest(client, pkg.series))

    wanted_embargo = embargo.astimezone(UTC).isoformat() if embargo else None
    if (ds.get("embargo_until") or None) != wanted_embargo:
        client.call("package_patch", {"id": ds["id"], "embargo_until": wanted_embargo or ""})
    ds = _sync_resources(run, ds["id"])
    run.progress(Phrase(R_("verifying uploads (authorized download + sha256)")))
    problems = _verify(run, ds, anonymous=False)
    if problems:
        run.progress(Phrase(R_("mismatch found, re-uploading the affected files once: "
                               "%(problems)s"), problems="; ".join(problems)))
        for f in pkg.files:
            if any(p.startswith(f"{f.name}:") for p in problems):
                rid = next((r["id"] for r in ds["resources"] if r["name"] == f.name), None)
                _upload(run, ds["id"], f, rid)
        ds = _sync_resources(run, ds["id"])
        problems = _verify(run, ds, anonymous=False)
        if problems:
            raise CkanPublishError("verify", ds["name"], R_("%(problems)s"), problems="; ".join(problems),
                                   retryable=False)

    if embargo is not None and embargo > datetime.now(UTC):
        run.progress(Phrase(R_("complete and verified; private until the embargo %(embargo)s"), embargo=embargo.isoformat()))
        return _result(run, ds, verified=True, public=False, anon=False, latest=None)

    run.progress(Phrase(R_("making %(ds)s public"), ds=ds['name']))
    client.call("package_patch", {"id": ds["id"], "private": False})
    ds = client.call("package_show", {"id": ds["id"]})
    anon_ds = client.call("package_show", {"id": ds["id"]}, anonymous=True)
    problems = _verify(run, anon_ds, anonymous=True)
    if problems:
        client.call("package_patch", {"id": ds["id"], "private": True})
        raise CkanPublishError("verify", ds["name"],
                               R_("anonymous read-back failed, dataset made private again: %(problems)s"),
                               problems="; ".join(problems), retryable=True)
    _mark_corrected(run, ds)
    latest = _latest(client, pkg.series)
    run.progress(Phrase(R_("published %(ds)s (newest in series: %(latest)s)"), ds=ds['name'], latest=latest))
    return _result(run, ds, verified=True, public=True, anon=True, latest=latest)


def _mark_corrected(run: _Run, ds: dict[str, Any]) -> None:
    """On the dataset of the version a correction replaces: that it was corrected, by which
    version (its dataset name and address) and the notice. Its files stay as they are."""
    pkg = run.pkg
    old = pkg.corrects
    if old is None:
        return
    name = dataset_slug(pkg.series, old)
    patch = {"id": name, "corrected_by": ds["name"],
             "corrected_by_url": pkg.landing_url or f"{run.client.url}/dataset/{ds['name']}"}
    if pkg.notice:
        patch["notice_translated"] = pkg.notice
    try:
        run.client.call("package_patch", patch)
    except CkanPublishError as err:
        if err.field == "id" and err.detail.startswith("not found"):
            run.progress(Phrase(R_("%(name)s is not on this CKAN: not marked as corrected"), name=name))
            return
        raise
    run.progress(Phrase(R_("%(name)s marked as corrected by %(ds)s"), name=name, ds=ds['name']))
