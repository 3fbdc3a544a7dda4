"""EM_REQUIRE_SERVICES=1 (CI): a test that does not run its assertions fails the run, whichever way
it got out of them (a skip for want of a service, a skip while its module is collected, an xfail)."""

import pytest

pytest_plugins = ["pytester"]

# The hooks under test, from the project's conftest; pytest-django stays out of the inner run (this
# process's Django is already set up, and the tiny files need none of it).
CONFTEST = """
from tests.conftest import (
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
"""

CASES = {
    "skip": """
import pytest

def test_needs_redis():
    pytest.skip("needs Redis: set REDIS_URL")
""",
    "skip_marker": """
import pytest

@pytest.mark.skipif(True, reason="needs PostgreSQL")
def test_needs_postgres():
    pass
""",
    "fixture_skip": """
import pytest

@pytest.fixture
def redis_cache():
    pytest.skip("needs Redis: set REDIS_URL")

def test_uses_redis(redis_cache):
    pass
""",
    "collection_skip": """
import pytest

pytest.skip("needs the FCM emulator", allow_module_level=True)

def test_push():
    pass
""",
    "importorskip": """
import pytest

pytest.importorskip("a_module_that_is_not_installed")

def test_uses_it():
    pass
""",
    "xfail": """
import pytest

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False
""",
    "xpass": """
import pytest

@pytest.mark.xfail(reason="known bug, fixed meanwhile")
def test_fixed_bug():
    assert True
""",
}

PASSING = """
def test_passes():
    assert 1 + 1 == 2
"""


def _run(pytester, source, *, ci: bool, monkeypatch):
    if ci:
        monkeypatch.setenv("EM_REQUIRE_SERVICES", "1")
    else:
        monkeypatch.delenv("EM_REQUIRE_SERVICES", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tiny=source)
    return pytester.runpytest_inprocess("-p", "no:django", "-p", "no:cacheprovider")


@pytest.mark.parametrize("case", ["skip", "skip_marker", "fixture_skip", "xfail", "xpass"])
def test_a_test_that_skips_or_xfails_fails_in_ci(pytester, monkeypatch, case):
    result = _run(pytester, CASES[case], ci=True, monkeypatch=monkeypatch)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    # A skip in the setup (a marker, a fixture such as `postgres`) is reported as an error.
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1
    assert "skipped" not in outcomes and "xfailed" not in outcomes and "xpassed" not in outcomes
    result.stdout.fnmatch_lines(["*in CI, where every*"])


@pytest.mark.parametrize("case", ["collection_skip", "importorskip"])
def test_a_module_skipped_at_collection_fails_the_run_in_ci(pytester, monkeypatch, case):
    result = _run(pytester, CASES[case] + PASSING, ci=True, monkeypatch=monkeypatch)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*EM_REQUIRE_SERVICES: skipped at collection, so the run fails*",
            "FAILED test_tiny.py - skipped in CI: *",
        ]
    )


def test_a_skip_at_collection_does_not_stop_the_other_tests(pytester, monkeypatch):
    monkeypatch.setenv("EM_REQUIRE_SERVICES", "1")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_skipped=CASES["collection_skip"], test_other=PASSING)

    result = pytester.runpytest_inprocess("-p", "no:django", "-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)


def test_a_passing_test_passes_in_ci(pytester, monkeypatch):
    result = _run(pytester, PASSING, ci=True, monkeypatch=monkeypatch)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert "EM_REQUIRE_SERVICES" not in result.stdout.str()


@pytest.mark.parametrize("case", sorted(CASES))
def test_outside_ci_skips_and_xfails_stay_what_they_are(pytester, monkeypatch, case):
    result = _run(pytester, CASES[case], ci=False, monkeypatch=monkeypatch)

    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    assert "failed" not in result.parseoutcomes()
