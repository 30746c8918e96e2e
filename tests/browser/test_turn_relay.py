"""Two real Chromium pages connect through a real coturn, relay only (issue 21).

Each page gets its ICE servers from the Chillout server's `GET /api/turn` (cross-origin,
as the web client would) and builds an `RTCPeerConnection` with `iceTransportPolicy:
"relay"`: the only candidates it may use are allocations on that coturn, made with the
issued credentials. The test carries the offer and the answer between the pages. The
connection must reach `connected`, with a selected candidate pair of type relay on both
sides, and a data channel message must cross it.
"""

from __future__ import annotations

import pytest

from tests.turn_relay import coturn_factory  # noqa: F401  (the fixture)

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def turn_page_server(server_factory, page_origin, coturn_factory):  # noqa: F811
    relay = coturn_factory(secrets=["browser-relay-secret-0123456789"])
    return server_factory(FRONTEND_URL=page_origin, TURN_SECRET=relay.secrets[0], TURN_URLS=relay.url("udp"))


async def test_two_pages_connect_through_coturn_with_issued_credentials(browser_context, page_origin, turn_page_server):
    alice = await browser_context.new_page()
    bob = await browser_context.new_page()
    for page in (alice, bob):
        page.set_default_timeout(WAIT_MS)
        await page.goto(f"{page_origin}/turn.html")
    server = turn_page_server.url
    offer = await alice.evaluate("server => relayPeer.offer(server)", server)
    assert " typ relay " in offer["sdp"] and " typ host " not in offer["sdp"]
    answer = await bob.evaluate("([server, offer]) => relayPeer.answer(server, offer)", [server, offer])
    assert " typ relay " in answer["sdp"] and " typ host " not in answer["sdp"]
    await alice.evaluate("answer => relayPeer.accept(answer)", answer)
    assert await alice.evaluate("relayPeer.settled()") == "connected"
    assert await bob.evaluate("relayPeer.settled()") == "connected"
    for page in (alice, bob):
        assert await page.evaluate("relayPeer.selectedPair()") == {"state": "succeeded", "local": "relay", "remote": "relay"}
    await alice.evaluate("relayPeer.send('hello through the relay')")
    assert await bob.evaluate("relayPeer.next()") == "hello through the relay"
