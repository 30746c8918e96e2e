"""realtime.redis_pipe packs commands with hiredis exactly as redis-py would, on the checked versions."""

import hiredis
import pytest
from redis.asyncio.connection import Connection

from realtime.redis_pipe import SUPPORTED, redis_pipe_version_check


def test_the_installed_redis_and_hiredis_are_the_versions_checked(monkeypatch):
    """Fails when redis or hiredis changes: re-check realtime.redis_pipe, then add the version."""
    redis_pipe_version_check()
    assert set(SUPPORTED) == {"redis", "hiredis"}
    monkeypatch.setitem(SUPPORTED, "hiredis", ("0.0.1",))
    with pytest.raises(RuntimeError, match="^realtime.redis_pipe relies on hiredis"):
        redis_pipe_version_check()


@pytest.mark.parametrize(
    "command",
    [
        ("PUBLISH", "p:sio:r:room-1", "origin\n\n\n\n[\"receive_message\",{\"message\":\"hi\"}]"),
        ("EVALSHA", "a" * 40, 2, "p:rl:room", "p:rm:room", "1796103000000", 120000, "héllo 👋", "", "]"),
        ("SET", "key", "x" * 100_000),  # past redis-py's buffer cutoff: it sends it in pieces
        ("HSET", b"raw\x00bytes", "field", b"\xff\xfe"),
    ],
    ids=["publish", "evalsha", "large", "bytes"],
)
def test_hiredis_packs_a_command_as_redis_py_does(command):
    assert hiredis.pack_command(command) == b"".join(Connection().pack_command(*command))
