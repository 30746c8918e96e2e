"""chillout_project/tunings.py: every reach into a library is checked on the locked
versions, and on any other falls back to the library's own behaviour, saying so once.

The first test is the one that a re-lock moving a library makes fail: it names each reach
to re-check (what it relies on) before its table in tunings.py takes the new version.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from chillout_project import tunings
from chillout_project.tunings import EXTENSION, REACHES, TUNING, lock_versions, reach_active, selection_parse

LOCKS = sorted((Path(__file__).resolve().parents[2] / "requirements").glob("*.txt"))
TUNINGS = sorted(name for name, reach in REACHES.items() if reach.kind == TUNING)


@pytest.mark.parametrize("lock", LOCKS, ids=[path.name for path in LOCKS])
def test_every_lock_holds_the_versions_every_reach_was_checked_against(lock):
    versions = lock_versions(lock)
    moved = [line for line in tunings.report(versions) if "RE-CHECK" in line]
    assert not moved, f"{lock.name} moved libraries these reaches rely on; re-check each, then its table:\n" + "\n".join(
        f"{line}\n    re-check: {REACHES[line.split()[1]].relies_on}" for line in moved
    )


def test_the_installed_versions_are_the_locked_ones_the_reaches_name():
    assert all(reach_active(name) for name in REACHES)  # the suite runs with LIBRARY_TUNINGS=on by default


def gauge(name: str, active: str) -> float | None:
    return REGISTRY.get_sample_value("chillout_library_tuning", {"name": name, "kind": REACHES[name].kind, "active": active})


@pytest.mark.parametrize("name", sorted(REACHES))
def test_a_reach_on_a_version_it_was_not_checked_against_is_off_with_one_warning(name, library_moved, caplog):
    library_moved(name)
    with caplog.at_level(logging.WARNING, logger="chillout_project.tunings"):
        assert reach_active(name) is False
        assert reach_active(name) is False  # decided once
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and f" {name} is off: checked on " in warnings[0] and "0.0.0" in warnings[0]
    assert (gauge(name, "0"), gauge(name, "1")) == (1.0, None)


def test_a_reach_decided_again_on_a_checked_version_is_exported_active_only(library_moved, monkeypatch):
    checked = REACHES["redis_pipe"]
    library_moved("redis_pipe")
    assert reach_active("redis_pipe") is False
    monkeypatch.setitem(REACHES, "redis_pipe", checked)
    tunings.reaches_reset()
    assert reach_active("redis_pipe") is True
    assert (gauge("redis_pipe", "1"), gauge("redis_pipe", "0")) == (1.0, None)


@pytest.mark.parametrize("selection, expected", [
    ("on", set(TUNINGS)),
    ("off", set()),
    ("redis_pipe,room_index", {"redis_pipe", "room_index"}),
    ("-direct_write", set(TUNINGS) - {"direct_write"}),
])  # fmt: skip
def test_library_tunings_selects_tunings_and_never_extensions(selection, expected, library_moved):
    with override_settings(LIBRARY_TUNINGS=selection_parse(selection)):
        decided = tunings.reaches_decide()
    assert {name for name, active in decided.items() if active and REACHES[name].kind == TUNING} == expected
    assert all(active for name, active in decided.items() if REACHES[name].kind == EXTENSION)


@given(st.lists(st.sampled_from(TUNINGS), min_size=1, unique=True), st.booleans())
def test_a_selection_names_what_it_keeps_or_what_it_drops(names, drop):
    value = ",".join(f"-{name}" if drop else f" {name.upper()} " for name in names)
    assert selection_parse(value) == (frozenset(TUNINGS) - set(names) if drop else frozenset(names))


@pytest.mark.parametrize("value, message", [
    ("redis_pipe,-room_index", "either names to keep or -names to drop"),
    ("recovery", "unknown tuning(s) recovery"),  # an extension is switched by its own setting
    ("fast", "unknown tuning(s) fast"),
])  # fmt: skip
def test_a_selection_that_names_no_tuning_is_refused(value, message):
    with pytest.raises(ValueError, match=r"^LIBRARY_TUNINGS: ") as error:
        selection_parse(value)
    assert message in str(error.value)


@pytest.mark.parametrize("installed, checked, expected", [
    ("5.2.19", ("5.2.*",), True), ("5.2.20", ("5.2.*",), True), ("5.3.0", ("5.2.*",), False),
    ("26.11.1", ("26.10.2", "26.11.1"), True), ("26.11.10", ("26.11.1",), False), (None, ("1.0",), False),
])  # fmt: skip
def test_a_checked_version_is_exact_or_a_series(installed, checked, expected):
    assert tunings.version_checked(installed, checked) is expected


def test_the_report_exits_one_when_a_lock_needs_re_checking(tmp_path, capsys):
    lock = tmp_path / "lock.txt"
    lock.write_text(LOCKS[0].read_text().replace("\npython-socketio==5.18.1 \\", "\npython-socketio==5.99.0 \\"))
    assert tunings.main([str(LOCKS[0])]) == 0
    assert tunings.main([str(lock)]) == 1
    out = capsys.readouterr().out
    assert "extension recovery               RE-CHECK (python-socketio 5.99.0; checked python-socketio 5.18.1)" in out
