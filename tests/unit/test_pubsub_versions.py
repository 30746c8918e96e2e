"""realtime.pubsub relies on python-socketio's manager API and redis-py's asyncio PubSub
(subscribing from one task while another reads): it refuses versions it was not checked
against, and this test fails when either library changes under it."""

import pytest

from realtime import pubsub


def test_the_libraries_pubsub_relies_on_are_the_versions_checked(monkeypatch):
    """Fails when python-socketio or redis changes: re-check realtime.pubsub, then add the version."""
    pubsub.pubsub_version_check()
    for package, checked in list(pubsub.SUPPORTED.items()):
        monkeypatch.setitem(pubsub.SUPPORTED, package, ("0.0.1",))
        with pytest.raises(RuntimeError, match=f"relies on {package} "):
            pubsub.pubsub_version_check()
        monkeypatch.setitem(pubsub.SUPPORTED, package, checked)


def test_a_message_splits_into_its_header_and_the_event():
    header = pubsub._header(origin="host:1:ab", target="", skip=["s1", "s2"], token="t0")
    message = header + pubsub._payload("receive_message", [{"text": "a\nb"}, 3])
    assert message.split("\n", 4) == ["host:1:ab", "", "s1,s2", "t0", '["receive_message",{"text":"a\\nb"},3]']
