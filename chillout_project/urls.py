"""REST routes. Socket.IO is routed beside Django in `asgi.py`, not here."""

from django.urls import include, path

urlpatterns = [
    # Media first: `api/room/<id>/voice` must not be taken for a room id containing '/'.
    path("api/", include("voice.urls")),
    path("api/", include("rooms.urls")),
]

handler400 = "chillout_project.http.handler400"
handler403 = "chillout_project.http.handler403"
handler404 = "chillout_project.http.handler404"
handler500 = "chillout_project.http.handler500"
