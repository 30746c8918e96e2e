"""REST views of rooms: parse, call one service or selector, answer."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from chillout_project.errors import InvalidInput
from chillout_project.http import api_view, media_base
from rooms import selectors, services
from rooms.history import history_parts, room_json
from rooms.validators import check_history_limit, check_object_id, check_room_id


@api_view("GET")
async def room_detail(request: HttpRequest, room_id: str):
    """Get-or-create a room with its history (all of it, or a page with `limit`/`before`)."""
    room_id = check_room_id(room_id)
    limit = check_history_limit(request.GET.get("limit"))
    before = request.GET.get("before")
    if before is not None:
        before = check_object_id(before, field="before")
        limit = limit or settings.HISTORY_PAGE_DEFAULT
    room = await services.room_get_or_create(room_id=room_id)
    if before is not None and await selectors.message_get(room_id=room_id, message_id=before) is None:
        raise InvalidInput("before is not a message of this room")
    parts = await history_parts(room=room, limit=limit, before=before)
    return HttpResponse(room_json(room, parts, media_base=media_base(request)), content_type="application/json")
