"""What every Chillout management command shares: connecting, exit codes, database errors.

Exit codes (documented in docs/operations.md):
0 success · 1 not found or invalid input · 2 usage error (argparse) ·
3 busy (another purge holds the lease) · 4 database unavailable.
"""

from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from chillout_project import mongo

EXIT_NOT_FOUND = 1
EXIT_BUSY = 3
EXIT_DATABASE = 4


class ChilloutCommand(BaseCommand):
    """Connects first (starting or reusing the embedded database when MONGO_URI is unset);
    a database error becomes a one-line message on stderr and exit code 4, not a traceback."""

    def execute(self, *args, **options):
        try:
            mongo.connect(ensure_indexes=False)
            return super().execute(*args, **options)
        except PyMongoError as exc:
            raise CommandError(f"database unavailable: {exc}", returncode=EXIT_DATABASE) from exc
