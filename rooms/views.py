"""REST views of rooms: parse, call one service and one selector, answer."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from chillout_project.http import api_view, media_base
from rooms import selectors, services
from rooms.validators import check_history_limit, check_object_id, check_room_id
from rooms.wire import room_json, room_json_stream


@api_view("GET")
async def room_detail(request: HttpRequest, room_id: str):
    """Get-or-create a room with its history (all of it, or a page with `limit`/`before`)."""
    room_id = check_room_id(room_id)
    limit = check_history_limit(request.GET.get("limit"))
    before = request.GET.get("before")
    if before is not None:
        before = check_object_id(before, field="before")
        limit = limit or settings.HISTORY_PAGE_DEFAULT
    selectors.room_history_prefetch(room_id=room_id, full=limit is None)  # overlaps the room read
    room = await services.room_get_or_create(room_id=room_id)
    if limit is None:
        parts = await selectors.room_history_stream(room=room)
    else:
        parts = await selectors.room_history_get(room=room, limit=limit, before=before)
    base = media_base(request)
    if isinstance(parts, list):
        return HttpResponse(room_json(room, parts, media_base=base), content_type="application/json")
    # The whole history of a room larger than the cache: streamed from the database cursor.
    return StreamingHttpResponse(room_json_stream(room, parts, media_base=base), content_type="application/json")
