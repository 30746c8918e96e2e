from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Rooms and their messages: documents, the rules for writing them, the REST views."""

    name = "rooms"
