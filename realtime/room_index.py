"""The rooms of each socket, indexed: a disconnect costs its own rooms, not every room.

Why. python-socketio's manager keeps `rooms[namespace][room] = bidict(sid -> eio_sid)`
and nothing from a sid to its rooms, so `basic_disconnect` copies the namespace's room dict
and tests every room for the sid, and `get_rooms` scans every room the same way. Every
socket has a room of its own, so a disconnect costs O(sockets + rooms): draining 2,000
sockets made 4 million membership tests, 15 % of Daphne's CPU in the `connections` bench
(py-spy, docs/performance.md), and a server with 10,000 sockets would pay ~1 ms per
disconnect.

`IndexedRoomsManager` keeps `{(namespace, sid): {room: None}}` in step with every change
of membership — which all go through `basic_enter_room` and `basic_leave_room` (the
library's `basic_close_room` and `pre_connect` call them) — and answers `basic_disconnect`
and `get_rooms` from it. The rest of `basic_disconnect` (callbacks, the pending lists) is
python-socketio 5.18.1's: the tuning `room_index` of `chillout_project.tunings`. On another
version, or with the tuning off, the manager is the library's own (every method passes
through to it); tests/unit/test_room_index.py drives this manager and the library's own
with the same random operations (Hypothesis) and compares what they hold.

Concurrency: the manager is used from the event loop only; none of these methods awaits.
"""

from __future__ import annotations

import socketio

from chillout_project.tunings import reach_active


class IndexedRoomsManager(socketio.AsyncManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.indexed = reach_active("room_index")
        self._rooms_of: dict[tuple[str, str], dict] = {}

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        result = super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if self.indexed:
            self._rooms_of.setdefault((namespace, sid), {})[room] = None
        return result

    def basic_leave_room(self, sid, namespace, room):
        result = super().basic_leave_room(sid, namespace, room)
        if not self.indexed:
            return result
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del self._rooms_of[(namespace, sid)]
        return result

    def get_rooms(self, sid, namespace):
        """The rooms `sid` is in (its own sid room included, as the library returns it)."""
        if not self.indexed:
            return super().get_rooms(sid, namespace)
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid, namespace, **kwargs):
        if not self.indexed:
            return super().basic_disconnect(sid, namespace, **kwargs)
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]
