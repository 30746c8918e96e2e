"""`MONGO_WRITE_CONCERN` → the driver's write concern (contract §2, Durability)."""

import pytest
from pymongo import AsyncMongoClient, MongoClient, WriteConcern

from chillout_project.write_concern import write_concern_client_options, write_concern_from_setting


def test_journaled_asks_for_the_journal_and_leaves_w_to_the_deployment():
    concern = write_concern_from_setting("journaled")
    assert concern.document == {"j": True}
    assert concern.acknowledged is True


def test_majority_is_journaled_on_a_majority_with_a_timeout():
    assert write_concern_from_setting("majority", wtimeout_ms=5000).document == {
        "w": "majority",
        "j": True,
        "wtimeout": 5000,
    }


def test_majority_without_a_timeout_has_none():
    assert write_concern_from_setting("majority").document == {"w": "majority", "j": True}


def test_fast_is_w1_without_the_journal():
    assert write_concern_from_setting("fast").document == {"w": 1, "j": False}


def test_timeout_is_only_for_majority():
    assert write_concern_from_setting("journaled", wtimeout_ms=5000).document == {"j": True}
    assert write_concern_from_setting("fast", wtimeout_ms=5000).document == {"w": 1, "j": False}


@pytest.mark.parametrize("name", [" Journaled ", "JOURNALED", "journaled\n"])
def test_case_and_surrounding_spaces_are_ignored(name):
    assert write_concern_from_setting(name).document == {"j": True}


@pytest.mark.parametrize("name", ["", "w1", "journal", "safe", "majority,journaled", "1"])
def test_anything_else_is_refused_naming_the_choices(name):
    with pytest.raises(ValueError, match="journaled, majority, fast"):
        write_concern_from_setting(name)


@pytest.mark.parametrize(
    "name, wtimeout_ms", [("journaled", None), ("majority", 5000), ("majority", None), ("fast", None)]
)
def test_client_options_give_clients_the_same_write_concern(name, wtimeout_ms):
    concern = write_concern_from_setting(name, wtimeout_ms=wtimeout_ms)
    options = write_concern_client_options(concern)
    # Clients are lazy: nothing connects here.
    sync_client = MongoClient("mongodb://127.0.0.1:1", connect=False, **options)
    async_client = AsyncMongoClient("mongodb://127.0.0.1:1", connect=False, **options)
    try:
        assert sync_client.write_concern == concern
        assert sync_client["chillout"].messages.write_concern == concern
        assert async_client["chillout"].messages.write_concern == concern
    finally:
        sync_client.close()


def test_write_concern_type():
    assert isinstance(write_concern_from_setting("fast"), WriteConcern)
