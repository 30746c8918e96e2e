"""An upload answered 200 survives a crash of the database (contract §2, Durability).

The worst moment: every upload has been answered 200 and the database is SIGKILLed at once,
before it could flush anything on its own. On restart (same data directory) every file
answered 200 must download whole from a fresh server process: the same audio frames and the
same pixels as uploaded (the server strips metadata, so the bytes differ; the content may
not). The uploads go out concurrently, voice notes and images mixed, so their chunk writes
interleave.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import wave

import httpx
from PIL import Image

from tests import factories

DB_NAME = "chillout_upload_durability"
FILES = [("voice", factories.wav(frames=120_000 + i * 4_000)) for i in range(3)] + [
    ("image", factories.png(600 + i * 50, 400, noise=400)) for i in range(3)
]


async def upload_all(url: str, room_id: str) -> list[str]:
    """Every file of FILES at once; the URLs of those answered 200 (all of them, or the test fails)."""
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        responses = await asyncio.gather(
            *(
                http.post(f"/api/room/{room_id}/{kind}", files={kind: ("blob", data, "application/octet-stream")},
                          data={"username": "alice"})  # fmt: skip
                for kind, data in FILES
            )
        )
    assert [r.status_code for r in responses] == [200] * len(FILES), [r.text for r in responses]
    return [r.json()["url"] for r in responses]


def essence(kind: str, data: bytes) -> bytes:
    """What stripping metadata keeps: a WAV's frames, an image's pixels."""
    if kind == "voice":
        with wave.open(io.BytesIO(data)) as audio:
            return audio.readframes(audio.getnframes())
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


async def test_uploads_answered_200_survive_a_sigkill_of_the_database(private_db_dir, server_factory, room_id):
    database = private_db_dir()
    server = server_factory(MONGO_URI=f"{database.uri}/{DB_NAME}")
    paths = await upload_all(server.url, room_id)
    os.kill(database.pid, signal.SIGKILL)  # at once: no clean shutdown, no checkpoint
    database.process.wait()
    server.stop()

    restarted = private_db_dir()
    assert restarted.pid != database.pid
    after = server_factory(MONGO_URI=f"{restarted.uri}/{DB_NAME}")
    with httpx.Client(base_url=after.url, timeout=60.0) as http:
        responses = [http.get(path) for path in paths]
    assert [r.status_code for r in responses] == [200] * len(FILES)
    for (kind, uploaded), response in zip(FILES, responses):
        assert len(response.content) == int(response.headers["content-length"])
        assert essence(kind, response.content) == essence(kind, uploaded)
