"""The pure parts of the direct path: frames built once (realtime/wire.py, realtime/delivery.py).
The versions whose private shapes the wires read are the `direct_write` entry of
chillout_project/tunings.py (tests/unit/test_tunings.py). The wires themselves are
tested against the real servers in tests/realtime/test_wire.py and test_delivery_order.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from realtime.delivery import _frame_of
from realtime.wire import text_frame


def serialized(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_what_websockets_serializes_at_each_length_boundary(size):
    payload = b"x" * size
    assert text_frame(payload) == serialized(payload)


@given(st.text(max_size=300))
def test_a_text_frame_of_any_text_is_what_websockets_serializes(text):
    payload = text.encode("utf-8", "surrogatepass")
    assert text_frame(payload) == serialized(payload)


def test_the_frame_of_a_socketio_text_packet_carries_the_engineio_message():
    frame, size = _frame_of('2["receive_message",{"message":"é"}]')
    payload = '42["receive_message",{"message":"é"}]'.encode()
    assert (frame, size) == (serialized(payload), len(payload))


def test_binary_packets_and_lone_surrogates_get_no_frame():
    assert _frame_of(['51-["x",{"_placeholder":true,"num":0}]', b"\x00"]) == (None, 0)
    assert _frame_of('2["x","\ud800"]') == (None, 0)
