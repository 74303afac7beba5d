"""The workspace's sign-in in AWS (`GatewayAuth`): Cognito's hosted UI with PKCE, the refresh, the sign-out.

GET /login starts the hosted UI (state and PKCE verifier in a cookie for SIGNIN_SECONDS); GET /auth/callback
finishes it (the state must match; the code is exchanged with the verifier) and sets two cookies, both
HttpOnly, Secure and SameSite=Lax (Lax: the browser arrives from Cognito's domain in a top-level redirect,
on which Strict would drop them; Lax still keeps them off cross-site posts):
- the access token, for "/", read by the Lambda authorizer; it expires with the token
  (`workspace_access_token_minutes`);
- the refresh token, for "/auth" only (it never rides along to the app's pages or API), expiring with the
  token (`workspace_refresh_token_days`).
GET /auth/refresh?next=/a/path trades the refresh token at the token endpoint for a new access token cookie
and redirects to `next` (a path of this app only, else "/"); without a refresh token, or when Cognito refuses
it (expired, revoked), it sends the browser to /login. These three routes are the only ones API Gateway lets
through without the authorizer: they are how a browser gets the token the authorizer asks for.
POST /auth/logout (behind the authorizer, CSRF-checked like every state change) revokes the refresh token at
Cognito (the app client allows revocation: the access tokens issued with it stop working too) and clears
both cookies; POST /logout, which the pages' sign-out form posts to, hands the request on to it (307 keeps
the method and the form, and only /auth/... receives the refresh-token cookie).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from medscribe.adapters.cognito_signin import (
    ACCESS_COOKIE,
    AUTH_PATH,
    CALLBACK_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    REFRESH_COOKIE,
    REFRESH_PATH,
    SIGNIN_COOKIE,
    SIGNIN_SECONDS,
    SignInFailed,
)
from medscribe.observability import logger
from medscribe.workspace.auth import GatewayAuth


def local_path(target: str | None) -> str:
    """`target` when it is a path of this app ("/encounters/..."), else "/": never another site. Browsers drop
    tabs and line breaks from URLs ("/\\t/evil.example" would become "//evil.example"), so any control
    character refuses the target too."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)):
        return "/"
    return target


def _set_tokens(response: Response, auth: GatewayAuth, access_token: str, refresh_token: str | None) -> None:
    response.set_cookie(ACCESS_COOKIE, access_token, max_age=auth.access_seconds, path="/", httponly=True,
                        secure=True, samesite="lax")
    if refresh_token:
        response.set_cookie(REFRESH_COOKIE, refresh_token, max_age=auth.refresh_seconds, path=AUTH_PATH,
                            httponly=True, secure=True, samesite="lax")


def _clear_tokens(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    response.delete_cookie(REFRESH_COOKIE, path=AUTH_PATH, secure=True, httponly=True, samesite="lax")


def signin_routes(auth: GatewayAuth) -> list[Route]:
    def redirect_uri(request: Request) -> str:
        return str(request.base_url).rstrip("/") + CALLBACK_PATH

    async def login(request: Request) -> Response:
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        response = RedirectResponse(auth.signin.authorize_url(redirect_uri=redirect_uri(request), state=state,
                                                              verifier=verifier), status_code=303)
        response.set_cookie(SIGNIN_COOKIE, f"{state}.{verifier}", max_age=SIGNIN_SECONDS, path="/", httponly=True,
                            secure=True, samesite="lax")
        return response

    async def callback(request: Request) -> Response:
        state, _, verifier = request.cookies.get(SIGNIN_COOKIE, "").partition(".")
        offered, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        if not (state and verifier and code and hmac.compare_digest(offered.encode(), state.encode())):
            return PlainTextResponse(f"The sign-in could not be completed; start again at {LOGIN_PATH}.",
                                     status_code=400)
        try:
            tokens = auth.signin.exchange(code=code, redirect_uri=redirect_uri(request), verifier=verifier)
        except SignInFailed:
            return PlainTextResponse(f"The sign-in was refused; start again at {LOGIN_PATH}.", status_code=400)
        response = RedirectResponse("/", status_code=303)
        _set_tokens(response, auth, tokens.access_token, tokens.refresh_token)
        response.delete_cookie(SIGNIN_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response

    async def refresh(request: Request) -> Response:
        offered = request.cookies.get(REFRESH_COOKIE)
        if not offered:
            return RedirectResponse(LOGIN_PATH, status_code=303)
        try:
            tokens = auth.signin.refresh(offered)
        except SignInFailed as exc:
            logger.info("refresh refused", extra={"reason": str(exc)})  # the status only, never the token
            response = RedirectResponse(LOGIN_PATH, status_code=303)
            _clear_tokens(response)
            return response
        response = RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
        _set_tokens(response, auth, tokens.access_token, tokens.refresh_token)
        return response

    async def logout(request: Request) -> Response:
        offered = request.cookies.get(REFRESH_COOKIE)
        if offered:
            try:
                auth.signin.revoke(offered)
            except (SignInFailed, OSError) as exc:  # signed out here all the same; the token expires by itself
                logger.warning("revocation failed", extra={"reason": type(exc).__name__})
        response = PlainTextResponse("Signed out. Close this tab.")
        _clear_tokens(response)
        return response

    return [Route(LOGIN_PATH, login, methods=["GET"]), Route(CALLBACK_PATH, callback, methods=["GET"]),
            Route(REFRESH_PATH, refresh, methods=["GET"]), Route(LOGOUT_PATH, logout, methods=["POST"])]
