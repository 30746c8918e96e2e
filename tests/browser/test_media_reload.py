"""The web client's media in a real Chromium, before and after a page reload (issue 11).

The page (tests/browser/page/) runs on another origin than the server, like the web client:
it joins a room over a websocket-only socket.io-client 4.8, receives another client's
message, uploads an image and a voice note it records itself (MediaRecorder, audio/webm
Opus, as the web client records), shows them from the `receive_*` payloads, then reloads and
shows them again from the history. The reload revalidates each file (ETag, no-cache): the
image comes back as a 304, which Chromium's Opaque Response Blocking rejects unless the 304
still says the file's Content-Type (net::ERR_BLOCKED_BY_ORB: a broken image after every reload).
The same media load in a cross-origin isolated page (they say CORP cross-origin), and a file
opened directly is a sandboxed document (their CSP), never a page of the server's origin.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlencode

import httpx
import pytest
import socketio

from tests import factories

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_MS = 20_000  # longest wait for the page (the machine is small and shared)
VOICE_MS = 600  # length of the recorded voice note


class Recorder:
    """Everything one page saw on the network: responses and failed requests, in order."""

    def __init__(self, page) -> None:
        self.responses: list = []
        self.failures: list[tuple[str, str | None]] = []
        self.console: list[str] = []
        page.on("response", lambda response: self.responses.append(response))
        page.on("requestfailed", lambda request: self.failures.append((request.url, request.failure)))
        page.on("console", lambda message: self.console.append(message.text))

    def statuses(self, url: str) -> list[int]:
        return [response.status for response in self.responses if response.url == url]

    def clear(self) -> None:
        self.responses.clear()
        self.failures.clear()

    def __repr__(self) -> str:
        return f"failed requests: {self.failures}; console: {self.console}"


async def python_client(url: str, room_id: str, username: str) -> tuple[socketio.AsyncClient, asyncio.Queue]:
    """Another member of the room (python-socketio); its image/voice messages land in the queue."""
    client = socketio.AsyncClient(reconnection=False)
    media: asyncio.Queue = asyncio.Queue()

    def keep(message: dict, *offset: str) -> None:  # a room broadcast ends with its recovery offset
        media.put_nowait(message)

    client.on("receive_image_message", keep)
    client.on("receive_voice_message", keep)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    ack = await client.call("join_room", {"roomId": room_id, "username": username}, timeout=10)
    assert ack["ok"] is True, ack
    return client, media


async def media_state(page, selector: str) -> str:
    """Wait until the page's media element settles: "ready" (decoded / can play) or "error"."""
    element = await page.wait_for_selector(f"{selector}[data-state]", state="attached", timeout=WAIT_MS)
    return await element.get_attribute("data-state")


async def open_room_page(context, *, page_url: str, server_url: str, room_id: str, user: str = "alice"):
    """The test page, joined to the room as `user`; returns it with its network Recorder."""
    page = await context.new_page()
    seen = Recorder(page)
    await page.goto(f"{page_url}?{urlencode({'server': server_url, 'room': room_id, 'user': user})}")
    assert (await page.evaluate("chillout.ready"))["ok"] is True
    assert await page.evaluate("chillout.transport()") == "websocket"
    return page, seen


async def test_image_and_voice_note_still_work_after_a_reload(browser_context, page_server, page_origin, room_id):
    page, seen = await open_room_page(
        browser_context, page_url=f"{page_origin}/index.html", server_url=page_server.url, room_id=room_id
    )

    bob, bob_media = await python_client(page_server.url, room_id, "bob")
    try:
        ack = await bob.call("send_message", {"roomId": room_id, "username": "bob", "message": "hi alice"}, timeout=10)
        assert ack["ok"] is True, ack
        await page.locator("#messages li", has_text="bob: hi alice").wait_for(timeout=WAIT_MS)

        png = base64.b64encode(factories.png(5, 3)).decode()
        image_ack = await page.evaluate("data => chillout.sendImage(data)", png)
        assert image_ack["ok"] is True, image_ack
        image_url = image_ack["message"]["url"]
        assert image_url.startswith(f"{page_server.url}/api/image/")
        assert await asyncio.wait_for(bob_media.get(), 10) == image_ack["message"]
        assert await media_state(page, "li[data-type=image] img") == "ready", seen
        assert await page.eval_on_selector("li[data-type=image] img", "img => img.naturalWidth") == 5
        assert seen.statuses(image_url) == [200]

        voice_ack = await page.evaluate("ms => chillout.sendVoice(ms)", VOICE_MS)
        assert voice_ack["ok"] is True, voice_ack
        voice_url = voice_ack["message"]["url"]
        assert voice_url.startswith(f"{page_server.url}/api/voice/")
        assert await asyncio.wait_for(bob_media.get(), 10) == voice_ack["message"]
        assert await media_state(page, "li[data-type=voice] audio") == "ready", seen
        assert 206 in seen.statuses(voice_url), seen.statuses(voice_url)
    finally:
        await bob.disconnect()

    seen.clear()
    await page.reload()
    assert (await page.evaluate("chillout.ready"))["ok"] is True
    history_types = await page.eval_on_selector_all("#messages li", "items => items.map(li => li.dataset.type)")
    assert history_types == ["text", "image", "voice"]
    image_state = await media_state(page, "li[data-type=image] img")
    voice_state = await media_state(page, "li[data-type=voice] audio")
    # The reload revalidated the image (If-None-Match → 304), and the 304 was not blocked.
    assert image_state == "ready", seen
    assert seen.statuses(image_url) == [304], (seen.statuses(image_url), seen)
    assert await page.eval_on_selector("li[data-type=image] img", "img => img.naturalWidth") == 5
    assert voice_state == "ready", seen
    assert 206 in seen.statuses(voice_url), (seen.statuses(voice_url), seen)
    assert seen.failures == []


async def test_media_load_in_a_cross_origin_isolated_page(browser_context, page_server, page_origin, room_id):
    """Under COEP require-corp a file of another origin loads only if it says CORP cross-origin."""
    page, seen = await open_room_page(
        browser_context, page_url=f"{page_origin}/isolated/index.html", server_url=page_server.url, room_id=room_id
    )
    assert await page.evaluate("crossOriginIsolated") is True
    assert (await page.evaluate("data => chillout.sendImage(data)", base64.b64encode(factories.png()).decode()))["ok"]
    assert (await page.evaluate("ms => chillout.sendVoice(ms)", VOICE_MS))["ok"]
    assert await media_state(page, "li[data-type=image] img") == "ready", seen
    assert await media_state(page, "li[data-type=voice] audio") == "ready", seen
    assert seen.failures == []


async def test_a_file_opened_directly_is_no_page(browser_context, page_server, room_id):
    """Navigated to, a media file is a sandboxed document: an opaque origin, no script."""
    async with httpx.AsyncClient(base_url=page_server.url, timeout=30.0) as http:
        uploaded = await http.post(f"/api/room/{room_id}/image", files={"image": ("blob", factories.png())})
    url = page_server.url + uploaded.json()["url"]
    page = await browser_context.new_page()
    response = await page.goto(url)
    assert response.status == 200
    assert await page.evaluate("self.origin") == "null"
