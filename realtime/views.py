"""REST view of calls: `GET /api/turn`, the ICE servers a client needs before joining a call.

It lives with the calls (`realtime`), beside the `join_call` ack that carries the same
servers; `chillout_project.urls` (the composition root) routes to it. Always 200 for a GET
within the limit, with or without TURN configured (`ttl` 0 then), so a client can always ask.
"""

import functools

from django.conf import settings
from django.http import HttpRequest

from chillout_project import metrics
from chillout_project.errors import RateLimited
from chillout_project.http import api_view, json_response, request_client_ip
from chillout_project.ratelimit import KeyedBuckets
from realtime.ice_servers import ice_servers_issue


@api_view("GET")
async def turn_servers(request: HttpRequest):
    check_turn_rate(ip=request_client_ip(request))
    return json_response(ice_servers_issue(via="rest"), headers={"Cache-Control": "no-store"})


@functools.cache
def _turn_buckets() -> KeyedBuckets:
    return KeyedBuckets(rate=settings.TURN_RATE, burst=settings.TURN_BURST)


def check_turn_rate(*, ip: str) -> None:
    """Credentials per client IP (`TURN_RATE` / `TURN_BURST`, per process): 429 past the burst.

    Each issue is a fresh relay login; a client needs one per page load, so a low rate costs
    honest clients nothing and bounds how many usernames one address can mint."""
    if not _turn_buckets().take(ip):
        metrics.turn_request_refused(reason="rate_limited")
        raise RateLimited("rate limited")
