import asyncio
import logging

from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Media in GridFS, voice notes AND images: upload, type detection, ranged download.

    Everything else reaches media through `voice.media`, the one media interface.
    """

    name = "voice"

    def ready(self) -> None:
        """Register the media indexes and the media pool's shutdown (after the drain: uploads
        in flight still need the pool). Registering starts nothing."""
        from chillout_project.lifecycle import shutdown_hook_add
        from chillout_project.mongo import index_setup_register
        from voice.media import media_indexes_ensure

        index_setup_register(name="voice", setup=media_indexes_ensure)
        shutdown_hook_add(media_pool_stop, after_drain=True)


async def media_pool_stop() -> None:
    """Stop the media worker threads (`media_pool_shutdown` joins running jobs) off the loop."""
    from voice.processing import media_pool_shutdown

    await asyncio.to_thread(media_pool_shutdown)
    logging.getLogger(__name__).info("media worker pool stopped")
