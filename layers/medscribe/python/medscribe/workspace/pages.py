"""The server-rendered pages (Jinja2, autoescaped): encounter list, search, encounter view (note with
citations that highlight transcript lines, audio that jumps to a line, versions, sign-off, the signed
version's export, audit trail), edit form, upload (static/upload.js posts the file to the bucket with a
form from POST /api/uploads; the page's CSP lets it connect to that bucket's origin only), admin
audit, and the recording stream with HTTP Range support (local mode; in AWS the audio element plays a
short-lived presigned URL instead).

Forms post to the same service calls as the API, with the session's CSRF token in a hidden field;
the behaviour lives in static/workspace.js (no inline script: the CSP forbids it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from medscribe.domain.clinical_entities import entity_set_from_dict
from medscribe.domain.encounter import EncounterStatus, Kind
from medscribe.domain.uploads import UPLOAD_KINDS
from medscribe.review.page import claim_problems, emr_panel, entities_panel, summary_panel
from medscribe.workspace.api import admin
from medscribe.workspace.app import MAX_FORM_BYTES, Services, content_security_policy, session_of
from medscribe.workspace.ports import BadRequest

CHUNK_BYTES = 1 << 20  # the most one range response carries: the browser asks for the rest
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")

ENVIRONMENT = Environment(loader=PackageLoader("medscribe.workspace", "templates"),
                          autoescape=select_autoescape(default=True, default_for_string=True))


def render(request: Request, template: str, status: int = 200, csp: str | None = None,
           **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    html = ENVIRONMENT.get_template(template).render(session=session, request=request, **context)
    response = HTMLResponse(html, status_code=status)
    if csp:
        response.headers["content-security-policy"] = csp
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


def _query(request: Request, **changes: str | None) -> str:
    values = {k: v for k, v in request.query_params.items() if v}
    values.update({k: v for k, v in changes.items() if v})
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
    return urlencode(values)


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest("the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _one(form: Mapping[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0]


def _lines(raw: str, where: str) -> list[int]:
    parts = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    if not all(part.isdigit() for part in parts):
        raise BadRequest(f"{where}: cited lines are whole numbers separated by commas")
    return [int(part) for part in parts]


def note_from_form(form: Mapping[str, list[str]]) -> dict[str, Any]:
    """The edit form's fields (`s<i>.name`, `s<i>.c<j>.text|lines|remove`, `s<i>.new.text|lines`)
    as a note's sections, in form order; a claim with empty text is dropped like a removed one."""
    sections: list[dict[str, Any]] = []
    i = 0
    while f"s{i}.name" in form:
        name = _one(form, f"s{i}.name")
        items: list[dict[str, Any]] = []
        j = 0
        while f"s{i}.c{j}.text" in form:
            text = _one(form, f"s{i}.c{j}.text").strip()
            if text and not _one(form, f"s{i}.c{j}.remove"):
                items.append({"text": text, "lines": _lines(_one(form, f"s{i}.c{j}.lines"),
                                                            f"{name} item {j + 1}")})
            j += 1
        added = _one(form, f"s{i}.new.text").strip()
        if added:
            items.append({"text": added, "lines": _lines(_one(form, f"s{i}.new.lines"), f"{name} new item")})
        sections.append({"name": name, "items": items})
        i += 1
    return {"sections": sections}


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single `bytes=` range, capped to CHUNK_BYTES; None when unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start = max(0, size - int(last))
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, min(end, start + CHUNK_BYTES - 1)


def _origin(link: str) -> str | None:
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def coded_claims(found: Mapping[str, Any]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Each claim's coded entities (the service's `claim_entities` ids), by (section, item number)."""
    by_id = {entity["id"]: entity for entity in (found.get("entities") or {}).get("entities", [])}
    return {(claim["section"], claim["item"]): [by_id[i] for i in claim["entities"] if i in by_id]
            for claim in found.get("claim_entities") or []}


def routes(services: Services) -> list[Route]:
    async def encounters(request: Request) -> Response:
        status = request.query_params.get("status") or None
        since = request.query_params.get("since") or None
        folder = request.query_params.get("folder") or None
        kind = request.query_params.get("kind") or None
        cursor = request.query_params.get("cursor") or None
        page = await run_in_threadpool(services.service.list_encounters, session_of(request).actor,
                                       status=status, since=since, folder=folder, kind=kind, limit=25, cursor=cursor)
        return render(request, "list.html", page=page, statuses=[s.value for s in EncounterStatus],
                      kinds=[k.value for k in Kind], status_filter=status or "", kind_filter=kind or "",
                      since=since or "", folder=folder or "",
                      next_query=_query(request, cursor=page.next) if page.next else None)

    async def search(request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()
        hits = []
        if query and services.search is not None:
            hits = await run_in_threadpool(services.search.search, query, limit=25)
            await run_in_threadpool(services.service.record, session_of(request).actor, "search", None)
        return render(request, "search.html", query=query, hits=hits, available=services.search is not None)

    async def encounter(request: Request) -> Response:
        actor = session_of(request).actor
        encounter_id = request.path_params["id"]
        found = await run_in_threadpool(services.service.encounter, actor, encounter_id)
        trail = await run_in_threadpool(services.service.audit_for_encounter, actor, encounter_id, limit=100)
        recording = None
        if services.recordings is not None:
            recording = await run_in_threadpool(services.recordings.find, encounter_id)
        media = _origin(recording.link) if recording else None
        note = found.get("note") or {}
        emr = found.get("emr")
        # no claims to put the entities beside (an EMR record): the review page's list of them
        listed = found.get("entities") if not note.get("sections") else None
        return render(request, "encounter.html", csp=content_security_policy(f"'self' {media}") if media else None,
                      encounter_id=encounter_id, found=found, note=note, lines=found.get("lines") or [],
                      known={int(line["n"]) for line in found.get("lines") or []},
                      problems=claim_problems(note), coded=coded_claims(found), recording=recording, trail=trail,
                      emr=Markup(emr_panel(emr)) if emr else None,  # noqa: S704 - values escaped  # nosec B704
                      entities=Markup(entities_panel(entity_set_from_dict(listed)))  # noqa: S704 - escaped  # nosec B704
                      if listed else None,
                      summary=Markup(summary_panel(  # noqa: S704 - values escaped  # nosec B704
                          found["summary"], {int(line["n"]) for line in found.get("lines") or []},
                          with_lines=not found.get("lines"))) if found.get("summary") else None)

    async def edit_form(request: Request) -> Response:
        found = await run_in_threadpool(services.service.encounter, session_of(request).actor,
                                        request.path_params["id"])
        note = found.get("note")
        if not note:
            raise BadRequest("this encounter has no clinical note to edit")
        return render(request, "edit.html", encounter_id=request.path_params["id"], note=note,
                      amending=found.get("signed_version") == note.get("version"), problems=claim_problems(note))

    async def save(request: Request) -> Response:
        form = await _form(request)
        version = _one(form, "version")
        if not version.isdigit():
            raise BadRequest("the form names no note version")
        reason = _one(form, "amend_reason").strip() or None
        await run_in_threadpool(services.service.save_note, session_of(request).actor, request.path_params["id"],
                                base_version=int(version), note=note_from_form(form), amend_reason=reason)
        return RedirectResponse(f"/encounters/{request.path_params['id']}", status_code=303)

    async def sign(request: Request) -> Response:
        form = await _form(request)
        version = _one(form, "version")
        if not version.isdigit():
            raise BadRequest("the form names no note version")
        await run_in_threadpool(services.service.sign, session_of(request).actor, request.path_params["id"],
                                version=int(version))
        return RedirectResponse(f"/encounters/{request.path_params['id']}", status_code=303)

    async def erase(request: Request) -> Response:
        await run_in_threadpool(services.service.erase, admin(session_of(request).actor), request.path_params["id"])
        return RedirectResponse("/", status_code=303)

    async def audit(request: Request) -> Response:
        actor_id = request.query_params.get("actor") or None
        since = request.query_params.get("since") or None
        page = await run_in_threadpool(services.service.audit, admin(session_of(request).actor), actor_id=actor_id,
                                       since=since, limit=100, cursor=request.query_params.get("cursor") or None)
        return render(request, "audit.html", page=page, actor_filter=actor_id or "", since=since or "",
                      csv_query=_query(request, cursor=None),
                      next_query=_query(request, cursor=page.next) if page.next else None)

    async def upload(request: Request) -> Response:
        uploads = services.uploads  # NotFound (a 404 page) where the app has none
        origin = await run_in_threadpool(lambda: uploads.origin)
        return render(request, "upload.html", csp=content_security_policy(connect=f"'self' {origin}"),
                      limits={kind.value: uploads.limit(kind) for kind in UPLOAD_KINDS.values()},
                      extensions=uploads.extensions)

    async def recording(request: Request) -> Response:
        recordings = services.recordings
        found = await run_in_threadpool(recordings.find, request.path_params["id"]) if recordings else None
        if recordings is None or found is None:
            return error_page(request, 404, "this encounter has no recording")
        if "range" not in request.headers:  # a plain download: the whole recording
            body = await run_in_threadpool(recordings.read, found.encounter_id, 0, found.size)
            return Response(body, media_type=found.content_type, headers={"accept-ranges": "bytes"})
        span = byte_range(request.headers["range"], found.size)
        if span is None:
            return Response(status_code=416, headers={"content-range": f"bytes */{found.size}"})
        start, end = span
        body = await run_in_threadpool(recordings.read, found.encounter_id, start, end - start + 1)
        end = start + len(body) - 1
        headers = {"accept-ranges": "bytes", "content-range": f"bytes {start}-{end}/{found.size}"}
        return Response(body, status_code=206, media_type=found.content_type, headers=headers)

    return [
        Route("/", encounters, methods=["GET"]),
        Route("/search", search, methods=["GET"]),
        Route("/upload", upload, methods=["GET"]),
        Route("/audit", audit, methods=["GET"]),
        Route("/encounters/{id}", encounter, methods=["GET"]),
        Route("/encounters/{id}/edit", edit_form, methods=["GET"]),
        Route("/encounters/{id}/edit", save, methods=["POST"]),
        Route("/encounters/{id}/sign", sign, methods=["POST"]),
        Route("/encounters/{id}/erase", erase, methods=["POST"]),
        Route("/recordings/{id}", recording, methods=["GET"]),
    ]
