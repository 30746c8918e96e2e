import sys
from pathlib import Path

from django.core.management.base import CommandError

from chillout_project.errors import ChilloutError
from rooms.backup import room_export_loads, room_import
from rooms.management.base import EXIT_NOT_FOUND, ChilloutCommand


class Command(ChilloutCommand):
    help = (
        "Restore a room written by export_room: same ids, dates and file contents. Reads FILE "
        "(or stdin with '-'). Refuses a room that exists unless --replace. Exit code 1 for an "
        "invalid export, an existing room or a missing media file."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the export's JSON file, or - for stdin")
        parser.add_argument("--media", metavar="DIR", type=Path, help="the directory given to export_room --with-media")
        parser.add_argument("--replace", action="store_true", help="delete the existing room (and its media) first")
        parser.add_argument(
            "--touch",
            action="store_true",
            help="set lastActivity to now, so an old export is not purged again as expired",
        )

    def handle(self, *args, file: str, media: Path | None, replace: bool, touch: bool, **options):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}", returncode=EXIT_NOT_FOUND) from exc
        try:
            result = room_import(data=room_export_loads(text), media_dir=media, replace=replace, touch=touch)
        except ChilloutError as exc:
            raise CommandError(exc.message, returncode=EXIT_NOT_FOUND) from exc
        self.stdout.write(
            f"imported room {result['roomId']!r}: {result['messages']} messages, "
            f"{result['files']} files ({result['bytes']} bytes)"
        )
