from pathlib import Path

from django.core.management.base import CommandError

from chillout_project.errors import ChilloutError
from rooms.backup import room_export, room_export_dumps
from rooms.management.base import EXIT_NOT_FOUND, ChilloutCommand


class Command(ChilloutCommand):
    help = (
        "Write a room and its messages to stdout as JSON (MongoDB Extended JSON: ids and dates "
        "kept exactly). With --with-media DIR, also write its voice and image files to DIR "
        "(<bucket>/<fileId>.bin and .json with the file's metadata) and list them in the JSON. "
        "Restore with import_room. Exit code 1 for an unknown room."
    )

    def add_arguments(self, parser):
        parser.add_argument("room_id", metavar="roomId")
        parser.add_argument("--with-media", metavar="DIR", type=Path, help="also write the room's media files to DIR")

    def handle(self, *args, room_id: str, with_media: Path | None, **options):
        try:
            export = room_export(room_id=room_id, media_dir=with_media)
        except ChilloutError as exc:
            raise CommandError(exc.message, returncode=EXIT_NOT_FOUND) from exc
        self.stdout.write(room_export_dumps(export))
