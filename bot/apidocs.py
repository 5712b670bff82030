"""The API docs pages: Swagger UI at /docs and ReDoc at /redoc, both served with their JavaScript and
CSS from this app (/static-docs, the files the `fastapi-offline` package ships), never from a CDN:
they work on an intranet machine and no third-party script runs on this origin. Each page carries
its own Content-Security-Policy (bot/security.py `docs_csp`). Off with POLICYBOT_API_DOCS=false
(create_app then also drops /openapi.json)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from bot.security import docs_csp

STATIC_URL = "/static-docs"
# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
ASSETS = files("fastapi_offline") / "static"


def install_api_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs and /redoc for `app.openapi_url` (FastAPI's own docs routes,
    which load from jsDelivr, must be off: docs_url=None, redoc_url=None)."""
    assert app.openapi_url and app.docs_url is None and app.redoc_url is None
    openapi_url = app.openapi_url
    app.mount(STATIC_URL, StaticFiles(directory=str(ASSETS)), name="static-docs")

    def root(request: Request) -> str:  # behind a proxy that strips a prefix (uvicorn --root-path)
        return str(request.scope.get("root_path", ""))

    def page(html: HTMLResponse) -> HTMLResponse:
        body = bytes(html.body).decode()
        return HTMLResponse(
            body, headers={"Content-Security-Policy": docs_csp(body), "Cache-Control": "no-cache"}
        )

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        static = root(request) + STATIC_URL
        return page(
            get_swagger_ui_html(
                openapi_url=root(request) + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{static}/swagger-ui-bundle.js",
                swagger_css_url=f"{static}/swagger-ui.css",
                swagger_favicon_url=f"{static}/favicon.png",
                # validatorUrl None: no badge that would send the description to validator.swagger.io
                swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        static = root(request) + STATIC_URL
        return page(
            get_redoc_html(
                openapi_url=root(request) + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{static}/redoc.standalone.js",
                redoc_favicon_url=f"{static}/favicon.png",
                with_google_fonts=False,
            )
        )
