"""Contract §3: every error is JSON; CORS follows FRONTEND_URL."""

import httpx
import pytest
from bson import ObjectId


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/", "/", "/api/room/", "/admin/"])
def test_unknown_routes_are_404_json(http, path):
    response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "not found"}


def test_delete_message_over_rest_is_not_provided(http):
    response = http.delete(f"/api/message/{ObjectId()}")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_no_framework_banner_or_debug_page(http):
    response = http.get("/api/room/" + "x" * 500)
    assert response.status_code == 400
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    assert "x-powered-by" not in response.headers


def test_preflight_allows_the_frontend_with_authorization(http):
    response = http.options(
        "/api/room/abc",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_an_origin_outside_frontend_url_gets_no_cors_grant(http):
    response = http.get("/api/health", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200  # CORS is enforced by the browser
    assert "access-control-allow-origin" not in response.headers


def test_requests_without_origin_are_served(http):
    assert http.get("/api/health").status_code == 200


def test_frontend_url_is_a_comma_separated_list(server_factory):
    server = server_factory(FRONTEND_URL="http://a.example,http://b.example")
    for origin in ("http://a.example", "http://b.example"):
        response = httpx.get(f"{server.url}/api/health", headers={"Origin": origin}, timeout=30)
        assert response.headers["access-control-allow-origin"] == origin
    response = httpx.get(f"{server.url}/api/health", headers={"Origin": "http://localhost:3000"}, timeout=30)
    assert "access-control-allow-origin" not in response.headers


def test_frontend_url_star_allows_any_origin(server_factory):
    server = server_factory(FRONTEND_URL="*")
    response = httpx.get(f"{server.url}/api/health", headers={"Origin": "http://anything.example"}, timeout=30)
    assert response.headers["access-control-allow-origin"] in ("*", "http://anything.example")
