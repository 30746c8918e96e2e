"""Operations endpoints: `/metrics`, `/api/openapi.json`, and the `/api/docs` viewer.

`/metrics` is guarded by `METRICS`: `off` answers 404 like any unknown route (nothing tells
a scanner it exists), `open` serves it, `token:<secret>` requires `Authorization: Bearer
<secret>` (401 JSON otherwise; compared in constant time).

The OpenAPI document is a hand-written file, `docs/openapi.yaml`, checked against real
responses by the test suite (schemathesis); it is parsed once and served as JSON.
The docs page is Swagger UI from the `drf-spectacular-sidecar` package, whose assets are
served from the installed package: no CDN is contacted at run time.
"""

import functools
import hmac
from pathlib import Path

import orjson
import yaml
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from chillout_project.errors import NotFound
from chillout_project.http import api_view, error_response

OPENAPI_PATH = settings.BASE_DIR / "docs" / "openapi.yaml"
SWAGGER_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}

DOCS_PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Chillout REST API</title>
<link rel="icon" href="/api/docs/favicon-32x32.png">
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/swagger-ui-init.js"></script>
</body>
</html>
"""

DOCS_INIT = b"""window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
"""


@api_view("GET")
async def metrics(request):
    mode = settings.METRICS
    if mode == "off":
        raise NotFound("not found")
    if mode.startswith("token:"):
        expected = f"Bearer {mode.removeprefix('token:')}".encode()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response("metrics need Authorization: Bearer <token>", 401, {"WWW-Authenticate": "Bearer"})
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


@functools.cache
def openapi_document() -> bytes:
    return orjson.dumps(yaml.safe_load(OPENAPI_PATH.read_text()))


@api_view("GET")
async def openapi(request):
    return HttpResponse(openapi_document(), content_type="application/json")


@api_view("GET")
async def docs_page(request):
    return HttpResponse(DOCS_PAGE, content_type="text/html; charset=utf-8")


@api_view("GET")
async def docs_asset(request, name: str):
    if name == "swagger-ui-init.js":
        return HttpResponse(DOCS_INIT, content_type="text/javascript")
    if name not in SWAGGER_ASSETS:
        raise NotFound("not found")
    return HttpResponse(
        _swagger_asset(name), content_type=SWAGGER_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
    )


@functools.cache
def _swagger_asset(name: str) -> bytes:
    """Read once (about 1.5 MB in all), then served from memory."""
    import drf_spectacular_sidecar

    root = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
    return (root / name).read_bytes()
