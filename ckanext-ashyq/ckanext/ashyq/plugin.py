"""The ``ashyq`` CKAN plugin: translated-field validators, their display snippet, and indexing.

For search, each translated field ``<base>_translated`` is indexed as one field per language,
``extras_<base>_<lang>`` (e.g. ``extras_title_ru``): CKAN's Solr schema makes ``extras_*`` text
fields and copies them into the catch-all ``text``, so every language is found by plain ``q=``
and by ``extras_title_ru:word``. The JSON object itself is not indexed (Solr cannot index an
object, and a long text in a string field would exceed Solr's term limit); search results come
from CKAN's stored ``validated_data_dict`` and carry the objects.
"""

from __future__ import annotations

from typing import Any

import ckan.plugins as p
import ckan.plugins.toolkit as tk
from ckanext.ashyq.validators import (
    ashyq_translated,
    ashyq_translated_output,
    parse_translated,
)

TRANSLATED_SUFFIX = "_translated"


class AshyqPlugin(p.SingletonPlugin):
    p.implements(p.IConfigurer)
    p.implements(p.IValidators)
    p.implements(p.IPackageController, inherit=True)

    def update_config(self, config: Any) -> None:
        tk.add_template_directory(config, "templates")

    def get_validators(self) -> dict[str, Any]:
        return {
            "ashyq_translated": ashyq_translated,
            "ashyq_translated_output": ashyq_translated_output,
        }

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
