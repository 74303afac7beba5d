"""`medscribe serve [--host 127.0.0.1] [--port N]`: the clinician workspace on this machine.

Runs the workspace web app (medscribe.workspace) against the running local runtime, starting one
if none runs, and prints the URL with a one-time login token (as notebook servers do): opening it
signs the browser in as `local-<os user>`, an admin. The server listens on the loopback interface
only unless `--allow-remote` is given with another --host (the local session cookie travels over
plain HTTP, so anyone on that network could take it). Recordings are streamed from the emulated
input bucket; uploads post from the browser to the emulator's S3 (on loopback: the upload page works in
a browser on this machine); search uses the local SQLite index. uvicorn serves the app here; in AWS the same app
runs in a Lambda function behind API Gateway (Mangum), with Cognito sign-in instead of the token.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from medscribe.settings import FunctionSettings
from medscribe.workspace.ports import WorkspacePort
from medscribe_local.cli import CliError, _local_index, _say, arg, command

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def login_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/login?token={token}"


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port (0: any free port)",
                       code=1) from exc
    return sock


def _workspace_service(settings: FunctionSettings) -> Callable[[], WorkspacePort]:
    """The workspace service on the runtime's stores (services.wiring.workspace_service)."""
    from medscribe.services.wiring import workspace_service

    def build() -> WorkspacePort:
        return workspace_service(settings)

    return build


@command(
    "serve", help="open the clinician workspace in a browser (against the local runtime)",
    description="Starts the workspace web app on 127.0.0.1 against the running local runtime (starting one\n"
    "if none runs) and prints a URL with a one-time login token: open it to sign in as local-<your user>\n"
    "(role admin). Lists, search, the encounter view with audio, editing, sign-off, export, uploads, the\n"
    "audit trail and erasure; the JSON API under /api. Ctrl-C stops the web app (the runtime keeps running).",
    arguments=[
        arg("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)"),
        arg("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)"),
        arg("--allow-remote", action="store_true",
            help="allow a --host other than loopback (the session cookie then crosses the network unencrypted)"),
        arg("--session-hours", type=float, default=8.0, help="how long a browser stays signed in (default 8)"),
    ],
)
def serve(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_remote:
        raise CliError(f"--host {args.host} is not a loopback address: the workspace serves PHI over plain HTTP; "
                       "pass --allow-remote as well if that network is trusted")
    if not 0 < args.session_hours <= 24 * 7:
        raise CliError("--session-hours must be more than 0 and at most a week")
    import uvicorn

    from medscribe.services.wiring import workspace_recordings, workspace_uploads
    from medscribe.settings import load_settings
    from medscribe.workspace.app import create_app
    from medscribe.workspace.auth import LocalAuth
    from medscribe_local.cli_local import _start_or_reuse
    from medscribe_local.environment import connect, route_transcribe
    from medscribe_local.state import StatePaths

    paths = StatePaths.resolve()
    info, started = _start_or_reuse(paths)
    if started:
        _say(f"started a local runtime: {info.endpoint} (stop it with `medscribe local down`)")
    connect(info.endpoint)
    if info.transcribe_endpoint:  # erasure deletes the encounter's jobs there
        route_transcribe(info.transcribe_endpoint)
    search_db = StatePaths(Path(info.state_dir)).search_db
    settings = info.resources.function_settings(load_settings(), search_url=f"sqlite:///{search_db}")
    auth = LocalAuth(session_seconds=int(args.session_hours * 3600))
    app = create_app(
        _workspace_service(settings), auth, search_factory=lambda: _local_index(search_db, info),
        recordings_factory=lambda: workspace_recordings(settings, presigned=False),
        uploads_factory=lambda: workspace_uploads(settings),
    )
    sock = _listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    _say(f"clinician workspace for {auth.actor.actor_id} (admin), against the runtime at {info.endpoint}")
    _say("open this URL in your browser (it works once; restart `medscribe serve` for a new one):")
    _say(f"    {login_url(args.host, port, auth.login_token)}")
    _say("press Ctrl-C to stop the workspace (the runtime keeps running)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])  # no access log: paths carry search words and the login token
    return 0
