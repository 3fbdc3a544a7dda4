import os

import pyotp
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

from tests.factories import PASSWORD, AgentFactory, OrganizationFactory, SupervisorFactory

LOGIN_URL = "/_allauth/app/v1/auth/login"
MFA_URL = "/_allauth/app/v1/auth/2fa/authenticate"
SESSION_URL = "/_allauth/app/v1/auth/session"
REAUTH_URL = "/_allauth/app/v1/auth/reauthenticate"
TOTP_URL = "/_allauth/app/v1/account/authenticators/totp"

REQUIRE_SERVICES = bool(os.environ.get("EM_REQUIRE_SERVICES"))
_SKIPPED_AT_COLLECTION = pytest.StashKey[list]()


def _require_services() -> bool:
    # Read when each report is made, not at import, so tests/test_require_services.py can switch it.
    return bool(os.environ.get("EM_REQUIRE_SERVICES"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (EM_REQUIRE_SERVICES=1) a test that skips for want of a service is a failure, and so
    is an xfail (expected to fail or not, it is a test that does not run its assertions in CI)."""
    outcome = yield
    report = outcome.get_result()
    if not _require_services():
        return
    if hasattr(report, "wasxfail"):
        reason = report.wasxfail
        del report.wasxfail
        report.outcome = "failed"
        report.longrepr = f"xfail in CI, where every test must run and pass: {reason or 'no reason given'}"
    elif report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every service must be present: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips while it is collected (pytest.importorskip, a module-level pytest.skip)
    runs none of its tests: in CI that fails the run too, at its end, so the other tests still run."""
    outcome = yield
    report = outcome.get_result()
    if _require_services() and report.skipped:
        collector.config.stash.setdefault(_SKIPPED_AT_COLLECTION, []).append(report)


def pytest_sessionfinish(session, exitstatus):
    nothing_failed = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if session.config.stash.get(_SKIPPED_AT_COLLECTION, []) and nothing_failed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = config.stash.get(_SKIPPED_AT_COLLECTION, [])
    if not skipped:
        return
    terminalreporter.section("EM_REQUIRE_SERVICES: skipped at collection, so the run fails", red=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        terminalreporter.line(f"FAILED {report.nodeid or report.fspath} - skipped in CI: {reason}", red=True)


def pytest_report_header(config):
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    cache_backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"em-agent: database={database} cache={cache_backend} require_services={REQUIRE_SERVICES}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _clear_cache() -> None:
    from em_agent import sessions

    sessions._local.clear()  # the per-process copy of organisations' idle timeouts
    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        # Only this project's keys: FLUSHDB would also drop whatever else shares the database.
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:*"):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _clean_cache():
    # Used TOTP codes, allauth's rate limits and timeout caches live in the cache: no test may
    # inherit another's.
    _clear_cache()
    yield
    _clear_cache()


@pytest.fixture(autouse=True)
def _language_of_no_request():
    # A request leaves its language active in the thread (as the server's next request replaces
    # it); a test that calls code outside a request reads the default, whichever test ran before.
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    """Tasks run eagerly unless a test starts a real worker (and turns this off)."""
    from em_agent.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL")


@pytest.fixture
def redis_cache():
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("needs Redis: set REDIS_URL")


class AppClient:
    """The mobile app: allauth headless login, then the session token in X-Session-Token."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self.token: str | None = None
        self.language: str | None = None

    def _headers(self, headers: dict) -> dict:
        merged = dict(headers)
        if self.token:
            merged.setdefault("HTTP_X_SESSION_TOKEN", self.token)
        if self.language:
            merged.setdefault("HTTP_ACCEPT_LANGUAGE", self.language)
        return merged

    def _remember_token(self, response) -> None:
        try:
            token = response.json().get("meta", {}).get("session_token")
        except ValueError:
            return
        if token:
            self.token = token

    def get(self, path: str, data=None, **headers):
        response = self.client.get(path, data, **self._headers(headers))
        return response

    def post(self, path: str, data=None, **headers):
        response = self.client.post(
            path, data or {}, content_type="application/json", **self._headers(headers)
        )
        if path.startswith("/_allauth/"):
            self._remember_token(response)
        return response

    def put(self, path: str, data=None, **headers):
        return self.client.put(path, data or {}, content_type="application/json", **self._headers(headers))

    def delete(self, path: str, **headers):
        return self.client.delete(path, **self._headers(headers))

    def login(self, email: str, password: str = PASSWORD):
        return self.post(LOGIN_URL, {"email": email, "password": password})

    def login_with_totp(self, email: str, secret: str, password: str = PASSWORD):
        first = self.login(email, password)
        assert first.status_code == 401, first.content
        return self.post(MFA_URL, {"code": pyotp.TOTP(secret).now()})


@pytest.fixture
def app_client() -> AppClient:
    return AppClient()


@pytest.fixture
def make_app_client():
    return AppClient


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Contoso", slug="contoso", default_timezone="Europe/Amsterdam")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Fabrikam", slug="fabrikam", default_timezone="America/New_York")


@pytest.fixture
def mfa_org(db):
    return OrganizationFactory(name="Northwind", slug="northwind", mfa_required=True)


@pytest.fixture
def supervisor(org):
    return SupervisorFactory(organization=org, email="sam@contoso.test", first_name="Sam", last_name="Jansen")


@pytest.fixture
def agent(org, supervisor):
    """Alice: activated agent of Contoso."""
    return AgentFactory(
        organization=org, supervisor=supervisor, user__email="alice@contoso.test", name="Alice"
    )


@pytest.fixture
def teammate(org, supervisor):
    """Bob: a colleague of Alice."""
    return AgentFactory(organization=org, supervisor=supervisor, user__email="bob@contoso.test", name="Bob")


@pytest.fixture
def new_agent(org, supervisor):
    """Nina: provisioned, not yet activated."""
    return AgentFactory(
        organization=org,
        supervisor=supervisor,
        user__email="nina@contoso.test",
        name="Nina",
        activated_at=None,
    )


@pytest.fixture
def outsider(other_org):
    """Charlie: an agent of another organisation."""
    return AgentFactory(organization=other_org, user__email="charlie@fabrikam.test", name="Charlie")


@pytest.fixture
def mfa_agent(mfa_org):
    return AgentFactory(organization=mfa_org, user__email="mo@northwind.test", name="Mo")


@pytest.fixture
def logged_in(app_client):
    """Logs an agent in through the real allauth endpoint and returns the client."""

    def _login(agent, client: AppClient | None = None) -> AppClient:
        client = client or AppClient()
        response = client.login(agent.user.email)
        assert response.status_code == 200, response.content
        return client

    return _login


def run_together(calls):
    """Runs the calls in threads released at the same instant; returns their results in order.

    Each thread has its own database connection (closed at the end), so on PostgreSQL they really
    race; an exception in a thread is re-raised here."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(calls), timeout=30)
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as error:  # noqa: BLE001  (handed to the test below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def agent_with_totp(organization):
    """An agent of the organisation with TOTP enrolled; returns (agent, secret)."""
    from allauth.mfa.totp.internal.auth import TOTP

    agent = AgentFactory(organization=organization)
    secret = pyotp.random_base32()
    TOTP.activate(agent.user, secret)
    return agent, secret
