from django.urls import path

from rooms import health, views

urlpatterns = [
    path("health", health.health),
    path("ready", health.ready),
    # `<path:>` so that an encoded '/' reaches the view and gets its 400, not a 404.
    path("room/<path:room_id>", views.room_detail),
]
