"""GET /api/encounters/{id}/fhir: the encounter's FHIR R4 document Bundle (domain.fhir), as
`application/fhir+json`.

The signed version when there is one, else the current version with the Composition `preliminary`.
The service records the request in the audit trail as an `export` of that version (ids only). Errors
are the API's: 404 for an unknown encounter, 409 for one with no note yet.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medscribe.workspace.app import Services, session_of

FHIR_JSON = "application/fhir+json"


def routes(services: Services) -> list[Route]:
    async def fhir_bundle(request: Request) -> Response:
        bundle = await run_in_threadpool(services.service.export_fhir, session_of(request).actor,
                                         request.path_params["id"])
        return JSONResponse(bundle, media_type=FHIR_JSON)

    return [Route("/api/encounters/{id}/fhir", fhir_bundle, methods=["GET"])]
