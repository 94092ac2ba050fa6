"""``POST /api/auth/token`` under the login back-off: 429 with ``Retry-After``, as the form."""

from __future__ import annotations

import time


def _token(c, username: str, password: str, lang: str = "en"):  # noqa: ANN001, ANN202
    return c.post("/api/auth/token", json={"username": username, "password": password},
                  headers={"Accept-Language": lang})


def test_429_names_the_same_back_off_as_the_login_form(app, users):
    c = app.test_client()
    for _ in range(4):  # 3 free failures, then a doubling back-off (1 s after the 4th)
        assert _token(c, "prep", "wrong-password").status_code == 401
    r = _token(c, "prep", "prep-password-1")  # the right password, too soon
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 30
    body = r.get_json()
    assert body["code"] == "too_many_requests" and f"Wait {wait} seconds" in body["message"]
    # the form answers the same account from the same address with the same figure
    form = app.test_client()
    import re

    page = form.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r2 = form.post("/login", data={"username": "prep", "password": "prep-password-1",
                                   "csrf_token": csrf})
    assert r2.status_code == 429 and abs(int(r2.headers["Retry-After"]) - wait) <= 1
    time.sleep(int(r2.headers["Retry-After"]) + 0.1)  # after the wait the right password works
    assert _token(c, "prep", "prep-password-1").status_code == 201


def test_429_message_in_the_callers_language(app, users):
    c = app.test_client()
    for _ in range(4):
        _token(c, "appr", "wrong-password")
    r = _token(c, "appr", "appr-password-1", lang="ru")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "Подождите" in r.get_json()["message"]


def test_openapi_documents_retry_after(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    resp = doc["paths"]["/api/auth/token"]["post"]["responses"]["429"]
    assert "Retry-After" in resp["headers"]
