"""REST routes. Socket.IO is routed beside Django in `asgi.py`, not here."""

from django.urls import include, path

from chillout_project import ops_views

urlpatterns = [
    path("metrics", ops_views.metrics),
    path("api/openapi.json", ops_views.openapi),
    path("api/docs", ops_views.docs_page),
    path("api/docs/<str:name>", ops_views.docs_asset),
    # Media first: `api/room/<id>/voice` must not be taken for a room id containing '/'.
    path("api/", include("voice.urls")),
    path("api/", include("realtime.urls")),
    path("api/", include("rooms.urls")),
]

handler400 = "chillout_project.http.handler400"
handler403 = "chillout_project.http.handler403"
handler404 = "chillout_project.http.handler404"
handler500 = "chillout_project.http.handler500"
