"""Validators for translated dataset fields (a text per language, stored as a JSON object).

Guarantees: a stored value is a JSON object whose keys are exactly languages declared for the
field (``languages`` in the schema field, else the schema's ``form_languages``) and whose values
are non-empty strings; a ``required`` field has every declared language. The core field named by
``core_field`` (``title``/``notes``) is filled from ``core_language`` (default: the first declared
language) when the caller did not send it, so CKAN's plain title stays meaningful.
"""

from __future__ import annotations

import json
from typing import Any

from ckan.lib.navl.dictization_functions import StopOnError, missing
from ckanext.scheming.validation import scheming_validator

DEFAULT_LANGUAGES = ["kk", "ru", "en"]


def _languages(field: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    langs = field.get("languages") or schema.get("form_languages") or DEFAULT_LANGUAGES
    return [str(x) for x in langs]


def parse_translated(value: Any) -> dict[str, Any] | None:
    """A dict from a dict or a JSON-object string; ``None`` if it is neither."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


@scheming_validator
def ashyq_translated(field: dict[str, Any], schema: dict[str, Any]):
    """Validate ``{lang: text}`` (dict or JSON string) and store it as a JSON string."""
    langs = _languages(field, schema)
    required = bool(field.get("required"))
    core = field.get("core_field")
    core_lang = field.get("core_language") or langs[0]

    def validator(key, data, errors, context):  # noqa: ARG001 - navl signature
        value = data.get(key, missing)
        if value is missing or value is None or value == "" or value == {}:
            if required:
                errors[key].append("Missing value: a text per language " + ", ".join(langs))
                raise StopOnError
            data.pop(key, None)
            raise StopOnError
        parsed = parse_translated(value)
        if parsed is None:
            errors[key].append(
                "expected an object {language: text} (or its JSON string), e.g. "
                + json.dumps({lang: "..." for lang in langs})
            )
            raise StopOnError
        problems = []
        for lang, text in parsed.items():
            if lang not in langs:
                problems.append(f'unsupported language "{lang}" (allowed: {", ".join(langs)})')
            elif not isinstance(text, str):
                problems.append(f'the text for "{lang}" must be a string')
        for lang in langs:
            text = parsed.get(lang)
            if required and (not isinstance(text, str) or not text.strip()):
                problems.append(f'missing text for language "{lang}"')
        if problems:
            errors[key].extend(problems)
            raise StopOnError
        clean = {
            lang: parsed[lang].strip()
            for lang in langs
            if isinstance(parsed.get(lang), str) and parsed[lang].strip()
        }
        data[key] = json.dumps(clean, ensure_ascii=False, sort_keys=True)
        if core:
            current = data.get((core,), missing)
            if current is missing or current is None or current == "":
                data[(core,)] = clean.get(core_lang) or next(iter(clean.values()), "")

    return validator


def ashyq_translated_output(value: Any) -> Any:
    """Stored JSON string -> dict for ``package_show``; anything else unchanged."""
    parsed = parse_translated(value)
    return parsed if parsed is not None else value


def ashyq_keep_private(key, data, errors, context):  # noqa: ARG001 - navl signature
    """Background writes (CKAN's site user: xloader's DataStore bookkeeping) never change
    whether a dataset is private: they keep what is committed now, not what the job read when it
    started (a dataset made public, or withdrawn, meanwhile)."""
    import ckan.plugins.toolkit as tk
    import sqlalchemy as sa
    from ckan import model

    pkg = context.get("package")
    if pkg is None or ("private",) not in data:
        return
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    if context.get("user") != site_user:
        return
    committed = model.Session.execute(
        sa.text("select private from package where id = :id"), {"id": pkg.id}).scalar()
    if committed is not None:
        data[("private",)] = committed
