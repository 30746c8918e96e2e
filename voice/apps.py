from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Media (voice notes and images) in GridFS: upload, type detection, ranged download."""

    name = "voice"
