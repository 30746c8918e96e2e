"""Management commands, run as real `python manage.py …` subprocesses on a database of their own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from bson import json_util
from tests.factories import media_content, media_files_of_room, now, room_leftovers, seed_room
from tests.ops_support import manage, separate_db_uri
from pymongo import MongoClient

COMMANDS = ["ensure_indexes", "purge_expired", "room_stats", "export_room", "import_room", "delete_room"]


@pytest.fixture
def cmd_db(mongo_uri):
    uri = separate_db_uri(mongo_uri)
    client = MongoClient(uri, tz_aware=True)
    yield uri, client.get_default_database()
    client.close()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, mongo_uri):
    result = manage(command, "--help", mongo_uri=mongo_uri)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and len(result.stdout) > 200


def test_ensure_indexes_creates_them(cmd_db):
    uri, db = cmd_db
    result = manage("ensure_indexes", mongo_uri=uri)
    assert result.returncode == 0, result.stderr
    for name in ("roomId_1", "lastActivity_1", "roomId_1__id_1", "metadata.roomId_1"):
        assert name in result.stdout.split()
    assert db.rooms.index_information()["lastActivity_1"]["expireAfterSeconds"] == 2_592_000


def test_purge_expired_dry_run_then_real(cmd_db):
    uri, db = cmd_db
    seeded = seed_room(db, "old", last_activity=now() - timedelta(days=31), messages=4, files=2)
    seed_room(db, "live", last_activity=now(), messages=2, files=1)

    dry = manage("purge_expired", "--dry-run", "--json", mongo_uri=uri)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["rooms"], report["messages"], sum(report["files"].values())) == (True, 1, 6, 2)
    assert room_leftovers(db, "old")["rooms"] == 1

    real = manage("purge_expired", mongo_uri=uri)
    assert real.returncode == 0, real.stderr
    assert real.stdout.startswith("deleted: 1 expired rooms, 6 messages, 2 files")
    assert set(room_leftovers(db, "old", seeded["files"]).values()) == {0}
    assert room_leftovers(db, "live")["messages"] == 3


def test_purge_expired_exits_3_while_another_pass_runs(cmd_db):
    uri, db = cmd_db
    db.locks.insert_one({"_id": "purge", "owner": "elsewhere", "expiresAt": now() + timedelta(minutes=5)})
    result = manage("purge_expired", mongo_uri=uri)
    assert result.returncode == 3
    assert "another purge pass is running" in result.stderr


def test_room_stats_json_and_text(cmd_db):
    uri, db = cmd_db
    seed_room(db, "big", last_activity=now() - timedelta(hours=1), messages=10, files=2, file_size=1000)
    seed_room(db, "small", last_activity=now(), messages=1, files=0)

    result = manage("room_stats", "--json", mongo_uri=uri)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["rooms"] == 2 and stats["messages"] == 13
    assert stats["messagesByType"] == {"image": 1, "text": 11, "voice": 1}
    assert stats["media"]["voices"]["files"] == 1 and stats["media"]["images"]["files"] == 1
    assert stats["mediaBytes"] == stats["media"]["voices"]["bytes"] + stats["media"]["images"]["bytes"] > 2000
    assert [r["roomId"] for r in stats["largestRooms"]] == ["big", "small"]
    assert stats["largestRooms"][0]["mediaBytes"] == stats["mediaBytes"]
    assert [r["roomId"] for r in stats["recentRooms"]] == ["small", "big"]

    text = manage("room_stats", mongo_uri=uri)
    assert text.returncode == 0 and "messages  13" in text.stdout and "largest rooms:" in text.stdout


def test_export_delete_import_round_trip_with_media(cmd_db, tmp_path):
    uri, db = cmd_db
    seeded = seed_room(db, "trip", last_activity=now(), messages=3, files=3, file_size=600_000)
    db.messages.update_one({"_id": seeded["messages"][0]}, {"$set": {"message": "ünïcødé ✓ \"quoted\""}})
    original = _snapshot(db, "trip")
    versions = [original["room"].pop("historyVersion", None)]

    export = manage("export_room", "trip", "--with-media", str(tmp_path / "media"), mongo_uri=uri)
    assert export.returncode == 0, export.stderr
    data = json.loads(export.stdout)
    assert data["room"]["roomId"] == "trip" and len(data["messages"]) == 6 and len(data["media"]) == 3
    assert (tmp_path / "media" / data["media"][0]["path"]).stat().st_size == data["media"][0]["file"]["length"]
    (tmp_path / "trip.json").write_text(export.stdout)

    deleted = manage("delete_room", "trip", mongo_uri=uri)
    assert deleted.returncode == 0, deleted.stderr
    assert set(room_leftovers(db, "trip", seeded["files"]).values()) == {0}

    imported = manage("import_room", str(tmp_path / "trip.json"), "--media", str(tmp_path / "media"), mongo_uri=uri)
    assert imported.returncode == 0, imported.stderr
    assert _restored(db, "trip", versions) == original

    again = manage("import_room", "-", "--media", str(tmp_path / "media"), mongo_uri=uri, stdin=export.stdout)
    assert again.returncode == 1 and "already exists" in again.stderr
    replaced = manage("import_room", "-", "--media", str(tmp_path / "media"), "--replace", mongo_uri=uri,
                      stdin=export.stdout)
    assert replaced.returncode == 0, replaced.stderr
    assert _restored(db, "trip", versions) == original


def test_export_without_media_is_room_and_messages_only(cmd_db):
    uri, db = cmd_db
    seed_room(db, "plain", last_activity=now(), messages=2, files=1)
    result = manage("export_room", "plain", mongo_uri=uri)
    assert result.returncode == 0, result.stderr
    data = json_util.loads(result.stdout)
    assert "media" not in data and len(data["messages"]) == 3
    assert data["room"]["lastActivity"] == db.rooms.find_one({"roomId": "plain"})["lastActivity"].replace(tzinfo=None)


@pytest.mark.parametrize("command", ["export_room", "delete_room"])
def test_unknown_room_is_exit_1_with_a_message(cmd_db, command):
    uri, _ = cmd_db
    result = manage(command, "no-such-room", mongo_uri=uri)
    assert result.returncode == 1
    assert "room 'no-such-room' not found" in result.stderr
    assert result.stdout == ""


def test_import_of_garbage_is_refused(cmd_db):
    uri, _ = cmd_db
    result = manage("import_room", "-", mongo_uri=uri, stdin='{"hello": 1}')
    assert result.returncode == 1 and "not a room export" in result.stderr


def test_unreachable_database_is_exit_4(mongo_uri):
    result = manage("room_stats", mongo_uri="mongodb://127.0.0.1:9/x", MONGO_TIMEOUT_MS="500")
    assert result.returncode == 4
    assert "database unavailable" in result.stderr and "Traceback" not in result.stderr


def _restored(db, room_id: str, versions: list) -> dict:
    """The snapshot of a restored room, which must carry a `historyVersion` it never had
    (the servers' history caches drop what they held of it); appended to `versions`."""
    snapshot = _snapshot(db, room_id)
    version = snapshot["room"].pop("historyVersion")
    assert version not in versions
    versions.append(version)
    return snapshot


def _snapshot(db, room_id: str) -> dict:
    """Everything stored for a room, with file contents, comparable across export/import."""
    files = {}
    for kind in ("voice", "image"):
        for doc in media_files_of_room(db, kind=kind, room_id=room_id):
            files[doc["_id"]] = (kind, doc, media_content(db, kind=kind, file_id=doc["_id"]))
    return {
        "room": db.rooms.find_one({"roomId": room_id}),
        "messages": list(db.messages.find({"roomId": room_id}).sort("_id", 1)),
        "files": files,
    }
