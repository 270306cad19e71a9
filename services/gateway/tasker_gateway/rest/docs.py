"""The Swagger UI page at /api-docs/ui, with swagger-ui's files (swagger-ui-dist 5.x, which
renders OpenAPI 3.1) shipped in this package under rest/swagger/: no CDN, works offline."""

from __future__ import annotations

from functools import cache
from importlib import resources

from quart import Response, abort
from quart_trio import QuartTrio

SWAGGER_UI_VERSION = "5.36.0"  # npm swagger-ui-dist; LICENSE.txt beside the files
ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8",
          "tasker-init.js": "text/javascript; charset=utf-8"}
# Everything from this origin; swagger-ui sets inline styles and shows data: images.
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'"
                                " 'unsafe-inline'; img-src 'self' data:; connect-src 'self';"
                                " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def asset(name: str) -> bytes:
    """A file of rest/swagger/ (read once)."""
    return resources.files("tasker_gateway.rest").joinpath("swagger", name).read_bytes()


def register(app: QuartTrio) -> None:
    """Adds /api-docs/ui and its files (/api-docs/swagger/<name>) to `app`; both public."""

    async def page() -> Response:
        response = Response(asset("index.html"), content_type="text/html; charset=utf-8")
        response.headers.update(PAGE_HEADERS)
        return response

    async def static_file(name: str) -> Response:
        kind = ASSETS.get(name)
        if kind is None:
            abort(404)  # the app's error envelope
        response = Response(asset(name), content_type=kind)
        response.headers["Cache-Control"] = "public, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    app.add_url_rule("/api-docs/ui", "swagger_ui", page, methods=["GET"])
    app.add_url_rule("/api-docs/swagger/<name>", "swagger_asset", static_file, methods=["GET"])
