"""Shared browser fixtures: one place that starts the server the browser talks to, one
Chromium per module, and the accessibility audit."""

import os
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connections

from ai_gateway.models import AIRequest
from tests.factories import PASSWORD

# Debian's chromium; CHROMIUM_PATH points the tests at another build of Chromium.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HOW_TO_RUN = (
    f"Browser tests not run: no Chromium at {CHROMIUM}. To run them, install Debian's "
    "chromium (apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary."
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(
    os.environ.get("TEST_OUTPUT_DIR", Path(__file__).resolve().parents[2] / "test-output")
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 320, "height": 640}
# What "WCAG 2.2 A/AA" means to axe-core: every rule tagged with one of these.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=HOW_TO_RUN)

if not Path(CHROMIUM).exists():
    # Not even collected (Playwright's fixtures would error at setup): one line at the end of
    # the run says why and how to run them.
    collect_ignore_glob = ["test_*.py"]

    def pytest_terminal_summary(terminalreporter):
        terminalreporter.write_line(HOW_TO_RUN)


@pytest.fixture(scope="session")
def asgi_server():
    """The project's ASGI application under uvicorn, the production server, in this process
    (so it sees the test database): Django's live_server is a WSGI server, which cannot
    stream an async view's answer as it is produced."""
    import threading
    import time

    import uvicorn

    from config.asgi import application
    from tests.served import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_page(chromium):
    """One page of its own browser context at 1100x1000, for the tests of one page."""
    context = chromium.new_context(viewport={"width": 1100, "height": 1000})
    yield context.new_page()
    context.close()
    # The test's ORM calls between browser steps ran in Playwright's greenlet context, where
    # Django keeps a connection of its own: close it, or the test database cannot be dropped.
    connections.close_all()


@pytest.fixture
def site_url(asgi_server) -> str:
    """The base URL of the running site: the one place that knows how it is served."""
    return asgi_server


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps (and the test database's setup) are still plain synchronous calls.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def new_page(chromium):
    """Open pages in fresh browser contexts (one cookie jar each); all closed at the end."""
    contexts = []

    def open_page(viewport=DESKTOP, java_script_enabled=True):
        # bypass_csp: Playwright evaluates its wait conditions as strings, which the site's CSP
        # (rightly) forbids to page scripts.
        context = chromium.new_context(
            viewport=viewport, java_script_enabled=java_script_enabled, bypass_csp=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    # ORM calls made between browser steps ran in Playwright's greenlet context, where
    # Django keeps a connection of its own: close it, or the test database cannot be dropped.
    connections.close_all()


def log_in(page, site_url: str, email: str, *, path: str = "/") -> None:
    page.goto(f"{site_url}/login/?next={path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def axe_violations(page) -> list[str]:
    """Run axe-core (bundled by axe-playwright-python, no network) on the page; return one
    line per WCAG 2.2 A/AA violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": []}
    )
    lines = []
    for violation in results.response["violations"]:
        targets = [" ".join(node["target"]) for node in violation["nodes"]][:5]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return lines


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def wait_for_row(**filters) -> AIRequest:
    """The request's row, once the live server has written it. A read of the test's own while
    the server writes meets SQLite's table lock (its in-memory database is shared between
    threads) as "database table is locked": that read is tried again."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if AIRequest.objects.filter(**filters).exists():
                break
        except OperationalError:
            pass
        time.sleep(0.2)
    return AIRequest.objects.get(**filters)
