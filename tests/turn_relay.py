"""A real coturn for the TURN tests: Debian's `turnserver`, started on loopback from the
deployment recipe (deploy/coturn/turnserver.conf), and a real TURN client (aioice).

`coturn_factory(secrets=[...])` starts one coturn per call that knows those secrets (one
`static-auth-secret` line each, as the recipe says for a rotation). The recipe is read as
it is; only what a loopback test must differ in is replaced: the addresses (127.0.0.1),
the ports (a free listening port, a relay port range of its own), TLS (no certificate
here), the log (stdout, to a file of the test) and the secrets. With `loopback_peers=True`
(the default) the relay may also reach 127.0.0.1 (`allow-loopback-peers`, and the
recipe's 127.0.0.0/8 denial dropped), which two peers on this machine need; with False
the recipe's peer denials hold as they are.

`allocate(url, username, credential)` makes a TURN Allocate (long-term credentials, the
401/nonce dance) over UDP or TCP and returns the allocation, or raises
`aioice.stun.TransactionFailed` with coturn's error code.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aioice import stun, turn

from chillout_project.embedded_db import free_port
from tests.conftest import PROJECT_ROOT
from tests.processes import binary, process_stop, ready_wait

RECIPE = PROJECT_ROOT / "deploy/coturn/turnserver.conf"
# The recipe's keys that a loopback test replaces (or, without TLS, drops).
REPLACED = {
    "listening-port", "tls-listening-port", "min-port", "max-port", "static-auth-secret",
    "cert", "pkey", "syslog",
}  # fmt: skip
LOOPBACK_DENIAL = "denied-peer-ip=127.0.0.0-127.255.255.255"
RELAY_PORTS = 100  # relay ports of one coturn: far more than one test's allocations


@dataclass
class TurnRelay:
    port: int
    secrets: list[str]
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, transport: str = "udp") -> str:
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def coturn_conf(*, port: int, secrets: list[str], workdir: Path, loopback_peers: bool) -> str:
    lines = []
    for line in RECIPE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.split("=", 1)[0] in REPLACED or (loopback_peers and stripped == LOOPBACK_DENIAL):
            continue
        lines.append(stripped)
    relay_from = random.randrange(20_000, 60_000 - RELAY_PORTS)
    lines += [
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        f"listening-port={port}",
        f"min-port={relay_from}",
        f"max-port={relay_from + RELAY_PORTS}",
        "no-tls",
        "no-dtls",
        "log-file=stdout",
        f"pidfile={workdir}/turnserver.pid",
        f"userdb={workdir}/turndb",
        *(f"static-auth-secret={secret}" for secret in secrets),
    ]
    if loopback_peers:
        lines.append("allow-loopback-peers")
    return "\n".join(lines) + "\n"


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return True


@pytest.fixture(scope="session")
def coturn_factory(tmp_path_factory):
    """`coturn_factory(secrets=[...], loopback_peers=True)`: a started coturn; all stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(*, secrets: list[str], loopback_peers: bool = True) -> TurnRelay:
        workdir = tmp_path_factory.mktemp("coturn")
        port = free_port()
        conf = workdir / "turnserver.conf"
        conf.write_text(coturn_conf(port=port, secrets=secrets, workdir=workdir, loopback_peers=loopback_peers))
        log = workdir / "turnserver.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [binary("turnserver"), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        started.append(process)
        ready_wait(lambda: _listening(port), what="turnserver", process=process, log=log)
        ready_wait(lambda: "Relay ports initialization done" in log.read_text(errors="replace"),
                   what="turnserver relay ports", process=process, log=log)  # fmt: skip
        return TurnRelay(port=port, secrets=secrets, log=log, process=process)

    yield start
    for process in started:
        process_stop(process)


class Received(asyncio.DatagramProtocol):
    """What an allocation's peers sent it through the relay, and the errors of its sends."""

    def __init__(self) -> None:
        self.data: asyncio.Queue = asyncio.Queue()
        self.errors: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.data.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)


async def allocate(url: str, username: str, credential: str) -> tuple[turn.TurnTransport, Received]:
    """A TURN allocation on the server of a `turn:` URL (its `transport`), with these credentials."""
    parts = urlsplit(url)
    host, port = parts.path.rsplit(":", 1)
    transport = parse_qs(parts.query).get("transport", ["udp"])[0]
    return await turn.create_turn_endpoint(Received, (host, int(port)), username, credential, transport=transport)


async def verdict(url: str, username: str, credential: str) -> tuple[int, str] | None:
    """The error coturn answers an Allocate with, or None when it accepts it."""
    try:
        allocation, _ = await allocate(url, username, credential)
    except stun.TransactionFailed as exc:
        return exc.response.attributes["ERROR-CODE"]
    allocation.close()
    return None


async def refusal(url: str, username: str, credential: str) -> tuple[int, str]:
    """The error coturn answers an Allocate with (the test fails if it is accepted)."""
    error = await verdict(url, username, credential)
    assert error is not None, f"coturn accepted {username}"
    return error
