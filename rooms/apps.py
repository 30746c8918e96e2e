from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Rooms and their messages: documents, the rules for writing them, the REST views."""

    name = "rooms"

    def ready(self) -> None:
        """Register the periodic purge with the lifecycle (it starts with the process, not here)."""
        import functools

        from django.conf import settings

        from chillout_project.lifecycle import background_loop_add, turn_take
        from rooms.purge import purge_loop

        interval = settings.PURGE_INTERVAL_SECONDS
        if interval > 0:
            turn = functools.partial(turn_take, name="purge", seconds=interval)
            background_loop_add(name="chillout-purge", loop=functools.partial(purge_loop, interval=interval, turn=turn))
