"""`manage.py check --deploy` names each unsafe production setting (contract §6 Hosts; issue 11).

Runs the real command in a subprocess (in an empty directory, so no `.env` is read) with
every unsafe default, then with a production-like configuration, and compares the exact
set of Chillout check ids reported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

ALL_IDS = {f"chillout.W00{n}" for n in range(1, 8)}

UNSAFE = {
    "ALLOWED_HOSTS": "*",
    "FRONTEND_URL": "*",
    "METRICS": "open",
    "MONGO_WRITE_CONCERN": "fast",
}
SAFE = {
    "SECRET_KEY": "k" + "x7Qp2vR9sLm4Tz8Wb1Nc6Yd3Fg5Hj0Ka" * 2,
    "ALLOWED_HOSTS": "chat.example.com",
    "PUBLIC_URL": "https://chat.example.com",
    "FRONTEND_URL": "https://app.example.com",
    "METRICS": "token:s3cret",
    "MONGO_URI": "mongodb://db.example.com:27017/chillout",
    "MONGO_WRITE_CONCERN": "journaled",
}


def check_deploy(tmp_path, **env: str) -> tuple[int, set[str]]:
    clean = {k: v for k, v in os.environ.items() if k not in SAFE and not k.startswith("PYTEST")}
    clean.update(DJANGO_SETTINGS_MODULE="chillout_project.settings", **env)
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "manage.py"), "check", "--deploy"],
        cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, set(re.findall(r"\((chillout\.W\d{3})\)", output))


def test_every_unsafe_setting_is_named(tmp_path):
    returncode, found = check_deploy(tmp_path, **UNSAFE)
    assert returncode == 0  # warnings, not errors: `--fail-level WARNING` makes them fail a deploy
    assert found == ALL_IDS


def test_the_defaults_name_what_production_must_set(tmp_path):
    _, found = check_deploy(tmp_path)
    assert found == {"chillout.W001", "chillout.W003", "chillout.W006"}


def test_a_production_configuration_is_clean(tmp_path):
    _, found = check_deploy(tmp_path, **SAFE)
    assert found == set()


def test_fail_level_warning_stops_a_deploy(tmp_path):
    unsafe = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k not in SAFE}, "DJANGO_SETTINGS_MODULE": "chillout_project.settings"},
    )  # fmt: skip
    assert unsafe.returncode == 1
    assert "chillout.W001" in unsafe.stderr
