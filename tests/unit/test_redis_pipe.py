"""realtime.redis_pipe packs commands with hiredis exactly as redis-py would, on the checked
versions, and falls back to redis-py's own client on any other."""

import hiredis
import pytest
from redis.asyncio.connection import Connection

from realtime.redis_pipe import LibraryRedis, PipelinedRedis, redis_commands_create


def test_the_pipeline_on_the_checked_versions_redis_py_on_any_other(library_moved):
    assert type(redis_commands_create("redis://127.0.0.1:1/0", name="test-commands")) is PipelinedRedis
    library_moved("redis_pipe")
    assert type(redis_commands_create("redis://127.0.0.1:1/0", name="test-commands")) is LibraryRedis


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
