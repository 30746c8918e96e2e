from chillout_project import mongo
from rooms.management.base import ChilloutCommand


class Command(ChilloutCommand):
    help = (
        "Create every index Chillout needs (rooms: unique roomId and the lastActivity TTL; "
        "messages: (roomId, _id); GridFS files: metadata.roomId). Idempotent; also adjusts "
        "the TTL when ROOM_TTL_SECONDS changed. The server does this at start-up too."
    )

    def handle(self, *args, **options):
        for name in mongo.indexes_ensure():
            self.stdout.write(name)
