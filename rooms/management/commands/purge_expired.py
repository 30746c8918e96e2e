import asyncio
import json

from django.core.management.base import CommandError

from rooms.management.base import EXIT_BUSY, ChilloutCommand
from rooms.purge import PurgeBusy, room_purge_expired


class Command(ChilloutCommand):
    help = (
        "Delete rooms idle for ROOM_TTL_SECONDS, and every message and GridFS file whose room "
        "is gone, and uploads no message claimed within UPLOAD_ATTACH_SECONDS. The server runs "
        "the same pass every PURGE_INTERVAL_SECONDS; this runs it now. "
        "Exit code 3 when another process is running a pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, dry_run: bool, as_json: bool, **options):
        try:
            report = asyncio.run(room_purge_expired(dry_run=dry_run))
        except PurgeBusy as exc:
            raise CommandError(str(exc), returncode=EXIT_BUSY) from exc
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        verb = "would delete" if dry_run else "deleted"
        files = ", ".join(f"{bucket} {count}" for bucket, count in sorted(report.files.items())) or "none"
        self.stdout.write(
            f"{verb}: {report.rooms} expired rooms, {report.messages} messages, "
            f"{report.files_total} files ({files}; {report.bytes} bytes) "
            f"of {report.orphan_rooms} gone rooms ({report.unattached_files} unclaimed uploads), "
            f"in {report.seconds:.2f} s"
        )

