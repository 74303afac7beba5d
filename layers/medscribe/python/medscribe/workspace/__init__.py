"""The clinician workspace: one ASGI web application (JSON API under /api and server-rendered pages)
over the workspace service, run locally by `medscribe serve` and in AWS behind API Gateway (Mangum).
Build it with `medscribe.workspace.app.create_app`."""
