"""The soak's clients: its mix (`Profile`), the members that chat, and the `Ledger` that
says which acknowledged message is still owed to whom.

Lost and duplicated: a message whose send was acked `ok` is expected by every member of its
room that had joined before the send and had not begun to leave when the ack came; each
must have it at the end, live or from the history it read after a reconnect (a member that
leaves while still owed one keeps owing it: it counts as lost). Duplicated: one member
receiving the same message id twice live.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING

import socketio

if TYPE_CHECKING:
    from soak import Soak

LATE_SECONDS = 15.0  # an expected copy missing this long after its ack counts as lost (so far)
ACK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Profile:
    """The mix. Rates are per second; the defaults make ~700 clients and ~10 messages/s."""

    big_room_members: int = 500
    big_room_rate: float = 0.5
    small_rooms: tuple[int, ...] = (2, 2, 3, 4, 5, 8, 10, 12, 15, 20, 30, 50)
    small_room_rate: float = 0.7
    churn_every: float = 2.0  # a visitor joins a small room this often, stays 20-60 s
    media_every: float = 12.0  # an upload (voice or image, alternating) then two downloads
    call_every: float = 20.0
    blip_every: float = 15.0
    slow_reader_pause: float = 3.0  # the slow reader reads one frame per pause
    prefill_messages: int = 2000  # each room's history before the start: HISTORY_CACHE_MESSAGES' default
    prefill_media_bytes: int = 72 * 1024 * 1024  # uploaded before the start: past MEDIA_CACHE_BYTES' default


PROFILE = Profile()


def voice_note(seconds: float = 3.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(os.urandom(int(16000 * seconds)))
    return buffer.getvalue()


def photo() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((800, 600), 64).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class Ledger:
    """Acked messages and who still owes a copy of them; duplicates; ack latencies."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[float, set, float]] = {}  # id -> (acked at, owing, sent at)
        self.acked = self.duplicated = self.failed = 0
        self.latencies: list[tuple[float, float]] = []  # (ack time, ms)

    def ack(self, message_id: str, expected: list[Member], started: float) -> None:
        now = time.monotonic()
        self.acked += 1
        self.latencies.append((now, (now - started) * 1000))
        missing = {member for member in expected if message_id not in member.seen and not member.gone}
        if missing:
            self.pending[message_id] = (now, missing, started)

    def seen(self, member: Member, message_id: str) -> None:
        entry = self.pending.get(message_id)
        if entry is not None:
            entry[1].discard(member)
            if not entry[1]:
                del self.pending[message_id]

    def owed_to(self, member: Member) -> list[str]:
        return [message_id for message_id, (_, owing, _) in self.pending.items() if member in owing]

    def lost(self, *, older_than: float = LATE_SECONDS) -> int:
        now = time.monotonic()
        return sum(len(owing) for at, owing, _ in self.pending.values() if now - at > older_than)

    def latencies_between(self, start: float, end: float) -> list[float]:
        return [ms for at, ms in self.latencies if start <= at < end]


class Room:
    def __init__(self, room_id: str) -> None:
        self.id, self.members = room_id, set()

    def listeners(self, started: float) -> list[Member]:
        """Who must get a message sent at `started`: joined before it, not leaving."""
        return [m for m in self.members if m.joined_at is not None and m.joined_at < started and m.leaving_at is None]

    def connected(self) -> list[Member]:
        return [m for m in self.members if m.sio.connected and m.joined_at is not None]


class Member:
    """One python-socketio client in one room. After a reconnect it rejoins and reads the
    newest history, which is how it recovers what it missed (the web client reloads)."""

    def __init__(self, soak: Soak, name: str, room: Room, url: str) -> None:
        self.soak, self.name, self.room, self.url = soak, name, room, url
        self.seen: set[str] = set()
        self.live: set[str] = set()
        self.joined_at: float | None = None
        self.leaving_at: float | None = None
        self.rejoins: list[float] = []  # when each rejoin after a reconnect completed
        self.in_room = False  # joined on its current connection: copies reach it live
        self.gone = False  # left for good: what is acked from then on is not owed to it
        self.history: list[tuple[float, str]] = []  # (when, what): connects, disconnects, backfills (lost.json)
        self.sio = self.new_client()

    def new_client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=3,
                                   randomization_factor=0.5)  # fmt: skip
        for event in ("receive_message", "receive_voice_message", "receive_image_message"):
            sio.on(event, self.on_message)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        return sio

    async def on_message(self, payload, *offset) -> None:
        message_id = payload.get("_id") if isinstance(payload, dict) else None
        if message_id is None:
            return
        if message_id in self.live:
            self.soak.ledger.duplicated += 1
        self.live.add(message_id)
        self.remember(message_id)

    def remember(self, message_id: str) -> None:
        if message_id not in self.seen:
            self.seen.add(message_id)
            self.soak.ledger.seen(self, message_id)

    def log(self, what: str) -> None:
        self.history.append((time.monotonic(), what))

    async def on_connect(self) -> None:
        self.log("connect")
        if self.joined_at is not None and self.leaving_at is None:  # a reconnect, not the first connect
            self.soak.reconnects += 1
            self.soak.spawn(self.rejoin())

    async def on_disconnect(self, reason=None) -> None:
        """A server DISCONNECT (a server shutting down, a process given up for dead) is not
        reconnected by Socket.IO clients: the user reloads the page, which this does."""
        self.in_room = False
        self.log(f"disconnect {reason}")
        if reason == socketio.AsyncClient.reason.SERVER_DISCONNECT and self.joined_at is not None and self.leaving_at is None:
            self.soak.reloads += 1
            self.soak.spawn(self.reload())

    async def reload(self) -> None:
        for _ in range(120):
            await asyncio.sleep(random.uniform(1, 3))
            if self.leaving_at is not None or self.soak.stopping.is_set():
                return
            self.sio = self.new_client()
            try:
                await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)  # on_connect rejoins
                return
            except Exception:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()

    async def start(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)
        await self.join()
        self.room.members.add(self)
        self.joined_at = time.monotonic()

    async def join(self) -> None:
        ack = await self.sio.call("join_room", {"roomId": self.room.id, "username": self.name}, timeout=30)
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise RuntimeError(f"join_room refused: {ack}")
        self.in_room = True

    async def rejoin(self) -> None:
        for _ in range(20):
            with contextlib.suppress(Exception):
                await self.join()
                await self.backfill()
                self.rejoins.append(time.monotonic())
                return
            await asyncio.sleep(1)

    async def backfill(self) -> None:
        response = await self.soak.http.get(f"{self.url}/api/room/{self.room.id}", params={"limit": 1000})
        response.raise_for_status()
        messages = response.json()["messages"]
        for message in messages:
            self.remember(message["_id"])
        self.log(f"backfill {len(messages)}")

    async def send(self, event: str, payload: dict) -> dict | None:
        """Emit a write and book its ack; None when it was not acked ok (down, refused, late)."""
        started = time.monotonic()
        expected = self.room.listeners(started)
        try:
            ack = await self.sio.call(event, {"roomId": self.room.id, "username": self.name, **payload},
                                      timeout=ACK_TIMEOUT)  # fmt: skip
        except Exception:
            ack = None
        if not (isinstance(ack, dict) and ack.get("ok")):
            self.soak.ledger.failed += 1
            return None
        if "message" in ack:
            self.remember(ack["message"]["_id"])
            self.soak.ledger.ack(ack["message"]["_id"], [m for m in expected if m is not self], started)
        return ack

    async def leave(self) -> None:
        """Stop being expected, keep reading a moment (copies in flight arrive), then go.

        A member that is not in the room on a live connection when it leaves (its server
        restarting, a reconnect not yet rejoined) could not have had what was sent meanwhile;
        it reads the history once more over HTTP, as the page it closes would show it after
        a reload. Whatever it is still owed then stays owed: a loss. A send acked after
        that point (sent before the member began leaving, its ack slowed by a fault) is not
        owed to it: the page was closed before the message was acknowledged."""
        self.leaving_at = time.monotonic()
        await asyncio.sleep(3)
        await self.owed_arrive()
        self.room.members.discard(self)
        self.gone = True
        for _ in range(0 if self.in_room and self.sio.connected else 10):
            try:
                await self.backfill()
                break
            except Exception as error:
                self.log(f"backfill failed {error!r}")
                await asyncio.sleep(1)
        await self.sio.disconnect()

    async def owed_arrive(self) -> None:
        """Copies of messages acked before this member began leaving may still be on their
        way (an ack can precede a copy by seconds while Redis is restarting): wait up to
        LATE_SECONDS for them on a live connection, as the loss rule allows them elsewhere."""
        deadline = time.monotonic() + LATE_SECONDS
        while self.soak.ledger.owed_to(self) and self.in_room and self.sio.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if self.soak.ledger.owed_to(self):
            self.log("leaving while owed")

    async def blip(self) -> None:
        """The network under this client's websocket goes away: the client reconnects by itself."""
        ws = getattr(self.sio.eio, "ws", None)
        if ws is not None and self.sio.connected:
            self.soak.blips += 1
            await ws.close()


