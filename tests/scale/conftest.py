"""Scale-out fixtures: a real redis-server, pairs of real Daphne processes on it, real nginx.

The session starts one `redis-server` on a free port (no persistence). Each pair of server
processes gets its own `REDIS_PREFIX`, so pairs never see each other's keys or emits, and
a short `DEAD_PROCESS_SECONDS` so that a killed process is reaped quickly.

`redis-server` and `nginx` are Debian packages (`apt-get install -y redis-server nginx`);
without them these tests fail with that hint rather than being skipped.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from chillout_project.embedded_db import free_port
from tests.conftest import PROJECT_ROOT, ServerProcess
from tests.processes import binary, process_stop, ready_wait
from tests.realtime.conftest import SocketClient

# What python-socketio's websocket client raises (socketio.exceptions.ConnectionError) when
# the server refuses its handshake (here: the per-IP cap): the upgrade's 403 has no body.
REFUSED = "^Connection error$"
DEAD_PROCESS_SECONDS = 3.0


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A throwaway redis-server for the session: `--save "" --appendonly no`, stopped at the end."""
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = workdir / "redis.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    ready_wait(client.ping, what="redis-server", process=process, log=log)
    client.close()
    yield url
    process_stop(process)


@dataclass
class Cluster:
    """Server processes sharing one Redis prefix; `redis` is a client on that Redis."""

    servers: list[ServerProcess]
    prefix: str
    redis: redis.Redis

    def keys(self, pattern: str = "*") -> list[str]:
        return sorted(k.decode() for k in self.redis.keys(self.prefix + pattern))


@pytest.fixture(scope="session")
def cluster_factory(server_factory, redis_url):
    """`cluster_factory(n=2, **env)`: n servers on the session's Redis, with their own prefix."""
    client = redis.Redis.from_url(redis_url)

    def start(*, n: int = 2, daphne_args: tuple[str, ...] = (), **env) -> Cluster:
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        env = {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, "DEAD_PROCESS_SECONDS": DEAD_PROCESS_SECONDS, **env}
        servers = [server_factory(daphne_args=daphne_args, **env) for _ in range(n)]
        return Cluster(servers=servers, prefix=prefix, redis=client)

    yield start
    client.close()


@pytest.fixture(scope="module")
def pair(cluster_factory) -> Cluster:
    """Two processes A and B shared by a module's tests (rate limits off: tests send bursts)."""
    return cluster_factory(SEND_RATE="0", RELAY_RATE="0")


@pytest.fixture
async def clients():
    """`await clients(url)`: a connected SocketClient; every one is closed after the test."""
    opened: list[SocketClient] = []

    async def open_client(url: str, *, transports: tuple[str, ...] = ("websocket",), **kwargs) -> SocketClient:
        client = SocketClient(url, transports=transports, **kwargs)
        opened.append(client)
        return await client.connect()

    yield open_client
    for client in opened:
        await client.disconnect()


def nginx_conf(*, ports: list[int], listen: int, prefix: Path) -> str:
    """The recipe's nginx configuration (deploy/nginx), adapted to local test ports.

    The upstream's balancing directive is read from deploy/nginx/chillout.conf and the
    server-level directives are included from deploy/nginx/chillout-locations.conf as they
    are, so the test runs the recipe, not a copy of it. TLS and the port-80 redirect are
    left out.
    """
    recipe = (PROJECT_ROOT / "deploy/nginx/chillout.conf").read_text()
    balancing = [line.strip() for line in recipe.splitlines() if line.strip().startswith(("hash ", "ip_hash"))]
    assert len(balancing) == 1, "the recipe's upstream must say how it stays sticky"
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
    locations = PROJECT_ROOT / "deploy/nginx/chillout-locations.conf"
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream chillout {{
        {balancing[0]}
{servers}
    }}
    server {{
        listen 127.0.0.1:{listen};
        include {locations};
    }}
}}
"""


@pytest.fixture
def nginx_factory(tmp_path):
    """`nginx_factory(ports)`: a real nginx in front of those ports; returns its base URL."""
    started: list[subprocess.Popen] = []

    def start(ports: list[int]) -> str:
        listen = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(nginx_conf(ports=ports, listen=listen, prefix=tmp_path))
        log = tmp_path / "error.log"
        with open(tmp_path / "nginx.out", "ab") as out:
            process = subprocess.Popen(
                [binary("nginx"), "-c", str(conf), "-p", str(tmp_path)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        started.append(process)
        url = f"http://127.0.0.1:{listen}"
        ready_wait(lambda: httpx.get(f"{url}/api/health", timeout=2.0).status_code == 200,
                   what="nginx", process=process, log=log)  # fmt: skip
        return url

    yield start
    for process in started:
        process_stop(process)
