"""`voice.recent_files.RecentFiles`: bounded by file size and in all, least recently used out first."""

import pytest
from bson import ObjectId

from voice.recent_files import RecentFiles


@pytest.fixture
def bounds(settings):
    settings.MEDIA_CACHE_BYTES = 100
    settings.MEDIA_CACHE_FILE_BYTES = 40
    return settings


def test_a_file_is_served_only_with_its_stored_length(bounds):
    recent, file_id = RecentFiles(), ObjectId()
    recent.put(file_id, b"x" * 30)
    assert recent.get(file_id, length=30) == b"x" * 30
    assert recent.get(file_id, length=31) is None
    assert recent.get(ObjectId(), length=30) is None


def test_files_over_the_per_file_bound_or_empty_are_not_kept(bounds):
    recent = RecentFiles()
    big, empty = ObjectId(), ObjectId()
    recent.put(big, b"x" * 41)
    recent.put(empty, b"")
    assert recent.get(big, length=41) is None and recent.get(empty, length=0) is None
    assert recent.nbytes == 0


def test_the_least_recently_used_go_first_until_the_total_fits(bounds):
    recent = RecentFiles()
    ids = [ObjectId() for _ in range(4)]
    for file_id in ids[:3]:
        recent.put(file_id, b"y" * 30)
    assert recent.get(ids[0], length=30) is not None  # used: ids[1] is now the oldest
    recent.put(ids[3], b"z" * 30)
    assert recent.get(ids[1], length=30) is None
    assert all(recent.get(i, length=30) is not None for i in (ids[0], ids[2], ids[3]))
    assert recent.nbytes == 90


def test_drop_frees_the_bytes_and_zero_turns_it_off(bounds):
    recent, file_id = RecentFiles(), ObjectId()
    recent.put(file_id, b"x" * 30)
    recent.drop([file_id, ObjectId()])
    assert recent.get(file_id, length=30) is None and recent.nbytes == 0
    bounds.MEDIA_CACHE_BYTES = 0
    recent.put(file_id, b"x" * 30)
    assert recent.get(file_id, length=30) is None and not RecentFiles.fits(30)
