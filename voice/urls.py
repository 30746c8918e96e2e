from django.urls import path

from voice import views

urlpatterns = [
    path("room/<str:room_id>/voice", views.media_upload, {"kind": "voice"}),
    path("room/<str:room_id>/image", views.media_upload, {"kind": "image"}),
    path("voice/<str:file_id>", views.media_download, {"kind": "voice"}),
    path("image/<str:file_id>", views.media_download, {"kind": "image"}),
]
