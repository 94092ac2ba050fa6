"""The ``ashyq`` CKAN plugin: translated-field validators, their display snippet, and indexing.

For search, each translated field ``<base>_translated`` is indexed as one field per language,
``extras_<base>_<lang>`` (e.g. ``extras_title_ru``): CKAN's Solr schema makes ``extras_*`` text
fields and copies them into the catch-all ``text``, so every language is found by plain ``q=``
and by ``extras_title_ru:word``. The JSON object itself is not indexed (Solr cannot index an
object, and a long text in a string field would exceed Solr's term limit); search results come
from CKAN's stored ``validated_data_dict`` and carry the objects.

Pages show the text of CKAN's current language (``h.get_translated``): the templates under
``templates/`` use it where CKAN core reads the plain ``title``/``notes``/``description`` (search
and group listings, the resource page), and group pages show a group's ``title_translated``
extra. A resource's ``hash`` is the SHA-256 its publisher states (``hash_algorithm`` names it);
ckanext-xloader writes its own MD5 there after loading a file into the DataStore, so an update
that would replace a stated SHA-256 by a 32-digit hash keeps the SHA-256.

xloader loads a CSV only once its dataset is public: a job running while the publisher still
writes the private dataset would write back the dataset as the job read it (undoing "make it
public"). When a user (not xloader's site user) updates a public dataset, a background job
waits until that update is committed and submits the CSV resources not yet in the DataStore.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import ckan.plugins as p
import ckan.plugins.toolkit as tk
import sqlalchemy as sa
from ckanext.ashyq.validators import (
    ashyq_keep_private,
    ashyq_translated,
    ashyq_translated_output,
    parse_translated,
)

try:  # ckanext-xloader is optional (the DataStore preview)
    from ckanext.xloader.interfaces import IXloader
except ImportError:  # pragma: no cover - CKAN without xloader
    IXloader = None

TRANSLATED_SUFFIX = "_translated"
SPDX_SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MD5_RE = re.compile(r"^[0-9a-f]{32}$")


def keep_stated_sha256(current: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Keep ``current``'s stated SHA-256 when ``resource`` would replace it by an MD5 (xloader's
    hash of the loaded file); True if it was kept."""
    old, new = current.get("hash") or "", resource.get("hash") or ""
    if (current.get("hash_algorithm") == SPDX_SHA256 and SHA256_RE.match(old)
            and isinstance(new, str) and MD5_RE.match(new)
            and resource.get("url") in (None, current.get("url"))):
        resource["hash"] = old
        return True
    return False


def group_title(group: dict[str, Any]) -> str:
    """A group's title in CKAN's current language: its ``title_translated`` extra, else title."""
    lang = tk.h.lang()
    for extra in group.get("extras") or []:
        if isinstance(extra, dict) and extra.get("key") == "title_translated":
            parsed = parse_translated(extra.get("value"))
            if parsed and isinstance(parsed.get(lang), str) and parsed[lang].strip():
                return parsed[lang]
    return group.get("display_name") or group.get("title") or group.get("name") or ""


def submit_csvs_when_public(package_id: str, wait: float = 60.0) -> int:
    """Background job: once the dataset's being public is committed (waiting up to ``wait``
    seconds), submit its uploaded CSV resources not yet in the DataStore to xloader; returns
    how many were submitted (0 if the dataset stayed private)."""
    from ckan import model

    deadline = time.monotonic() + wait
    while True:
        private = model.Session.execute(
            sa.text("select private from package where id = :id and state = 'active'"),
            {"id": package_id}).scalar()
        model.Session.rollback()
        if private is False:
            break
        if private is None or time.monotonic() > deadline:
            return 0
        time.sleep(0.5)
    model.Session.expire_all()
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    pkg = tk.get_action("package_show")({"ignore_auth": True, "use_cache": False},
                                        {"id": package_id})
    submitted = 0
    for res in pkg.get("resources") or []:
        if (str(res.get("format") or "").lower() == "csv" and not res.get("datastore_active")
                and res.get("url_type") == "upload"):
            with contextlib.suppress(tk.ValidationError):  # xloader not configured
                tk.get_action("xloader_submit")({"ignore_auth": True, "user": site_user},
                                                {"resource_id": res["id"]})
                submitted += 1
    return submitted


class AshyqPlugin(p.SingletonPlugin):
    p.implements(p.IConfigurer)
    p.implements(p.IValidators)
    p.implements(p.IPackageController, inherit=True)
    p.implements(p.IResourceController, inherit=True)
    p.implements(p.ITemplateHelpers)
    if IXloader is not None:
        p.implements(IXloader, inherit=True)

    def update_config(self, config: Any) -> None:
        tk.add_template_directory(config, "templates")

    def get_validators(self) -> dict[str, Any]:
        return {
            "ashyq_keep_private": ashyq_keep_private,
            "ashyq_translated": ashyq_translated,
            "ashyq_translated_output": ashyq_translated_output,
        }

    def get_helpers(self) -> dict[str, Any]:
        return {"ashyq_group_title": group_title}

    def before_resource_update(self, context: Any, current: dict[str, Any],
                               resource: dict[str, Any]) -> None:
        keep_stated_sha256(current, resource)

    # IXloader: no DataStore load while the dataset is private (see the module doc)
    def can_upload(self, resource_id: str) -> bool:
        ctx = {"ignore_auth": True, "use_cache": False}
        res = tk.get_action("resource_show")(dict(ctx), {"id": resource_id})
        pkg = tk.get_action("package_show")(dict(ctx), {"id": res["package_id"]})
        return not pkg.get("private")

    def after_dataset_update(self, context: Any, pkg_dict: dict[str, Any]) -> None:
        if IXloader is None or pkg_dict.get("private") in (True, "True", "true"):
            return
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        if context.get("user") == site_user:
            return  # xloader's own writes
        # This update is not committed yet: a job started now could still read the dataset as
        # private. A background job waits for the commit, then submits the CSV files.
        tk.enqueue_job(submit_csvs_when_public, [pkg_dict["id"]],
                       title=f"ashyq: DataStore load of {pkg_dict.get('name') or pkg_dict['id']}")

    def before_dataset_index(self, pkg_dict: dict[str, Any]) -> dict[str, Any]:
        for key in list(pkg_dict):
            if not key.endswith(TRANSLATED_SUFFIX):
                continue
            parsed = parse_translated(pkg_dict[key])
            if parsed is None:
                continue
            base = key[: -len(TRANSLATED_SUFFIX)]
            if base.startswith("extras_"):
                base = base[len("extras_"):]
            for lang, text in parsed.items():
                if isinstance(text, str) and lang.isalpha() and len(lang) <= 3:
                    pkg_dict[f"extras_{base}_{lang}"] = text
            del pkg_dict[key]
        return pkg_dict
