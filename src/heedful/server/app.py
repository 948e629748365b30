"""Building the FastAPI app: limits, sessions, security headers, and one error shape.

Every error a client sees is `{"error": "...", "field": "..."}` (field may be
null) with a 4xx status: heedful's own errors carry their status, FastAPI's
validation errors are reshaped to name the first bad field, and a body over
the size limit is refused (413) before any route runs. Pages (not /v1) show
errors as HTML.

Sessions use Starlette's `SessionMiddleware`: a cookie signed with
itsdangerous, always HttpOnly, here SameSite=Strict (and Secure with
`secure_cookies`). It holds only the key id and the CSRF token; every request
re-checks the key in the store, so revoking a key ends its sessions without a
server-side session table.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

import heedful
from heedful.errors import HeedfulError
from heedful.store import Store

HERE = Path(__file__).parent


@dataclass
class ServerConfig:
    """Limits and session settings; `heedful serve` flags (and HEEDFUL_* env vars) set them."""

    max_body_bytes: int = 1_000_000
    max_batch: int = 1000
    max_text: int = 100_000
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session_max_age: int = 8 * 3600
    secure_cookies: bool = False


def error_json(status: int, error: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "field": field}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over `max_bytes` (413) — by Content-Length, or while reading a chunked body."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if b"%00" in scope.get("query_string", b"").lower() or "\x00" in scope.get("path", ""):
            resp = error_json(422, "NUL bytes are not allowed in the URL", "query")
            return await resp(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(scope, receive, send, length.decode("latin-1"))
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send, f"more than {size}")
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send, size: str):
        resp = error_json(413, f"request body of {size} bytes exceeds the limit of {self.max_bytes} bytes", "body")
        await resp(scope, receive, send)


class SecurityHeaders:
    """Defence in depth beside escaping: no inline script or style, no framing, no sniffing."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(msg):
            if msg["type"] == "http.response.start":
                msg.setdefault("headers", []).extend([
                    (b"content-security-policy", self.CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")])
            await send(msg)
        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/v1")


def _page_error(request: Request, status: int, message: str) -> HTMLResponse:
    from heedful.server.ui import render
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeedfulError)
    async def heedful_error(request: Request, e: HeedfulError):
        if not _is_api(request):
            return _page_error(request, e.http_status, str(e))
        return error_json(e.http_status, str(e), getattr(e, "field", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        err = e.errors()[0]
        loc = [str(p) for p in err["loc"]]
        field = ".".join(loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path") else loc) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            msg = f"malformed JSON: {err.get('ctx', {}).get('error', msg)}"
        return error_json(422, f"{field}: {msg}", field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        if not _is_api(request):
            return _page_error(request, e.status_code, str(e.detail))
        return error_json(e.status_code, str(e.detail), None, getattr(e, "headers", None))


def _openapi(app: FastAPI):
    """The generated schema, plus the request bodies that routes validate themselves."""
    from heedful.server.ingest import FeedbackIn, ResponseIn
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FeedbackIn, ResponseIn):
        s = model.model_json_schema(ref_template="#/components/schemas/{model}")
        comps.update(s.pop("$defs", {}))
        comps[model.__name__] = s
    for path, model in (("/v1/feedback", "FeedbackIn"), ("/v1/responses", "ResponseIn")):
        one = {"$ref": f"#/components/schemas/{model}"}
        schema["paths"][path]["post"]["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"anyOf": [one, {"type": "array", "items": one}]}}}}
    app.openapi_schema = schema
    return schema


def create_app(store: Store | str | None = None, config: ServerConfig | None = None) -> FastAPI:
    """The whole server over one store: API under /v1, annotation pages at /."""
    from heedful.server import api, ui
    config = config or ServerConfig()
    store = store if isinstance(store, Store) else Store(store)
    app = FastAPI(title="heedful", version=getattr(heedful, "__version__", "0"), openapi_url="/v1/openapi.json",
                  docs_url="/v1/docs", redoc_url=None,
                  description="Ingest responses and feedback, query them, run annotation task queues.")
    app.state.store, app.state.config = store, config
    _install_error_handlers(app)
    app.include_router(api.router, prefix="/v1")
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SessionMiddleware, secret_key=config.session_secret, session_cookie="heedful_session",
                       max_age=config.session_max_age, same_site="strict", https_only=config.secure_cookies)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.openapi = lambda: _openapi(app)
    return app
