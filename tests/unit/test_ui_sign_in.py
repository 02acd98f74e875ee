"""The web UI's sign-in, sign-out and first-admin setup on a server with --auth, through the app
in-process (the browser test in tests/e2e drives the same forms in Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.entities.auth import AuditQuery
from shipyard.server import create_app
from shipyard.server.authentication import SESSION_COOKIE, bootstrap_code_hash
from shipyard.server.ui.rendering import safe_next
from shipyard.testing import ASGITransport
from tests.support import BASE, wait_for

PASSWORD = "correct horse battery"
CODE = "UI-SETUP-CODE"


class _Shared(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


class Site:
    def __init__(self, root: Path, *, auth: bool = True) -> None:
        settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'ui.db'}",
                                    artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver",
                                    server_auth=auth, server_run_monitors=False)
        self.app = create_app(settings, bootstrap_hash=bootstrap_code_hash(CODE) if auth else None)
        self.transport = ASGITransport(self.app)

    def browser(self, base: str = BASE) -> httpx.Client:
        """A new browser (its own cookies) of the one app; closing it leaves the app running."""
        return httpx.Client(base_url=base, transport=_Shared(self.transport))

    def close(self) -> None:
        self.app.state.client.close()
        self.transport.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path)
    yield made
    made.close()


def csrf(browser: httpx.Client, path: str = "/ui/login") -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def set_up(site: Site) -> None:
    with site.browser() as browser:
        token = csrf(browser, "/ui/setup")
        done = browser.post("/ui/setup", data={"csrf_token": token, "code": CODE, "name": "admin",
                                               "password": PASSWORD, "password_again": PASSWORD})
        assert (done.status_code, done.headers["location"]) == (303, "/ui/login?done=setup")


def sign_in(browser: httpx.Client, name: str = "admin", password: str = PASSWORD,
            next_page: str = "/ui/models") -> httpx.Response:
    return browser.post("/ui/login", data={"csrf_token": csrf(browser), "username": name, "password": password,
                                           "next": next_page})


def test_a_page_sends_a_visitor_to_the_sign_in_form_and_back(site: Site) -> None:
    with site.browser() as browser:
        page = browser.get("/ui/experiments/1?sort=name&filter=x")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=/ui/experiments/1%3Fsort%3Dname%26filter%3Dx"
        htmx = browser.get("/ui/models", headers={"HX-Request": "true"})
        assert (htmx.status_code, htmx.headers["hx-redirect"]) == (204, "/ui/login?next=/ui/models")
        form = browser.get(page.headers["location"])
        assert form.status_code == 200
        assert 'name="next" value="/ui/experiments/1?sort=name&amp;filter=x"' in form.text
        assert "signed-in-user" not in form.text
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]


def test_the_first_admin_is_made_once_with_the_one_time_code(site: Site) -> None:
    with site.browser() as browser:
        token = csrf(browser, "/ui/setup")
        fields = {"csrf_token": token, "code": "WRONG", "name": "admin", "password": PASSWORD,
                  "password_again": PASSWORD}
        wrong = browser.post("/ui/setup", data=fields)
        assert wrong.status_code == 401
        assert "wrong bootstrap code" in wrong.text
        differ = browser.post("/ui/setup", data={**fields, "code": CODE, "password_again": PASSWORD + "!"})
        assert differ.status_code == 400
        assert "the two passwords differ" in differ.text
    set_up(site)
    with site.browser() as browser:
        assert "made only once" in browser.get("/ui/setup").text
        again = browser.post("/ui/setup", data={"csrf_token": csrf(browser), "code": CODE,
                                                "name": "other", "password": PASSWORD, "password_again": PASSWORD})
        assert again.status_code == 409
    assert [u.name for u in site.app.state.authenticator.store.list_users()] == ["admin"]


def test_sign_in_sets_a_safe_session_cookie_and_sign_out_revokes_it(site: Site) -> None:
    set_up(site)
    with site.browser() as browser:
        signed = sign_in(browser)
        assert (signed.status_code, signed.headers["location"]) == (303, "/ui/models")
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=shy_")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax"} <= attributes
        assert "secure" not in attributes  # plain http: a Secure cookie would never come back
        copied = httpx.Cookies(browser.cookies)

        page = browser.get("/ui/models")
        assert page.status_code == 200
        assert re.search(r'id="signed-in-user"[^>]*>admin<', page.text)
        assert 'action="/ui/logout"' in page.text
        [token] = site.app.state.authenticator.store.list_tokens("admin", kind="session")
        assert not token.revoked
        assert token.expires

        out = browser.post("/ui/logout", data={"csrf_token": csrf(browser, "/ui/models")})
        assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert SESSION_COOKIE not in browser.cookies
    [token] = site.app.state.authenticator.store.list_tokens("admin", kind="session")
    assert token.revoked
    with site.browser() as stolen:  # a copy of the cookie stops working too, and is dropped
        stolen.cookies = copied
        assert stolen.cookies[SESSION_COOKIE].startswith("shy_")
        page = stolen.get("/ui/models")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/login")
        assert f'{SESSION_COOKIE}=""' in page.headers["set-cookie"]
        assert stolen.get(page.headers["location"]).status_code == 200  # no redirect loop


def test_the_cookie_is_secure_over_https(site: Site) -> None:
    set_up(site)
    with site.browser("https://testserver") as browser:
        signed = sign_in(browser)
        assert signed.status_code == 303
        assert "secure" in {part.strip().lower() for part in signed.headers["set-cookie"].split(";")}


def test_a_refused_sign_in_shows_the_form_again_and_is_audited(site: Site) -> None:
    set_up(site)
    with site.browser() as browser:
        wrong = sign_in(browser, password="not the password at all")
        assert wrong.status_code == 401
        assert "wrong user name or password" in wrong.text
        assert 'value="admin"' in wrong.text
        assert SESSION_COOKIE not in browser.cookies
        unknown = sign_in(browser, name="nobody", password="not the password at all")
        assert unknown.status_code == 401
        assert re.search(r'id="sign-in-error">([^<]*)<', unknown.text).group(1) == \
            re.search(r'id="sign-in-error">([^<]*)<', wrong.text).group(1)
        forged = browser.post("/ui/login", data={"csrf_token": "x" * 43, "username": "admin", "password": PASSWORD})
        assert forged.status_code == 403
        assert SESSION_COOKIE not in browser.cookies
    store = site.app.state.authenticator.store

    def refusals() -> list[str]:
        return [e.principal for e in store.audit(AuditQuery(action="ui_sign_in")) if e.status == 401]

    assert sorted(wait_for(lambda: len(refusals()) == 2 and refusals(), what="two audited refusals")) == \
        ["admin", "nobody"]


def test_sign_in_is_throttled_after_repeated_failures(site: Site) -> None:
    set_up(site)
    with site.browser() as browser:
        for _ in range(5):
            assert sign_in(browser, password="guess guess guess").status_code == 401
        throttled = sign_in(browser)  # even the right password, for now
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert SESSION_COOKIE not in browser.cookies


def test_without_auth_there_is_nothing_to_sign_in_to(tmp_path: Path) -> None:
    open_site = Site(tmp_path, auth=False)
    try:
        with open_site.browser() as browser:
            assert "started without" in browser.get("/ui/login").text
            page = browser.get("/ui/experiments")
            assert page.status_code == 200
            assert "signed-in-user" not in page.text
            token = browser.cookies["shipyard_csrf"]  # the double-submit token every page sets
            refused = browser.post("/ui/login", data={"csrf_token": token, "username": "a", "password": "b"})
            assert refused.status_code == 409
    finally:
        open_site.close()


@pytest.mark.parametrize(("given", "expected"), [
    ("/ui/runs?experiment=1", "/ui/runs?experiment=1"),
    (None, "/ui/experiments"),
    ("", "/ui/experiments"),
    ("//evil.example/ui/", "/ui/experiments"),
    ("https://evil.example/ui/x", "/ui/experiments"),
    ("/ui/\\\\evil.example", "/ui/experiments"),
    ("/api/v1/users", "/ui/experiments"),
    ("/ui/login?next=/ui/models", "/ui/experiments"),
    ("/ui/x\r\nSet-Cookie: a=b", "/ui/experiments"),
], ids=["page", "none", "empty", "scheme-relative", "absolute", "backslash", "api", "login-loop", "header-split"])
def test_after_signing_in_only_pages_of_this_ui_are_a_destination(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected
