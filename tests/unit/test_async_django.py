"""chillout_project/async_django.py: the parts tied to Django's internals fail here first."""

from django.core.handlers.asgi import ASGIHandler
from django.middleware.security import SecurityMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from chillout_project.async_django import AsyncSecurityMiddleware, SharedThreadASGIHandler, handler_shape_known


def test_the_installed_django_has_the_asgi_handler_shape_that_was_checked():
    """When this fails, re-read django/core/handlers/asgi.py (ASGIHandler.__call__ and handle)
    against SharedThreadASGIHandler, then the `django_asgi_handler` entry of chillout_project/tunings.py."""
    assert handler_shape_known()
    assert issubclass(SharedThreadASGIHandler, ASGIHandler)


async def test_the_async_security_middleware_sets_the_same_headers_as_djangos():
    async def view(request):
        return HttpResponse("x")

    def sync_view(request):
        return HttpResponse("x")

    request = RequestFactory().get("/api/room/r")
    ours = await AsyncSecurityMiddleware(view)(request)
    django_s = SecurityMiddleware(sync_view)(RequestFactory().get("/api/room/r"))
    assert dict(ours.headers) == dict(django_s.headers)
    assert ours.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_async_security_middleware_redirects_as_djangos_when_asked():
    async def view(request):
        raise AssertionError("not reached")

    with override_settings(SECURE_SSL_REDIRECT=True):
        response = await AsyncSecurityMiddleware(view)(RequestFactory().get("/api/room/r?x=1"))
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/room/r?x=1"


def test_without_a_relational_database_no_request_signal_needs_a_thread():
    from django.core import signals

    from chillout_project.async_django import db_signals_disconnect

    db_signals_disconnect()
    from django.db import close_old_connections

    assert not signals.request_started.has_listeners()  # asend() returns without a thread hop
    finished = [ref() for _, ref, _ in signals.request_finished.receivers]
    assert close_old_connections not in finished  # (request_finished runs inside response.close)
