"""Single sign-on through an OpenID Connect provider, end to end: a Shipyard server with --auth and
a small provider (tests/integration/oidc_provider.py), both real HTTP servers on loopback ports,
and httpx as the browser between them.

What is checked: the first sign-in makes the user, linked to the provider's (issuer, subject),
and starts the same web session a password starts; later sign-ins find that user by the link
alone; a callback that does not belong to this browser's sign-in, an ID token that is forged,
for another client, for another sign-in or expired, a PKCE verifier that does not match, the
provider's own refusal and an unreachable provider all sign nobody in, each with its reason, and
each is in the audit log.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import OctKey, RSAKey

from shipyard.auth import ANONYMOUS
from shipyard.auth.service import AuthService
from shipyard.config import Settings
from shipyard.entities.auth import AuditQuery, Role
from shipyard.errors import NotFound
from shipyard.server import create_app
from shipyard.server.authentication import SESSION_COOKIE
from shipyard.server.ui.oidc_pages import FLOW_COOKIE
from tests.integration.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.support import free_port, uvicorn_thread, wait_for

PASSWORD = "a long enough passphrase 7"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture(autouse=True)
def behaving(provider: Provider) -> Iterator[None]:
    """Each test starts with the provider behaving and signing in the same person."""
    yield
    provider.user = {"sub": "u-1", "preferred_username": "ada", "email": "ada@example.com", "email_verified": True}
    provider.tamper = None
    provider.signing_key = None
    provider.refuse = ""
    provider.auth_methods = ["client_secret_basic", "none"]


class Site:
    """A Shipyard server with --auth on a loopback port; ``browser()`` is a new browser of it."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def store(self) -> Any:
        return self.app.state.client.store.auth

    def operator(self) -> AuthService:
        return AuthService(self.store, ANONYMOUS)

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def events(self, action: str, count: int = 1) -> list[Any]:
        """The audit events of ``action``, oldest first, once there are ``count`` (the audit log is
        written just after each response)."""
        def found() -> list[Any]:
            events = self.store.audit(AuditQuery(action=action))
            return sorted(events, key=lambda e: e.event_id) if len(events) >= count else []

        return wait_for(found, timeout=10, what=f"{count} audit event(s) of {action}")


@contextmanager
def shipyard(root: Path, issuer: str, **oidc: Any) -> Iterator[Site]:
    oidc = {"server_oidc_client_id": CLIENT_ID, "server_oidc_client_secret": CLIENT_SECRET,
            "server_oidc_provider_name": "Test IdP", **oidc}
    settings = Settings.resolve(
        env={}, tracking_uri=f"sqlite:///{root / 'sso.db'}", artifact_uri=str(root / "artifacts"),
        server_allowed_hosts="127.0.0.1", server_auth=True, server_run_monitors=False, server_oidc_issuer=issuer,
        **oidc)
    app = create_app(settings)
    try:
        with uvicorn_thread(app, name="shipyard-sso") as url:
            yield Site(app, url)
    finally:
        app.state.client.close()


@pytest.fixture
def site(tmp_path: Path, provider: Provider) -> Iterator[Site]:
    with shipyard(tmp_path, provider.url, server_oidc_grants="default:viewer") as made:
        yield made


def to_provider(browser: httpx.Client, next_page: str = "/ui/models") -> httpx.Response:
    """Press "Sign in with …": the provider's answer (its redirect back, with a code or an error)."""
    start = browser.get("/ui/oidc/login", params={"next": next_page})
    assert start.status_code == 303, start.text
    back = browser.get(start.headers["location"])
    assert back.status_code == 302, back.text
    return back


def sign_in(browser: httpx.Client, next_page: str = "/ui/models") -> httpx.Response:
    """A whole single sign-on; returns the callback's answer."""
    return browser.get(to_provider(browser, next_page).headers["location"])


def assert_signed_in_nobody(site: Site, response: httpx.Response, status: int, reason: str, *,
                            callbacks: int = 1) -> None:
    """``response`` is the sign-in page again, saying ``reason``, and the audit log's
    ``callbacks``-th callback is this refusal."""
    assert response.status_code == status, response.text
    assert reason in html.unescape(response.text)
    assert SESSION_COOKIE not in response.cookies
    assert 'id="sign-in-oidc"' in response.text  # the sign-in page again, to try once more
    event = site.events("ui_oidc_callback", callbacks)[-1]
    assert event.status == status
    assert reason in event.detail


# -- signing in ------------------------------------------------------------------------------------
def test_the_first_sign_in_makes_the_user_and_starts_a_web_session(site: Site, provider: Provider) -> None:
    with site.browser() as browser:
        page = browser.get("/ui/login", params={"next": "/ui/models"})
        assert 'id="sign-in-oidc" href="/ui/oidc/login?next=/ui/models"' in page.text
        assert "Sign in with Test IdP" in page.text
        done = sign_in(browser)
        assert (done.status_code, done.headers["location"]) == (303, "/ui/models")
        cookies = done.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}=shy_"))
        assert {"httponly", "path=/", "samesite=lax"} <= {p.strip().lower() for p in session.split(";")[1:]}
        assert any(c.startswith(f'{FLOW_COOKIE}=""') and "Path=/ui/oidc/" in c for c in cookies)  # read once
        assert browser.get("/api/v1/auth/whoami").json()["principal"]["name"] == "ada"
        experiments = browser.get("/ui/experiments")
        assert experiments.status_code == 200
        assert "ada" in experiments.text

    sent = provider.requests[-1]
    assert (sent["code_challenge_method"], sent["client_id"], sent["scope"]) == ("S256", CLIENT_ID,
                                                                                 "openid email profile")
    assert sent["redirect_uri"] == f"{site.url}/ui/oidc/callback"
    assert len(sent["state"]) >= 32
    assert len(sent["nonce"]) >= 32
    assert provider.token_requests[-1]["form"]["code_verifier"]  # checked against the challenge there
    assert "client_secret" not in provider.token_requests[-1]["form"]  # sent as HTTP Basic, not in the body

    user = site.store.user_by_identity(provider.url, "u-1")
    assert (user.name, user.email, user.admin, user.service) == ("ada", "ada@example.com", False, False)
    assert site.store.password_hash("ada") is None
    assert [(m.project, m.role) for m in site.store.grants("ada")] == [("default", Role.VIEWER)]
    signed = site.events("ui_oidc_callback")
    assert [(e.principal, e.status) for e in signed] == [("ada", 303)]
    assert signed[0].object.startswith("token:")


def test_a_later_sign_in_finds_the_user_by_the_providers_subject(site: Site, provider: Provider) -> None:
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
    provider.user = {**provider.user, "preferred_username": "ada.lovelace", "email": "al@example.org"}
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
        assert browser.get("/api/v1/auth/whoami").json()["principal"]["name"] == "ada"
    assert [u.name for u in site.store.list_users()] == ["ada"]
    assert [e.principal for e in site.events("ui_oidc_callback", 2)] == ["ada", "ada"]


def test_without_grants_configured_a_new_user_holds_no_role(tmp_path: Path, provider: Provider) -> None:
    with shipyard(tmp_path, provider.url) as site, site.browser() as browser:
        assert sign_in(browser).status_code == 303
        assert site.store.grants("ada") == []
        assert browser.get("/api/v1/auth/whoami").json()["principal"]["name"] == "ada"
        assert browser.get("/ui/experiments").status_code == 403


def test_a_name_that_is_no_user_name_falls_back_to_the_email_address(site: Site, provider: Provider) -> None:
    provider.user = {"sub": "u-7", "preferred_username": "Grace Hopper", "email": "grace@example.com"}
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
    assert site.store.user_by_identity(provider.url, "u-7").name == "grace@example.com"


def test_a_user_name_another_user_holds_is_not_taken_over(site: Site, provider: Provider) -> None:
    site.operator().create_user("ada", password=PASSWORD, admin=True)
    with site.browser() as browser:
        refused = sign_in(browser)
    assert_signed_in_nobody(site, refused, 409, "belongs to another Shipyard user")
    with pytest.raises(NotFound):
        site.store.user_by_identity(provider.url, "u-1")
    assert [(u.name, u.admin) for u in site.store.list_users()] == [("ada", True)]
    assert site.events("ui_oidc_callback")[-1].principal == "ada"


def test_an_admin_links_an_older_password_account_to_its_sign_on(site: Site, provider: Provider) -> None:
    site.operator().create_user("ada", password=PASSWORD)
    site.operator().create_user("root", password=PASSWORD, admin=True)
    _, secret = site.operator().create_token("admin", user="root")
    with site.browser() as api:
        api.headers["Authorization"] = f"Bearer {secret}"
        linked = api.post("/api/v1/users/ada/identities", json={"subject": "u-1"})  # the server's own issuer
        assert linked.status_code == 201, linked.text
    assert site.store.user_by_identity(provider.url, "u-1").name == "ada"
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
        assert browser.get("/api/v1/auth/whoami").json()["principal"]["name"] == "ada"
    assert [u.name for u in site.store.list_users()] == ["ada", "root"]  # no second ada
    assert site.events("link_user_identity")[-1].principal == "root"
    with site.browser() as api:
        api.headers["Authorization"] = f"Bearer {secret}"
        assert api.delete("/api/v1/users/ada/identities", params={"subject": "u-1"}).status_code == 200
    with site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 409, "belongs to another Shipyard user", callbacks=2)


def test_another_subject_with_the_same_name_is_another_person(site: Site, provider: Provider) -> None:
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
    provider.user = {**provider.user, "sub": "u-2"}  # a new account at the provider that took the name "ada"
    with site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 409, "belongs to another Shipyard user", callbacks=2)
    assert site.store.user_by_identity(provider.url, "u-1").name == "ada"
    with pytest.raises(NotFound):
        site.store.user_by_identity(provider.url, "u-2")


def test_a_token_just_past_its_expiry_passes_within_the_clock_allowance(site: Site, provider: Provider) -> None:
    provider.tamper = lambda c, h: ({**c, "exp": int(time.time()) - 30}, h)  # clocks 30 s apart: let through
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303


def test_grants_naming_a_missing_project_make_nobody(tmp_path: Path, provider: Provider) -> None:
    with shipyard(tmp_path, provider.url, server_oidc_grants="default:viewer,ghost:editor") as site, \
            site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 409, "project 'ghost' does not exist")
        assert site.store.list_users() == []


def test_the_page_to_return_to_stays_on_this_server(site: Site) -> None:
    with site.browser() as browser:
        back = to_provider(browser, "/ui/datasets").headers["location"]
        _rewrite_flow(browser, 4, "https://evil.example/phish")
        done = browser.get(back)
    assert (done.status_code, done.headers["location"]) == (303, "/ui/experiments")
    with site.browser() as browser:
        assert sign_in(browser, "/ui/models?q=" + "x" * 2000).headers["location"] == "/ui/experiments"


def test_a_disabled_user_is_refused(site: Site, provider: Provider) -> None:
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303
    site.operator().create_user("root", password=PASSWORD, admin=True)
    site.operator().disable_user("ada")
    with site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 401, "user 'ada' is disabled", callbacks=2)


def test_the_secret_goes_in_the_form_when_the_provider_takes_it_only_there(tmp_path: Path,
                                                                          provider: Provider) -> None:
    provider.auth_methods = ["client_secret_post"]
    with shipyard(tmp_path, provider.url) as site, site.browser() as browser:
        assert sign_in(browser).status_code == 303
    sent = provider.token_requests[-1]
    assert (sent["form"]["client_id"], sent["form"]["client_secret"], sent["authorization"]) == (
        CLIENT_ID, CLIENT_SECRET, "")


def test_a_public_client_signs_in_with_pkce_alone(tmp_path: Path, provider: Provider) -> None:
    with shipyard(tmp_path, provider.url, server_oidc_client_secret="") as site, site.browser() as browser:
        assert sign_in(browser).status_code == 303
        assert browser.get("/api/v1/auth/whoami").json()["principal"]["name"] == "ada"
    sent = provider.token_requests[-1]
    assert (sent["form"]["client_id"], sent["authorization"], "client_secret" in sent["form"]) == (
        CLIENT_ID, "", False)


def test_a_rotated_signing_key_is_fetched_again(site: Site, provider: Provider) -> None:
    with site.browser() as browser:
        assert sign_in(browser).status_code == 303  # the first key is now cached
    old = provider.key
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
    try:
        provider.tamper = lambda claims, header: (claims, {**header, "kid": "key-2"})
        with site.browser() as browser:
            assert sign_in(browser).status_code == 303
    finally:
        provider.key = old


# -- what signs nobody in --------------------------------------------------------------------------
def test_a_callback_with_another_state_is_refused(site: Site) -> None:
    with site.browser() as browser:
        back = to_provider(browser).headers["location"]
        forged = back.replace("state=", "state=x")
        assert_signed_in_nobody(site, browser.get(forged), 401, "its state differs")
    with site.browser() as elsewhere:  # a callback in a browser that never started a sign-in
        assert_signed_in_nobody(site, elsewhere.get(back), 401, "was not started in this browser", callbacks=2)
    assert site.store.list_users() == []


TAMPERED = {
    "another key's signature": ("signing_key", "bad_signature"),
    "another client's token": (lambda c, h: ({**c, "aud": "someone-else"}, h), "Invalid claim: 'aud'"),
    "another sign-in's nonce": (lambda c, h: ({**c, "nonce": "not-this-one"}, h), "Invalid claim: 'nonce'"),
    "no nonce": (lambda c, h: ({k: v for k, v in c.items() if k != "nonce"}, h), "Missing claim: 'nonce'"),
    "expired": (lambda c, h: ({**c, "exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, h),
                "expired"),
    "another issuer": (lambda c, h: ({**c, "iss": "https://evil.example"}, h), "Invalid claim: 'iss'"),
    "a shared-secret signature": ("hs256", "not allowed"),
}


@pytest.mark.parametrize("how", list(TAMPERED))
def test_an_id_token_that_does_not_verify_signs_nobody_in(site: Site, provider: Provider, how: str) -> None:
    change, reason = TAMPERED[how]
    if change == "signing_key":  # the published key id, another private key
        provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    elif change == "hs256":  # the old trick: a token "signed" with a key the attacker knows
        provider.signing_key = OctKey.import_key(CLIENT_SECRET.encode() * 2)  # type: ignore[assignment]
        provider.tamper = lambda c, h: (c, {"alg": "HS256"})
    else:
        provider.tamper = change
    with site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 401, reason)
    assert site.store.list_users() == []


def _rewrite_flow(browser: httpx.Client, field: int, value: Any) -> None:
    """Change one field of the sign-in's cookie, as someone with the browser in hand could."""
    flow = browser.cookies[FLOW_COOKIE]
    fields = json.loads(base64.urlsafe_b64decode(flow + "=" * (-len(flow) % 4)))
    fields[field] = value
    browser.cookies.set(FLOW_COOKIE, base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("="),
                        path="/ui/oidc/")


def test_a_pkce_verifier_that_does_not_match_is_refused_by_the_provider(site: Site) -> None:
    with site.browser() as browser:
        back = to_provider(browser).headers["location"]
        _rewrite_flow(browser, 2, "a-verifier-of-someone-else-0123456789")
        refused = browser.get(back)
    assert_signed_in_nobody(site, refused, 401, "PKCE verification failed")
    assert site.store.list_users() == []


def test_a_stale_or_damaged_sign_in_is_refused(site: Site) -> None:
    with site.browser() as browser:
        start = browser.get("/ui/oidc/login")
        flow = next(c for c in start.headers.get_list("set-cookie") if c.startswith(f"{FLOW_COOKIE}="))
        assert {"httponly", "max-age=600", "path=/ui/oidc/", "samesite=lax"} <= {
            p.strip().lower() for p in flow.split(";")[1:]}
        back = browser.get(start.headers["location"]).headers["location"]
        _rewrite_flow(browser, 5, time.time() - 601)
        assert_signed_in_nobody(site, browser.get(back), 401, "took longer than 10 minutes")
    with site.browser() as browser:
        back = to_provider(browser).headers["location"]
        browser.cookies.set(FLOW_COOKIE, "not-a-sign-in", path="/ui/oidc/")
        assert_signed_in_nobody(site, browser.get(back), 401, "cookie is damaged", callbacks=2)


def test_the_providers_refusal_is_shown(site: Site, provider: Provider) -> None:
    provider.refuse = "access_denied"
    with site.browser() as browser:
        assert_signed_in_nobody(site, sign_in(browser), 401, "access_denied (the user said no)")


def test_a_provider_that_cannot_be_reached_is_a_clear_refusal(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with shipyard(tmp_path, nowhere) as site, site.browser() as browser:
        started = browser.get("/ui/oidc/login")
        assert started.status_code == 401
        assert f"could not reach the sign-in provider at {nowhere}/.well-known/openid-configuration" in started.text
        assert site.events("ui_oidc_login")[-1].status == 401


def test_a_provider_that_names_another_issuer_is_refused(tmp_path: Path, provider: Provider) -> None:
    other_name = provider.url.replace("127.0.0.1", "localhost")  # the same server, but not the issuer it names
    with shipyard(tmp_path, other_name) as site, site.browser() as browser:
        started = browser.get("/ui/oidc/login")
        assert started.status_code == 401
        assert "names issuer" in started.text


def test_without_single_sign_on_its_routes_answer_404(tmp_path: Path) -> None:
    with shipyard(tmp_path, "") as site, site.browser() as browser:
        assert 'id="sign-in-oidc"' not in browser.get("/ui/login").text
        for path in ("/ui/oidc/login", "/ui/oidc/callback?code=x&state=y"):
            answer = browser.get(path)
            assert answer.status_code == 404
            assert "single sign-on is not configured on this server" in answer.text
