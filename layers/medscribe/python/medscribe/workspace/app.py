"""The workspace application: `create_app(service_factory, auth)` returns the Starlette app.

Every request passes `Guard` first: it authenticates (401 without a valid session or token, 403 for
a user in no workspace group), refuses a state change without the session's CSRF token or from
another origin (403), and puts the session on `request.state.session`; only the sign-in is open:
/login, and in AWS /auth/callback and /auth/refresh (API Gateway's authorizer lets exactly these through;
medscribe.workspace.signin).
Every response gets the security headers: a strict Content-Security-Policy (our own
script, style, images and media only; no inline script anywhere), no framing, no sniffing, no
caching (the pages hold PHI).

Errors of the service map to statuses here, for the API and the pages alike: NotFound 404,
BadRequest 400, Conflict (StaleVersion, NoteSigned, ...) 409, Forbidden 403.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medscribe.adapters.cognito_signin import LOGIN_PATH, LOGOUT_PATH, SIGNIN_PATHS
from medscribe.domain.search import SearchIndex
from medscribe.workspace.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOCAL_SESSION_COOKIE,
    SAFE_METHODS,
    Auth,
    GatewayAuth,
    LocalAuth,
    NoRole,
    Session,
    Unauthenticated,
    csrf_matches,
    same_origin,
)
from medscribe.workspace.ports import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Recordings,
    StaleVersion,
    Uploads,
    WorkspaceError,
    WorkspacePort,
)
from medscribe.workspace.signin import local_path, signin_routes

OPEN_PATHS = frozenset(SIGNIN_PATHS)
MAX_FORM_BYTES = 1_000_000  # a note form: far above any real note, far below a memory problem
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "media-src {media}; connect-src {connect}; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


def content_security_policy(media: str = "'self'", connect: str = "'self'") -> str:
    """The policy, with the recording's origin (a presigned link) added to media-src, or the upload
    bucket's to connect-src, by the one page that needs it."""
    return CONTENT_SECURITY_POLICY.format(media=media, connect=connect)


class Services:
    """The service, search index, recordings and uploads, each built on first use (not at a cold start)."""

    def __init__(self, service_factory: Callable[[], WorkspacePort],
                 search_factory: Callable[[], SearchIndex] | None,
                 recordings_factory: Callable[[], Recordings] | None,
                 uploads_factory: Callable[[], Uploads] | None = None) -> None:
        self._factories: dict[str, Callable[[], Any] | None] = {
            "service": service_factory, "search": search_factory, "recordings": recordings_factory,
            "uploads": uploads_factory}
        self._built: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self._built:
            factory = self._factories[name]
            self._built[name] = factory() if factory is not None else None
        return self._built[name]

    @property
    def service(self) -> WorkspacePort:
        service: WorkspacePort = self._get("service")
        return service

    @property
    def search(self) -> SearchIndex | None:
        index: SearchIndex | None = self._get("search")
        return index

    @property
    def recordings(self) -> Recordings | None:
        recordings: Recordings | None = self._get("recordings")
        return recordings

    @property
    def uploads(self) -> Uploads:
        uploads: Uploads | None = self._get("uploads")
        if uploads is None:
            raise NotFound("uploads are not configured here")
        return uploads


def wants_json(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api/")


def refusal(scope: Scope, status: int, message: str) -> Response:
    if wants_json(scope):
        return JSONResponse({"error": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


class Guard:
    """Authentication, CSRF and origin checks before any route; security headers after every one."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secured = self._secured(send, self.auth.secure_cookies)
        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, secured)
            return
        request = Request(scope, receive)
        try:
            session = self.auth.authenticate(request)
        except Unauthenticated as exc:
            await refusal(scope, 401, str(exc))(scope, receive, secured)
            return
        except NoRole as exc:
            await refusal(scope, 403, str(exc))(scope, receive, secured)
            return
        scope.setdefault("state", {})["session"] = session
        if session.cookie is not None:
            secured = self._with_cookie(secured, session.cookie)
        if scope["method"] not in SAFE_METHODS:
            problem, receive = await self._state_change_problem(request, session, receive)
            if problem:
                await refusal(scope, 403, problem)(scope, receive, secured)
                return
        await self.app(scope, receive, secured)

    async def _state_change_problem(self, request: Request, session: Session,
                                    receive: Receive) -> tuple[str | None, Receive]:
        if not same_origin(request):
            return "cross-origin request refused", receive
        offered = request.headers.get(CSRF_HEADER)
        if offered is None and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            body, receive = await _read_body(receive)
            if body is None:
                return "form too large", receive
            offered = next(iter(parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or []), None)
        if not csrf_matches(session, offered):
            return "missing or wrong CSRF token", receive
        return None, receive

    @staticmethod
    def _secured(send: Send, secure_cookies: bool) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", content_security_policy())
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("referrer-policy", "same-origin")
                headers.setdefault("cache-control", "no-store")
                headers.setdefault("cross-origin-opener-policy", "same-origin")
                if secure_cookies:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        return sending

    @staticmethod
    def _with_cookie(send: Send, cookie: tuple[str, str]) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                name, value = cookie
                MutableHeaders(scope=message).append(
                    "set-cookie", f"{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict")
            await send(message)

        return sending


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None past MAX_FORM_BYTES) and a `receive` that hands it on again."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def error_status(exc: WorkspaceError) -> int:
    for kind, status in ((NotFound, 404), (Conflict, 409), (Forbidden, 403), (BadRequest, 400)):
        if isinstance(exc, kind):
            return status
    return 500


def error_body(exc: WorkspaceError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(exc), "kind": type(exc).__name__}
    if isinstance(exc, StaleVersion):
        body["current"] = exc.current
    return body


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def _login_route(auth: LocalAuth) -> Route:
    async def login(request: Request) -> Response:
        target = local_path(request.query_params.get("next"))
        try:
            auth.authenticate(request)
            return RedirectResponse(target, status_code=303)  # already signed in (the link opened twice)
        except Unauthenticated:
            pass
        try:
            cookie = auth.exchange(request.query_params.get("token", ""))
        except Unauthenticated as exc:
            return PlainTextResponse(str(exc), status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(LOCAL_SESSION_COOKIE, cookie, max_age=auth.session_seconds, path="/", httponly=True,
                            samesite="strict", secure=False)
        return response

    return Route(LOGIN_PATH, login, methods=["GET"])


def _logout_route(auth: Auth) -> Route:
    async def logout(request: Request) -> Response:
        response = PlainTextResponse("Signed out. Close this tab.")
        if isinstance(auth, LocalAuth):
            auth.logout(request)
            response.delete_cookie(LOCAL_SESSION_COOKIE, path="/")
        else:  # to the sign-out that receives (and revokes) the refresh token: 307 keeps the POST and its form
            return RedirectResponse(LOGOUT_PATH, status_code=307)
        return response

    return Route("/logout", logout, methods=["POST"])


def create_app(service_factory: Callable[[], WorkspacePort], auth: Auth, *,
               search_factory: Callable[[], SearchIndex] | None = None,
               recordings_factory: Callable[[], Recordings] | None = None,
               uploads_factory: Callable[[], Uploads] | None = None) -> Starlette:
    """The workspace app. The factories run on first use and their results are kept for the process."""
    from medscribe.workspace import api, fhir_api, pages

    services = Services(service_factory, search_factory, recordings_factory, uploads_factory)
    routes: list[Route | Mount] = [*api.routes(services), *pages.routes(services), _logout_route(auth)]
    routes += fhir_api.routes(services)
    if isinstance(auth, LocalAuth):
        routes.append(_login_route(auth))
    elif isinstance(auth, GatewayAuth):
        routes += signin_routes(auth)
    static = resources.files("medscribe.workspace").joinpath("static")
    routes.append(Mount("/static", app=StaticFiles(directory=str(static)), name="static"))

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WorkspaceError)
        if wants_json(request.scope):
            return JSONResponse(error_body(exc), status_code=error_status(exc))
        return pages.error_page(request, error_status(exc), str(exc))

    app = Starlette(routes=routes, exception_handlers={WorkspaceError: service_error})
    app.add_middleware(Guard, auth=auth)
    return app
