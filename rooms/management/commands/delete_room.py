import asyncio

from django.core.management.base import CommandError

from rooms.management.base import EXIT_NOT_FOUND, ChilloutCommand
from rooms.purge import room_delete


class Command(ChilloutCommand):
    help = "Delete one room now, with all its messages and media files. Exit code 1 for an unknown room."

    def add_arguments(self, parser):
        parser.add_argument("room_id", metavar="roomId")

    def handle(self, *args, room_id: str, **options):
        report = asyncio.run(room_delete(room_id=room_id))
        if report is None:
            raise CommandError(f"room {room_id!r} not found", returncode=EXIT_NOT_FOUND)
        self.stdout.write(
            f"deleted room {room_id!r}: {report.messages} messages, {report.files_total} files ({report.bytes} bytes)"
        )
