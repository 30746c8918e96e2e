from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Rooms and their messages: documents, the rules for writing them, the REST views.

    `ready()` wires rooms to the layers below it without them importing rooms: its index
    set-up into `chillout_project.mongo`, its room touch onto `voice.signals.media_stored`.
    Registering starts nothing.
    """

    name = "rooms"

    def ready(self) -> None:
        """Register the rooms' index set-up, the room touch on uploads and the periodic purge
        (each starts with the process, not here)."""
        import functools

        from django.conf import settings

        from chillout_project.lifecycle import background_loop_add, turn_take
        from chillout_project.mongo import index_setup_register
        from rooms.indexes import room_indexes_ensure
        from rooms.purge import purge_loop
        from rooms.services import room_touch_on_media_stored
        from voice.signals import media_stored

        index_setup_register(name="rooms", setup=room_indexes_ensure)
        media_stored.connect(room_touch_on_media_stored, dispatch_uid="rooms.room_touch_on_media_stored")

        interval = settings.PURGE_INTERVAL_SECONDS
        if interval > 0:
            turn = functools.partial(turn_take, name="purge", seconds=interval)
            background_loop_add(name="chillout-purge", loop=functools.partial(purge_loop, interval=interval, turn=turn))
