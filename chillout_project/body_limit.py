"""ASGI middleware that caps the size of an HTTP request body before Django reads it.

Django's ASGI handler reads the whole body (spooling to disk) before any view runs, so a
view cannot stop an oversized upload. This layer refuses a too-large `Content-Length` at
once, and counts the bytes of bodies without one, answering 413 JSON as soon as the cap
is passed. The cap is the largest media limit plus multipart framing; the upload views
then enforce the exact per-file limit while parsing.

Caveat: Daphne (Twisted) receives a request body completely before it calls the
application, so under Daphne this saves Django's copy, not the network transfer; a reverse
proxy's `client_max_body_size` is what stops the transfer early (docs/operations.md).
"""

from django.conf import settings

from chillout_project.http import asgi_json_send


def request_body_cap() -> int:
    return max(settings.MAX_VOICE_BYTES, settings.MAX_IMAGE_BYTES) + settings.MAX_REQUEST_OVERHEAD_BYTES


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = request_body_cap()
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            return await _too_large(send, cap)

        received = 0
        refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap and not refused:
                    refused = True
                    await _too_large(send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:
                await send(message)

        return await self.app(scope, limited_receive, guarded_send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, cap: int) -> None:
    await asgi_json_send(send, status=413, data={"error": f"request body larger than {cap} bytes"})
