"""The dashboard in a real browser: Debian's chromium driven by Playwright for Python.

Log in with the admin token, see an agent with its stage and trust, advance another one a
stage and revoke one (each after a confirmation dialog), and see the revocation in the list.
A screenshot goes to reports/ (the test run's artifacts). Playwright's own browser download
is never used: the browser is /usr/bin/chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Deployment, walk_to
from .harness import TOKENS

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "reports"  # the test run's artifacts (git-ignored)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install playwright (never `playwright install`)",
                    pytrace=False)
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


def test_dashboard_login_see_agent_advance_revoke_and_see_the_revocation(
        deployment: Deployment, browser: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "dash-agent", "ACTIVE")
        walk_to(client, "dash-newcomer", "INTAKE")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(deployment.url + "/")
    page.fill("#token", "not-the-admin-token-000000")
    page.click("#login-button")
    page.wait_for_selector("#login-error:has-text('not the admin token')")
    assert page.is_hidden("#panel")

    page.fill("#token", TOKENS["admin"])
    page.click("#login-button")
    row = page.locator('#agents tr[data-agent="dash-agent"]')
    row.wait_for()
    assert "ACTIVE" in row.inner_text() and "active" in row.inner_text()
    assert page.locator("#keys tbody tr").count() == 2
    assert "verified" in page.inner_text("#audit")

    newcomer = page.locator('#agents tr[data-agent="dash-newcomer"]')
    newcomer.locator("button.advance").click()
    page.wait_for_selector('#agents tr[data-agent="dash-newcomer"] td:nth-child(2):has-text("VETTING")')

    row.locator("button.revoke").click()
    page.wait_for_selector('#revocations td:has-text("dash-agent")')
    page.wait_for_selector('#agents tr[data-agent="dash-agent"] td.revoked')
    assert "revoked from the dashboard" in page.inner_text("#revocations")
    assert any("dash-agent" in d for d in dialogs) and any("VETTING" in d for d in dialogs)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "server-dashboard.png"), full_page=True)
    page.close()

    with deployment.client("operator") as client:  # the browser's actions went through the API
        assert client.get("/v1/agents/dash-newcomer/history").json()["stage"] == "VETTING"
        assert client.get("/v1/agents/dash-agent/history").json()["revoked"] is True


def test_dashboard_api_refuses_non_admin_callers(deployment: Deployment) -> None:
    with deployment.client("operator") as client:
        assert client.get("/v1/dashboard").status_code == 403
    with deployment.client() as client:
        page = client.get("/dashboard/index.html")
        assert page.status_code == 200 and "Admin login" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/index.html"
