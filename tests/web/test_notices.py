"""The notice of a correction in kk/ru/en: required in the default language, the others
offered; stored as ``Release.notices`` (migration 0009n) by ``workflow.create_release``."""

from __future__ import annotations

import pytest

from publisher.notices import NoticeError, notice_in, notice_texts


def test_a_correction_needs_the_default_language_the_others_are_offered():
    assert notice_texts({"ru": "  исправлено  "}, "түзетілді", kind="correction",
                        default="kk") == {"ru": "исправлено", "kk": "түзетілді"}
    assert notice_texts(None, "түзетілді", kind="correction", default="kk") == {"kk": "түзетілді"}
    assert notice_texts(None, None, kind="revision", default="kk") is None
    with pytest.raises(NoticeError, match=r"needs its notice in the default language \(kk\)"):
        notice_texts({"ru": "только по-русски"}, None, kind="correction", default="kk")
    with pytest.raises(NoticeError, match="unknown language 'de'"):
        notice_texts({"de": "x"}, "y", kind="correction", default="kk")
    with pytest.raises(NoticeError, match="text is 2001 characters long"):
        notice_texts({"kk": "x" * 2001}, None, kind="correction", default="kk")
    texts = {"kk": "түзетілді", "ru": "исправлено"}
    assert notice_in(texts, "ru", "kk") == "исправлено"
    assert notice_in(texts, "en", "kk") == "түзетілді"  # not written in English: the default's


def test_the_notices_column_is_stored(store, users):  # noqa: ANN001
    from publisher.db import transaction
    from publisher.workflow_models import Release

    with transaction(store) as s:
        r = Release(series="notice-test", version="1.0.1", kind="correction", state="draft",
                    title={}, spec={}, notice="түзетілді", prepared_by_id=users["prep"],
                    changed_by_id=users["prep"], content_rev=0, upload_name="",
                    upload_sha256="", notices={"kk": "түзетілді", "ru": "исправлено"})
        s.add(r)
        s.flush()
        rid = r.id
    with store() as s:
        assert s.get(Release, rid).notices == {"kk": "түзетілді", "ru": "исправлено"}
