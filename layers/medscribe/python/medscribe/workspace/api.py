"""The JSON API under /api: what the pages do, for integrators (README "The clinician workspace").

Writes take JSON bodies: PUT /api/encounters/{id}/note `{"version": <the version edited>, "note":
{"sections": [...]}, "amend_reason": "..."}`, POST /api/encounters/{id}/sign `{"version": n}`.
Lists are pages: `{"items": [...], "next": <cursor or null>}`; pass `cursor` for the next one.
A search is recorded in the audit trail (`search`, no query text), and so is playing a recording
(`play`, POST /api/encounters/{id}/play, which the encounter page sends when its audio starts).

POST /api/uploads `{"filename": ..., "kind": "audio"|"text", "folder": ..., "size": <bytes>}` answers a
presigned POST `{"url", "fields", "key"}` (medscribe.workspace.uploads): the browser posts the file to
the input bucket itself. Handing out the form is audited as `upload` (no file name, no key: the
encounter does not exist yet). GET /api/encounters/{id}/export?format=json|markdown answers the
signed version (409 when none is), audited as `export` with its version.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medscribe.workspace.app import Services, session_of
from medscribe.workspace.export import FORMATS, signed_markdown
from medscribe.workspace.ports import Actor, BadRequest, Forbidden, Page

MAX_LIMIT = 200


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _text(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


def _page(page: Page) -> JSONResponse:
    return JSONResponse({"items": page.items, "next": page.next})


def admin(actor: Actor) -> Actor:
    if not actor.is_admin:
        raise Forbidden("this needs the admin role")
    return actor


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _version(body: dict[str, Any]) -> int:
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise BadRequest("`version` (the note version this request acts on) must be a whole number")
    return version


def routes(services: Services) -> list[Route]:
    def actor(request: Request) -> Actor:
        return session_of(request).actor

    async def list_encounters(request: Request) -> Response:
        page = await run_in_threadpool(
            services.service.list_encounters, actor(request), status=_text(request, "status"),
            since=_text(request, "since"), folder=_text(request, "folder"), kind=_text(request, "kind"),
            limit=_limit(request, 50),
            cursor=_text(request, "cursor"))
        return _page(page)

    async def encounter(request: Request) -> Response:
        found = await run_in_threadpool(services.service.encounter, actor(request), request.path_params["id"])
        return JSONResponse(found)

    async def save_note(request: Request) -> Response:
        body = await _body(request)
        note = body.get("note")
        if not isinstance(note, dict):
            raise BadRequest("`note` must be an object with `sections`")
        reason = body.get("amend_reason")
        saved = await run_in_threadpool(
            services.service.save_note, actor(request), request.path_params["id"], base_version=_version(body),
            note=note, amend_reason=str(reason) if reason is not None else None)
        return JSONResponse(saved)

    async def sign(request: Request) -> Response:
        body = await _body(request)
        signed = await run_in_threadpool(services.service.sign, actor(request), request.path_params["id"],
                                         version=_version(body))
        return JSONResponse(signed)

    async def encounter_audit(request: Request) -> Response:
        page = await run_in_threadpool(services.service.audit_for_encounter, actor(request),
                                       request.path_params["id"], limit=_limit(request, 100),
                                       cursor=_text(request, "cursor"))
        return _page(page)

    async def audit(request: Request) -> Response:
        page = await run_in_threadpool(services.service.audit, admin(actor(request)),
                                       actor_id=_text(request, "actor"), since=_text(request, "since"),
                                       limit=_limit(request, 100), cursor=_text(request, "cursor"))
        return _page(page)

    async def audit_csv(request: Request) -> Response:
        text = await run_in_threadpool(services.service.audit_csv, admin(actor(request)),
                                       actor_id=_text(request, "actor"), since=_text(request, "since"))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="audit.csv"'})

    async def search(request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()
        if not query:
            raise BadRequest("`q` (the text to search for) is required")
        index = services.search
        if index is None:
            return JSONResponse({"error": "no search index is configured"}, status_code=503)
        hits = await run_in_threadpool(index.search, query, status=_text(request, "status"),
                                       since=_text(request, "since"), limit=_limit(request, 20))
        await run_in_threadpool(services.service.record, actor(request), "search", None)
        return JSONResponse({"items": [{"encounter_id": h.encounter_id, "status": h.status,
                                        "updated_at": h.updated_at, "score": h.score, "snippet": h.snippet}
                                       for h in hits], "next": None})

    async def erase(request: Request) -> Response:
        report = await run_in_threadpool(services.service.erase, admin(actor(request)), request.path_params["id"])
        return JSONResponse(report)

    async def play(request: Request) -> Response:
        await run_in_threadpool(services.service.record, actor(request), "play", request.path_params["id"])
        return Response(status_code=204)

    async def upload(request: Request) -> Response:
        body = await _body(request)
        kind, filename, folder, size = (body.get(name) for name in ("kind", "filename", "folder", "size"))
        if not isinstance(kind, str) or not isinstance(filename, str):
            raise BadRequest("`kind` and `filename` are required strings")
        if folder is not None and not isinstance(folder, str):
            raise BadRequest("`folder` must be a string")
        form = await run_in_threadpool(services.uploads.form, kind, filename, folder, size)
        await run_in_threadpool(services.service.record, actor(request), "upload", None)
        return JSONResponse({"url": form.url, "fields": form.fields, "key": form.key})

    async def export(request: Request) -> Response:
        wanted = request.query_params.get("format") or "json"
        if wanted not in FORMATS:
            raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
        signed = await run_in_threadpool(services.service.export, actor(request), request.path_params["id"])
        if wanted == "json":
            return JSONResponse(signed)
        name = f"{signed['encounter_id']}-v{int(signed['version']['version'])}.md"
        return Response(signed_markdown(signed), media_type="text/markdown; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    async def session(request: Request) -> Response:
        current = session_of(request)
        return JSONResponse({"actor_id": current.actor.actor_id, "role": current.actor.role,
                             "csrf": current.csrf})

    return [
        Route("/api/session", session, methods=["GET"]),
        Route("/api/encounters", list_encounters, methods=["GET"]),
        Route("/api/encounters/{id}", encounter, methods=["GET"]),
        Route("/api/encounters/{id}", erase, methods=["DELETE"]),
        Route("/api/encounters/{id}/note", save_note, methods=["PUT"]),
        Route("/api/encounters/{id}/sign", sign, methods=["POST"]),
        Route("/api/encounters/{id}/audit", encounter_audit, methods=["GET"]),
        Route("/api/encounters/{id}/play", play, methods=["POST"]),
        Route("/api/encounters/{id}/export", export, methods=["GET"]),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/audit", audit, methods=["GET"]),
        Route("/api/audit.csv", audit_csv, methods=["GET"]),
        Route("/api/search", search, methods=["GET"]),
    ]

