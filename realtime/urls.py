from django.urls import path

from realtime import views

urlpatterns = [
    path("turn", views.turn_servers),
]
