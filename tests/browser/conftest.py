"""Real-browser tier: headless Chromium (Debian's `chromium`) driven by Playwright.

No browser is downloaded: Playwright's bundled driver starts the system's /usr/bin/chromium.
The test page (tests/browser/page/) and the socket.io-client 4.8 browser bundle are served by
a tiny static HTTP server on another port than the Chillout server, so every request the
page makes to the server is cross-origin, as the web client's are. One browser for the whole
session; each test gets a fresh context (its own HTTP cache) and page.

The flags keep Chromium from reaching out on its own (the test machine has no network but
the loopback): no QUIC, no component updates, no background networking or sync.
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PAGE_DIR = Path(__file__).resolve().parent / "page"
SOCKET_IO_BUNDLE = Path(__file__).resolve().parent.parent / "node/node_modules/socket.io-client/dist/socket.io.min.js"


ISOLATED = "/isolated"  # the same files, served cross-origin isolated (COEP require-corp)


class PageHandler(SimpleHTTPRequestHandler):
    """Serves PAGE_DIR, plus the socket.io-client bundle at /socket.io.min.js; logs nothing.

    Under /isolated/ the same files come with COEP `require-corp` (and COOP same-origin): a
    page that embeds a file of another origin only if the file says CORP `cross-origin`."""

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].removeprefix(ISOLATED)
        if path == "/socket.io.min.js":
            return str(SOCKET_IO_BUNDLE)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        if self.path.startswith(f"{ISOLATED}/"):
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def page_origin():
    """The origin serving the test page: http://127.0.0.1:<port>, another port than the server's."""
    assert SOCKET_IO_BUNDLE.is_file(), (
        "tests/node/node_modules is missing: run `npm ci --prefix tests/node` before pytest"
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(PageHandler, directory=str(PAGE_DIR)))
    thread = threading.Thread(target=httpd.serve_forever, name="browser-test-page", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="session")
def page_server(server_factory, page_origin):
    """A Chillout server whose FRONTEND_URL is the test page's origin (CORS allows it)."""
    return server_factory(FRONTEND_URL=page_origin)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser():
    assert Path(CHROMIUM).is_file(), (
        "Debian's chromium is not installed: `apt-get install chromium` (make test's system-deps does it)"
    )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser):
    """A fresh context (cookies, HTTP cache) for one test."""
    context = await browser.new_context()
    yield context
    await context.close()
