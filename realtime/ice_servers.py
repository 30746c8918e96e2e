"""The ICE servers a call's peers use: STUN, and TURN with short-lived credentials.

Peers behind symmetric NATs or strict firewalls reach each other only through a TURN relay.
The relay (coturn, `deploy/coturn/`) must not be open to anyone, and a browser cannot keep a
long-term password secret, so the credentials are coturn's time-limited ones
(`use-auth-secret`, the "REST API for TURN services" draft, as Synapse's
`turn_shared_secret`): username `<unix expiry>:<random id>`, password the base64 HMAC-SHA1
of that username under a secret that Chillout and coturn share. coturn recomputes the HMAC
under each of its `static-auth-secret`s and refuses an expired username: nothing is stored,
and the relay needs no call to Chillout.

The random id makes every issue a different username (coturn's quotas and logs are per
username) and says nothing about who asked. The secret is only ever an HMAC key here: it is
in no answer, log line, error or metric.

`GET /api/turn` (`realtime.views`) and the `join_call` ack (`realtime.events`) both call
`ice_servers_issue`: one answer shape, one count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

from chillout_project import metrics

USER_ID_BYTES = 9  # 12 base64url characters: unguessable, short in coturn's logs


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


def turn_credential_create(*, secret: str, expires_at: int, user_id: str) -> TurnCredential:
    """coturn's time-limited credential: `username = "<expires_at>:<user_id>"`,
    `credential = base64(HMAC-SHA1(secret, username))`. Pure."""
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username=username, credential=base64.b64encode(digest).decode(), expires_at=expires_at)


def ice_servers_build(
    *, secrets_: tuple[str, ...], turn_urls: list[str], stun_urls: list[str], ttl: int, now: float, user_id: str
) -> dict:
    """`{"iceServers": [...], "ttl": seconds}`: the TURN entry (signed with the first secret,
    valid `ttl` seconds from `now`) when there is a secret, then the STUN entry when there are
    STUN URLs; without a secret `ttl` is 0 (nothing expires). Pure."""
    servers: list[dict] = []
    if secrets_:
        issued = turn_credential_create(secret=secrets_[0], expires_at=int(now) + ttl, user_id=user_id)
        servers.append({"urls": list(turn_urls), "username": issued.username, "credential": issued.credential})
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    return {"iceServers": servers, "ttl": ttl if secrets_ else 0}


def ice_servers_issue(*, via: str) -> dict:
    """The configured ICE servers with fresh credentials, counted by `via` (`rest`, `join_call`)."""
    answer = ice_servers_build(
        secrets_=settings.TURN_SECRETS,
        turn_urls=settings.TURN_URLS,
        stun_urls=settings.STUN_URLS,
        ttl=settings.TURN_TTL_SECONDS,
        now=time.time(),
        user_id=secrets.token_urlsafe(USER_ID_BYTES),
    )
    if settings.TURN_SECRETS:
        metrics.turn_credentials_issued(via=via)
    return answer
