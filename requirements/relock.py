"""Compile the locks (`make lock`), or move them to the newest releases (`make upgrade`).

The `.in` files hold what we choose, each top-level package pinned (`name==version`) with a
comment saying why; the `.txt` files are their locks: every package of the graph pinned with
its hashes, compiled by `uv pip compile --generate-hashes` for Python 3.11. The three locks
are layered: `embedded.txt` is compiled within `base.txt`'s versions and `dev.txt` within
`embedded.txt`'s, so a package has one version in all three.

`relock.py` (lock): compiles each `.in` as it is; a locked version that still satisfies the
`.in` is kept (uv reads the existing `.txt`), so a lock only moves where an `.in` moved.

`relock.py --upgrade`: each top-level pin is loosened to `>=` its version (bounded by its
`# hold: <spec>` comment, e.g. Django's `<5.3`, the LTS), the graph is compiled to the newest
releases, and the `.in` pins are rewritten to the versions the new lock chose. It prints what
moved. What to do next is `make upgrade`'s: install, unit tier, the tunings' check, a bench.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAYERS = (("base", None), ("embedded", "base"), ("dev", "embedded"))  # (lock, compiled within)
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\[\]-]+)==(?P<version>\S+)(?P<rest>.*)$")
HOLD = re.compile(r"#\s*hold:\s*(?P<spec>\S+)")
LOCKED = re.compile(r"^(?P<name>[a-z0-9_.-]+)==(?P<version>\S+)", re.MULTILINE)


def canonical(name: str) -> str:
    """A distribution name as the locks spell it (PEP 503: lower case, runs of -_. as -)."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    """{distribution: version} of a `.txt` lock."""
    return {canonical(m["name"]): m["version"] for m in LOCKED.finditer(lock.read_text())}


def loosened(text: str) -> str:
    """An `.in` with each `name==v` as `name>=v` (plus its hold), its `-r x.in` lines kept."""
    lines = []
    for line in text.splitlines():
        match = PIN.match(line)
        if match is None:
            lines.append(line)
            continue
        hold = HOLD.search(match["rest"])
        spec = f">={match['version']}" + (f",{hold['spec']}" if hold else "")
        lines.append(f"{match['name']}{spec}")
    return "\n".join(lines) + "\n"


def repinned(text: str, versions: dict[str, str]) -> str:
    """An `.in` whose top-level pins are the versions of the new lock (comments kept)."""
    def pin(match: re.Match) -> str:
        version = versions.get(canonical(match["name"]), match["version"])
        return f"{match['name']}=={version}{match['rest']}"

    return "\n".join(PIN.sub(pin, line) for line in text.splitlines()) + "\n"


def compile_lock(source: Path, lock: Path, within: Path | None, *, upgrade: bool, uv: str) -> None:
    command = [uv, "pip", "compile", "--quiet", "--generate-hashes", "--python-version", "3.11",
               "--custom-compile-command", "make lock", str(source), "-o", str(lock)]  # fmt: skip
    if within is not None:
        command += ["-c", str(within)]
    if upgrade:
        command.append("--upgrade")
    subprocess.run(command, check=True, cwd=HERE.parent)


def relock(*, upgrade: bool, uv: str) -> dict[str, tuple[str | None, str]]:
    """Compile every layer; return {distribution: (old, new)} for what moved."""
    before: dict[str, str] = {}
    for name, _ in LAYERS:
        if (HERE / f"{name}.txt").exists():
            before.update(locked_versions(HERE / f"{name}.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        for name, _ in LAYERS:
            text = (HERE / f"{name}.in").read_text()
            sources[name] = Path(tmp, f"{name}.in")
            sources[name].write_text(loosened(text) if upgrade else text)
        for name, within in LAYERS:
            compile_lock(sources[name], HERE / f"{name}.txt", HERE / f"{within}.txt" if within else None,
                         upgrade=upgrade, uv=uv)  # fmt: skip
    after: dict[str, str] = {}
    for name, _ in LAYERS:
        after.update(locked_versions(HERE / f"{name}.txt"))
    if upgrade:
        for name, _ in LAYERS:
            path = HERE / f"{name}.in"
            path.write_text(repinned(path.read_text(), after))
    return {dist: (before.get(dist), version) for dist, version in sorted(after.items()) if before.get(dist) != version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="move to the newest releases and re-pin the .in files")
    parser.add_argument("--uv", default="uv", help="the uv executable")
    args = parser.parse_args(argv)
    moved = relock(upgrade=args.upgrade, uv=args.uv)
    for dist, (old, new) in moved.items():
        print(f"{dist}: {old or '(new)'} -> {new}")
    print(f"{len(moved)} package(s) moved" if moved else "no package moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
