"""The per-socket bounds of realtime/guards.py: pure counters, and the server-specific
probes checked against the real Daphne and uvicorn classes (they reach into private
shapes, so these tests must fail loudly when those libraries change)."""

from __future__ import annotations

import asyncio
import pytest
from zope.interface.verify import verifyObject
from twisted.internet.interfaces import IPushProducer

from realtime.guards import (
    EventBacklog,
    OutboundMeter,
    TransportDrain,
    daphne_protocol,
    packet_bytes,
    server_transport_abort,
    uvicorn_protocol,
)

# --- inbound: events waiting per socket ---------------------------------------------


def test_backlog_admits_up_to_its_limit_then_refuses_for_good():
    backlog = EventBacklog(limit=3)
    assert [backlog.admit() for _ in range(3)] == [True, True, True]
    assert backlog.admit() is False
    assert backlog.overflowed
    backlog.done()
    assert backlog.admit() is False  # the socket is being disconnected


def test_backlog_counts_finished_events_out():
    backlog = EventBacklog(limit=2)
    for _ in range(100):
        assert backlog.admit()
        assert backlog.admit()
        backlog.done()
        backlog.done()
    assert backlog.waiting == 0


def test_backlog_limit_zero_is_off():
    backlog = EventBacklog(limit=0)
    assert all(backlog.admit() for _ in range(10_000))
    assert backlog.waiting == 10_000


# --- outbound: unsent bytes per socket ----------------------------------------------


def test_meter_accepts_up_to_the_limit_exactly():
    meter = OutboundMeter(limit=100)
    assert meter.queued(60)
    assert meter.queued(40)
    assert meter.unsent == 100
    assert not meter.tripped


def test_meter_trips_on_the_packet_that_would_pass_the_limit_and_stays_tripped():
    meter = OutboundMeter(limit=100)
    assert meter.queued(60)
    assert meter.queued(41) is False
    assert meter.tripped
    assert meter.unsent == 60  # the refused packet is not counted: it is dropped
    meter.sent(60)
    assert meter.queued(1) is False


def test_meter_counts_sent_bytes_out_and_never_below_zero():
    meter = OutboundMeter(limit=100)
    for _ in range(50):
        assert meter.queued(100)
        meter.sent(100)
    meter.sent(10)
    assert meter.unsent == 0


def test_meter_limit_zero_is_off():
    meter = OutboundMeter(limit=0)
    assert meter.queued(10**12)
    assert not meter.tripped


def test_a_single_packet_larger_than_the_limit_trips_it():
    assert OutboundMeter(limit=1024).queued(1025) is False


@pytest.mark.parametrize(
    "data, size",
    [
        ("", 0),
        ('2["receive_message",{"message":"hi"}]', 37),
        ("é", 2),
        ("李", 3),
        ("🙂", 4),
        ("a\ud800", 4),  # a lone surrogate (JSON allows one) is still measured
        (b"\x00" * 10, 10),
        (bytearray(7), 7),
        (None, 1),
    ],
)
def test_packet_bytes_is_the_utf8_size(data, size):
    assert packet_bytes(data) == size


# --- Daphne: waiting for the transport to drain -------------------------------------


def test_drain_is_a_twisted_push_producer():
    assert verifyObject(IPushProducer, TransportDrain())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_drain_waits_while_paused_and_goes_on_when_resumed():
    drain = TransportDrain()
    await drain.wait()  # not paused: no wait
    drain.pauseProducing()
    assert drain.paused
    waiter = asyncio.ensure_future(drain.wait())
    await settle()
    assert not waiter.done()
    drain.resumeProducing()
    await asyncio.wait_for(waiter, 5)
    assert not drain.paused


async def test_drain_pauses_again_after_a_resume_and_holds_nothing_while_flowing():
    """The event a waiter waits on exists only while paused (memory per idle websocket);
    a second pause after a resume must block again, and both waiters of one pause go on."""
    drain = TransportDrain()
    assert not hasattr(drain, "__dict__") and drain._paused is None
    for _ in range(2):
        drain.pauseProducing()
        drain.pauseProducing()  # Twisted may repeat it
        waiters = [asyncio.ensure_future(drain.wait()) for _ in range(2)]
        await settle()
        assert not any(w.done() for w in waiters)
        drain.resumeProducing()
        await asyncio.wait_for(asyncio.gather(*waiters), 5)
        assert drain._paused is None


async def test_drain_releases_waiters_with_an_error_when_the_connection_is_lost():
    drain = TransportDrain()
    drain.pauseProducing()
    waiter = asyncio.ensure_future(drain.wait())
    await settle()
    drain.stopProducing()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(waiter, 5)
    drain.pauseProducing()  # Twisted may still call it: it must not block anyone again
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(drain.wait(), 5)


# --- the servers' private shapes ----------------------------------------------------


async def test_daphne_send_leads_to_its_protocol(library_moved):
    from daphne.server import Server

    received = {}

    async def app(scope, receive, send):
        received["send"] = send

    protocol = object()
    server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"], signal_handlers=False)  # not started
    server.connections = {protocol: {}}  # what Server.run() sets up, without listening
    server.create_application(protocol, {"type": "websocket"})
    await server.connections[protocol]["application_instance"]
    assert daphne_protocol(received["send"]) is protocol
    assert uvicorn_protocol(received["send"]) is None
    library_moved("daphne_transport")
    assert daphne_protocol(received["send"]) is None  # another Daphne: the server's own close


class _Peer(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc) -> None:
        self.lost.set_result(True)


async def test_uvicorn_send_leads_to_its_protocol_and_abort_drops_the_connection():
    from uvicorn.config import Config
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    loop = asyncio.get_running_loop()
    peers: list[_Peer] = []

    def peer_factory():
        peers.append(_Peer())
        return peers[-1]

    listener = await loop.create_server(peer_factory, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    config = Config(app=None, ws="websockets-sansio")
    protocol = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
    try:
        await loop.create_connection(lambda: protocol, "127.0.0.1", port)
        assert uvicorn_protocol(protocol.send) is protocol
        assert daphne_protocol(protocol.send) is None
        abort = server_transport_abort(protocol.send)
        assert abort is not None
        abort()
        await asyncio.wait_for(peers[0].lost, 5)  # the other end sees the connection gone
    finally:
        listener.close()
        await listener.wait_closed()


def test_an_unknown_send_has_no_protocol():
    async def send(message):
        pass

    assert daphne_protocol(send) is None
    assert uvicorn_protocol(send) is None
    assert server_transport_abort(send) is None


async def test_drain_passes_every_call_on_to_the_producer_it_replaced():
    """Daphne's HTTP channel stays the transport's producer after the upgrade: it must
    keep being paused, resumed and stopped as before."""
    previous = TransportDrain()
    drain = TransportDrain(forward=previous)
    drain.pauseProducing()
    assert previous.paused
    drain.resumeProducing()
    assert not previous.paused
    drain.stopProducing()
    assert previous.stopped


@pytest.mark.parametrize(
    "value, size",
    [
        ({"sdp": "v=0"}, 13),
        ({"sdp": "é"}, 12),
        ({"n": 2**70}, len('{"n":1180591620717411303424}')),  # beyond orjson's 64 bits
        ({"sdp": "x" * 65536}, 65536 + 10),
    ],
)
def test_json_bytes_is_the_compact_utf8_size(value, size):
    from realtime.guards import json_bytes

    assert json_bytes(value) == size
