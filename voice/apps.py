from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Media in GridFS, voice notes AND images: upload, type detection, ranged download.

    Everything else reaches media through `voice.media`, the one media interface.
    """

    name = "voice"

    def ready(self) -> None:
        from chillout_project.mongo import index_setup_register
        from voice.media import media_indexes_ensure

        index_setup_register(name="voice", setup=media_indexes_ensure)
