import json

from rooms.management.base import ChilloutCommand
from rooms.stats import room_stats_collect
from rooms.wire import iso_timestamp


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _when(moment) -> str:
    return iso_timestamp(moment) if moment is not None else "(room gone)"


class Command(ChilloutCommand):
    help = (
        "Show how many rooms, messages (by type) and media bytes the database holds, the "
        "largest rooms (by message count) and the most recently active ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")
        parser.add_argument("--top", type=int, default=5, help="how many rooms each list shows (default 5)")

    def handle(self, *args, as_json: bool, top: int, **options):
        stats = room_stats_collect(top=max(top, 0))
        if as_json:
            for room in stats["largestRooms"] + stats["recentRooms"]:
                room["lastActivity"] = room["lastActivity"] and iso_timestamp(room["lastActivity"])
            self.stdout.write(json.dumps(stats, indent=2, ensure_ascii=False))
            return
        types = ", ".join(f"{t} {n}" for t, n in stats["messagesByType"].items()) or "none"
        media = ", ".join(f"{b} {m['files']} files / {_size(m['bytes'])}" for b, m in stats["media"].items())
        lines = [
            f"rooms     {stats['rooms']}",
            f"messages  {stats['messages']} ({types})",
            f"media     {_size(stats['mediaBytes'])} ({media})",
            "largest rooms:",
            *(
                f"  {r['roomId']}  {r['messages']} messages, {_size(r['mediaBytes'])} media, "
                f"last active {_when(r['lastActivity'])}"
                for r in stats["largestRooms"]
            ),
            "most recently active:",
            *(f"  {r['roomId']}  {_when(r['lastActivity'])}, {r['messages']} messages" for r in stats["recentRooms"]),
        ]
        self.stdout.write("\n".join(lines))
