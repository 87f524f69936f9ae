"""The operator console in a real browser: Debian's headless Chromium driven by Playwright.

``smcp-server`` runs as a subprocess with ``SMCP_ADMIN_TOKEN`` and ``--admin-actions``; our Computer
(``smcp-computer run`` with the toolbox MCP server) joins while the page is open, our Agent calls a
tool, and the page shows both without a reload. Any console error or uncaught exception on the page
fails the test. Screenshots go to ``target/e2e/console/`` (the CI artifact folder);
``SMCP_CONSOLE_SCREENSHOT=docs/images/console.png`` also copies the 1280×800 one there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smcp.testing.mcp_config import toolbox_config
from smcp.testing.roles import agent, start_computer, start_server

from .harness import ProcessManager

pytestmark = pytest.mark.anyio

CHROMIUM = os.environ.get("SMCP_E2E_CHROMIUM", "/usr/bin/chromium")
ADMIN = "console-e2e-admin"
SHOTS = Path(__file__).resolve().parent.parent / "target" / "e2e" / "console"
WAIT_MS = 15_000


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.async_api", reason="playwright (test dependency group)")
    async with playwright.async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


def watch(page: Any) -> list[str]:
    """Collect every console error and uncaught exception of ``page``."""
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    return problems


async def test_console_in_chromium(browser: Any, procs: ProcessManager, tmp_path: Path) -> None:
    from playwright.async_api import expect

    server = await start_server(procs, extra_args=["--admin-actions"], env={"SMCP_ADMIN_TOKEN": ADMIN})
    base = server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    problems = watch(page)

    # refused without the token: the login page, and a wrong token is refused
    response = await page.goto(f"{base}/console")
    assert response is not None and response.status == 401
    await expect(page.locator("input[name=token]")).to_be_visible()
    api = await page.request.get(f"{base}/api/v1/offices")
    assert api.status == 401
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    await expect(page.locator(".refused")).to_contain_text("Refused", timeout=WAIT_MS)
    # the browser logs each 401 page as a failed resource: expected here, and nothing else
    assert all("401" in problem for problem in problems), problems
    problems.clear()

    # log in: the live page, with no office yet
    await page.fill("input[name=token]", ADMIN)
    await page.click("button[type=submit]")
    await expect(page.locator("#status")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#offices .office")).to_have_count(0)
    assert (await page.request.get(f"{base}/api/v1/offices")).status == 200

    # a Computer joins: its office and its tools appear without a reload
    config = toolbox_config(tmp_path / "mcp.json")
    await start_computer(procs, url=base, office="ops", name="c1", config=config)
    office = page.locator('#offices .office[data-office="ops"]')
    await expect(office).to_be_visible(timeout=WAIT_MS)
    await expect(office).to_contain_text("c1")
    await expect(office.locator(".tools code", has_text="toolbox__echo")).to_be_visible(timeout=WAIT_MS)

    # an Agent makes a call: it appears in the recent list
    async with agent(base, office="ops", name="agent-e2e", token=server.token) as a:
        await expect(office).to_contain_text("agent-e2e", timeout=WAIT_MS)
        for n in range(6):
            result = await a.call_tool("c1", "toolbox__echo", {"text": f"from the agent {n}"}, timeout=10)
            assert result.is_error is False
        recent = page.locator("#recent tbody tr", has_text="toolbox__echo")
        await expect(recent.first).to_contain_text("agent-e2e", timeout=WAIT_MS)
        await expect(recent.first).to_contain_text("ok")
        await expect(page.locator("#c-calls")).not_to_have_text("0")
        # usable at 1280x800: nothing wider than the window
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await page.screenshot(path=str(SHOTS / "console-1280x800.png"), full_page=False)

        # the admin calls a tool by hand from the page (actions are on)
        await (
            office.locator(".tools li", has_text="toolbox__echo").get_by_role("button", name="call…").click()
        )
        await page.fill("#call-params", '{"text": "from the console"}')
        await page.click("#call-form button[type=submit]")
        await expect(page.locator("#call-result")).to_contain_text("from the console", timeout=WAIT_MS)
        await expect(page.locator("#recent tbody tr", has_text="console-admin").first).to_contain_text(
            "ok", timeout=WAIT_MS
        )
        await expect(page.locator("#c-agents")).to_have_text("1")
        await expect(page.locator("#c-computers")).to_have_text("1")
        assert await page.locator("#chart-cps polyline").count() >= 1

        # and usable at phone width
        await page.set_viewport_size({"width": 390, "height": 844})
        await expect(office).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        box = await office.bounding_box()
        assert box is not None and box["width"] <= 390
        await page.screenshot(path=str(SHOTS / "console-390x844.png"), full_page=True)

    # the Agent left: the office shows the Computer only
    await expect(office).not_to_contain_text("agent-e2e", timeout=WAIT_MS)
    await context.close()
    assert not problems, problems
    if os.environ.get("SMCP_CONSOLE_SCREENSHOT"):
        shutil.copy(SHOTS / "console-1280x800.png", os.environ["SMCP_CONSOLE_SCREENSHOT"])
