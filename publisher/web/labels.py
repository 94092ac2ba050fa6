"""Translatable names of states, actions, roles and release kinds (shown in the UI)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATE = {
    "draft": _l("draft"), "protected": _l("protected"), "submitted": _l("submitted"),
    "approved": _l("approved"), "scheduled": _l("scheduled"), "published": _l("published"),
    "superseded": _l("superseded"), "corrected": _l("corrected"), "withdrawn": _l("withdrawn"),
}
ACTION = {
    "create": _l("created"), "protect": _l("protected"), "change": _l("table or spec changed"),
    "approval_voided": _l("approval voided"), "submit": _l("submitted"),
    "approve": _l("approved"), "send_back": _l("sent back"), "schedule": _l("scheduled"),
    "unschedule": _l("unscheduled"), "publish": _l("published"), "supersede": _l("superseded"),
    "correct": _l("corrected"), "withdraw": _l("withdrawn"),
    "publish_failed": _l("publication failed"), "publish_retry": _l("publication retried"), "pre_release_access": _l("pre-release access"),
    "token_issued": _l("API token issued"), "token_revoked": _l("API token revoked"),
    "user_created": _l("user created"), "audit_export": _l("audit log exported"),
    "login": _l("signed in"),
    "raw_view": _l("raw data viewed"),
    "withdrawn_from_catalogue": _l("withdrawn from the catalogue"),
    "withdraw_failed": _l("withdrawal from the catalogue failed"),
    "user_activated": _l("user activated"), "user_deactivated": _l("user deactivated"),
    "source_added": _l("data source registered"),
    "source_budget_changed": _l("privacy budget changed"),
}
ROLE = {"preparer": _l("preparer"), "approver": _l("approver"), "admin": _l("administrator")}
KIND = {"initial": _l("first release"), "revision": _l("scheduled revision (MINOR)"),
        "correction": _l("correction (PATCH)")}
MARK = {"primary": _l("primary suppression"), "secondary": _l("secondary suppression")}
JOB = {"none": _l("not queued"), "pending": _l("waiting"), "running": _l("running"),
       "failed": _l("failed"), "done": _l("done")}
STEP = {"waiting": _l("waiting for the embargo"), "package": _l("building the data package"),
        "publish": _l("publishing"), "record": _l("recording"), "done": _l("done")}
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def t(mapping: dict, key: str | None) -> str:
    if key is None:
        return ""
    return str(mapping.get(key, key))
