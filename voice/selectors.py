"""Reads of media, re-exported from the media interface (`voice.media`) under their old import path."""

from voice.media import media_file_in_room, media_open

__all__ = ["media_file_in_room", "media_open"]
