"""REST views of media: upload into the media store, ranged and revalidated download."""

import functools

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from chillout_project import metrics
from chillout_project.errors import InvalidInput, NotFound, RateLimited
from chillout_project.http import api_view, error_response, json_response, request_client_ip
from chillout_project.ratelimit import KeyedBuckets
from chillout_project.validators import check_object_id, check_room_id
from voice import media, services
from voice.kinds import IMAGE, KINDS
from voice.ranges import Unsatisfiable, parse_range


@api_view("POST")
async def media_upload(request: HttpRequest, room_id: str, kind: str):
    media_kind = KINDS[kind]
    room_id = check_room_id(room_id)
    check_upload_rate(ip=request_client_ip(request))
    uploaded = await services.media_upload(
        kind=media_kind, room_id=room_id, content_type=request.META.get("CONTENT_TYPE", ""), body=request
    )
    return json_response({"url": media_kind.path(uploaded.file_id)})


@functools.cache
def _upload_buckets() -> KeyedBuckets:
    return KeyedBuckets(rate=settings.UPLOAD_RATE, burst=settings.UPLOAD_BURST)


def check_upload_rate(*, ip: str) -> None:
    """Uploads per client IP (`UPLOAD_RATE` / `UPLOAD_BURST`, per process): 429 past the burst.
    The IP is `request_client_ip`'s."""
    if not _upload_buckets().take(ip):
        metrics.upload_refused(reason="rate_limited")
        raise RateLimited("rate limited")


@api_view("GET")
async def media_download(request: HttpRequest, file_id: str, kind: str):
    """The file, or with `?w=` (images) its stored thumbnail of that width, with the same headers."""
    media_kind = KINDS[kind]
    width = None
    if "w" in request.GET:
        if media_kind is not IMAGE:
            raise InvalidInput("w (a thumbnail width) applies to images only")
        width = services.check_thumbnail_width(request.GET["w"])
    try:
        oid = check_object_id(file_id, field="fileId")
    except InvalidInput:
        raise NotFound("File not found") from None
    if width is None:
        stored = await media.media_open(kind=media_kind, file_id=oid)
        etag = f'"{oid}-{stored.length}"' if stored is not None else ""
    else:
        stored = await services.media_thumbnail(file_id=oid, width=width)
        etag = f'"{oid}-w{width}-{stored.length}"' if stored is not None else ""
    if stored is None:
        raise NotFound("File not found")
    return _file_response(request, stored, etag=etag, content_type=stored.content_type or media_kind.fallback_type)


def _file_response(request: HttpRequest, stored: media.MediaFile, *, etag: str, content_type: str) -> HttpResponse:
    """200 / 206 / 304 / 416 for a stored file, ranged and revalidated."""
    total = stored.length
    headers = media_headers(etag=etag)
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return HttpResponse(status=304, content_type=content_type, headers=headers)

    byte_range = None
    if _if_range_holds(request.headers.get("If-Range"), etag):
        try:
            byte_range = parse_range(request.headers.get("Range"), total)
        except Unsatisfiable:
            return error_response("range not satisfiable", 416, headers={**headers, "Content-Range": f"bytes */{total}"})

    start, length, status = 0, total, 200
    if byte_range is not None:
        start, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range(total)
    headers["Content-Length"] = str(length)

    if request.method == "HEAD":
        return HttpResponse(status=status, content_type=content_type, headers=headers)
    return StreamingHttpResponse(
        stored.read_range(start=start, length=length), status=status, content_type=content_type, headers=headers
    )


def media_headers(*, etag: str) -> dict[str, str]:
    """Headers of every answer about a stored file (200, 206, 304, 416); `Content-Type` goes beside them.

    A 304 repeats the representation headers (RFC 9110 §15.4.5): a browser's cache replaces
    the stored ones with them, and Chromium's Opaque Response Blocking rejects a `nosniff`
    revalidation that does not say the file's type (an <img> broken after every reload).
    CORP lets <img>/<audio> of any origin (the web client's) embed the file even under COEP;
    the CSP makes the file inert when opened directly: it is never a page.
    """
    return {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in candidates or etag in candidates


def _if_range_holds(header: str | None, etag: str) -> bool:
    """`If-Range` with another validator means: the file changed, send all of it."""
    return header is None or header.strip() == etag
