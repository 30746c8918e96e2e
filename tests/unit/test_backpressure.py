"""realtime/backpressure.py: the parts that need no server (the behaviour under Daphne and
uvicorn is for the wiring's tests in tests/realtime/)."""

from __future__ import annotations

import socketio
from engineio import packet, payload
from engineio.async_drivers import asgi as engineio_asgi
from hypothesis import given
from hypothesis import strategies as st

from realtime.backpressure import MeteredWebSocket, backpressure_install, encoded_size
from realtime.guards import packet_bytes


@given(st.text(max_size=200))
def test_encoded_size_of_a_text_packet_is_its_encoding_size(text):
    pkt = packet.Packet(packet.MESSAGE, text)
    assert encoded_size(pkt) == packet_bytes(pkt.encode())


@given(st.binary(max_size=200))
def test_encoded_size_of_a_binary_packet_is_its_length(data):
    pkt = packet.Packet(packet.MESSAGE, data)
    assert encoded_size(pkt) == len(pkt.encode())


def test_encoded_size_of_control_packets():
    for pkt in (packet.Packet(packet.PING), packet.Packet(packet.NOOP), packet.Packet(packet.OPEN, {"sid": "x"})):
        assert encoded_size(pkt) == packet_bytes(pkt.encode())


def test_install_selects_the_metered_websocket_for_that_server_only():
    sio = socketio.AsyncServer(async_mode="asgi")
    other = socketio.AsyncServer(async_mode="asgi")
    backpressure_install(sio, max_outbound_bytes=1024, max_decode_packets=64)
    assert sio.eio._async["websocket"] is MeteredWebSocket
    assert other.eio._async["websocket"] is engineio_asgi.WebSocket
    assert engineio_asgi._async["websocket"] is engineio_asgi.WebSocket
    assert payload.Payload.max_decode_packets == 64
    backpressure_install(sio, max_outbound_bytes=1024, max_decode_packets=64)  # twice is harmless
    assert payload.Payload(encoded_payload="\x1e".join(["4x"] * 64)).packets
