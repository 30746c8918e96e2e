from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The Socket.IO server: messaging, presence and call signaling."""

    name = "realtime"
