"""FHIR export end to end on moto: every sample encounter documented by the document handler (offline
engines) exports a bundle that validates (fhir.resources R4B and the document rules); the signed version
is what is exported; the coded entities the entity stage stores become resources with their evidence
lines; `GET /api/encounters/{id}/fhir` (auth, audit, content type) and `medscribe fhir` (--out, unknown id,
and --deliver to a FHIR server on 127.0.0.1: SigV4-signed, typed errors)."""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import boto3
import pytest
from starlette.testclient import TestClient

from medscribe.adapters.fhir_server import FhirServer
from medscribe.domain.dialogue import dialogue_lines
from medscribe.services.workspace import Actor, Conflict, NotFound
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import LocalAuth
from medscribe_local import cli, cli_fhir
from tests.fhir_checks import evidence_lines, resources, sample_entities, validate
from tests.handlers.conftest import Context
from tests.handlers.test_document import FAREEZ, ROOT, fareez_lines, ready, text_encounter, transcribed_encounter
from tests.handlers.test_document import load_handler as load_handler
from tests.handlers.test_workspace_service import ALICE, BOB, documented, edited, service
from tests.handlers.test_workspace_service import service as workspace_of
from tests.local_server import serve

__all__ = ["documented", "load_handler"]

SAMPLES = ROOT / "sample-data"
AUDIO_SAMPLES = sorted(p.stem for p in (SAMPLES / "audio" / "fareez").glob("*.mp3"))
TEXT_SAMPLES = sorted(p.name for p in (SAMPLES / "text").glob("*.txt"))


def sample_audio_lines(name: str) -> list[dict[str, Any]]:
    """The sample recording's dialogue (the same OSCE transcript as its ground truth, with speakers) as
    the transcript stage stores its lines: the speech engine itself is the e2e tier's."""
    lines = dialogue_lines((FAREEZ / f"{name}.txt").read_text(encoding="utf-8"))
    return [{"n": x.n, "speaker": "spk_0" if x.speaker == "clinician" else "spk_1", "start": x.start, "end": x.end,
             "text": x.text, "confidence": 0.9} for x in lines]


def put_entities(encounter_id: str, body: bytes | None = None) -> None:
    boto3.client("s3").put_object(Bucket="artifacts", Key=f"entities/{encounter_id}.json",
                                  Body=body if body is not None else json.dumps(sample_entities(encounter_id)).encode())


def assert_summary_reference(bundle: dict[str, Any], summary: dict[str, Any], language: str) -> None:
    """The after-visit summary is a DocumentReference in the patient's language whose embedded JSON is the
    stored summary, with one evidence extension per sentence carrying that sentence's cited lines."""
    [reference] = [r for r in resources(bundle, "DocumentReference") if r["description"] == "After-visit summary"]
    attachment = reference["content"][0]["attachment"]
    assert attachment["language"] == language == summary["language"]
    assert json.loads(base64.b64decode(attachment["data"])) == summary
    sentences = [s for section in summary["sections"] for s in section["sentences"]]
    assert sentences
    assert evidence_lines(reference["extension"]) == [s["lines"] for s in sentences]
    assert all(s["lines"] for s in sentences)


def composition(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    return resource


def test_the_samples_are_all_exported() -> None:
    assert len(AUDIO_SAMPLES) == 3
    assert len(TEXT_SAMPLES) == 8


@pytest.mark.parametrize("name", AUDIO_SAMPLES)
def test_every_sample_recording_exports_a_valid_bundle(load_handler, world, name: str) -> None:  # type: ignore[no-untyped-def]
    lines = sample_audio_lines(name)
    encounter_id = transcribed_encounter(world, lines, key=f"audio/fareez/{name}.mp3")
    load_handler("document").handler(ready(encounter_id), Context())
    workspace = workspace_of(world)
    bundle = workspace.export_fhir(ALICE, encounter_id)
    validate(bundle)
    doc = composition(bundle)
    note = workspace.encounter(ALICE, encounter_id)["note"]
    assert doc["status"] == "preliminary"
    # the note's sections, then the after-visit summary, then the entities
    assert [s["title"] for s in doc["section"]][:-2] == [s["name"] for s in note["sections"]]
    assert doc["section"][-2]["title"] == "After-visit summary"
    cited = [item["lines"] for s in note["sections"] for item in s["items"]]
    assert [lines for s in doc["section"][:-2] for lines in evidence_lines(s.get("extension", []))] == cited
    assert "entities/" in doc["section"][-1]["text"]["div"]  # no entity stage ran: said so
    assert_summary_reference(bundle, workspace.encounter(ALICE, encounter_id)["summary"], "en")
    recording = next(r for r in resources(bundle, "DocumentReference") if r["description"] == "Recording")
    assert recording["content"][0]["attachment"]["url"] == f"s3://{world['bucket']}/audio/fareez/{name}.mp3"
    trail = workspace.audit_for_encounter(ALICE, encounter_id).items
    assert ("export", "local-alice", 0) in [(e["action"], e["actor_id"], e["version"]) for e in trail]


@pytest.mark.parametrize("name", TEXT_SAMPLES)
def test_every_sample_text_note_exports_a_valid_bundle(load_handler, world, name: str) -> None:  # type: ignore[no-untyped-def]
    body = (SAMPLES / "text" / name).read_bytes()
    encounter_id = text_encounter(world, f"text/{name}", body)
    load_handler("document").handler(ready(encounter_id), Context())
    bundle = service(world).export_fhir(ALICE, encounter_id)
    validate(bundle)
    doc = composition(bundle)
    assert len(doc["section"]) >= 3  # the note's or record's sections, the summary, then the entities section
    # no recording for a text upload: the uploaded note and the after-visit summary
    [transcript] = [r for r in resources(bundle, "DocumentReference") if r["description"] != "After-visit summary"]
    assert transcript["content"][0]["attachment"]["url"] == f"s3://{world['bucket']}/text/{name}"
    assert_summary_reference(bundle, service(world).encounter(ALICE, encounter_id)["summary"], name[:2])


def test_the_signed_edited_version_is_exported_as_final_even_after_a_later_draft(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    workspace.save_note(ALICE, documented, base_version=0,
                        note=edited(view, "Chest pain <since> Tuesday & worse", [1, 2]))
    workspace.sign(BOB, documented, version=1)
    after = workspace.encounter(ALICE, documented)
    workspace.save_note(ALICE, documented, base_version=1, amend_reason="typo",
                        note=edited(after, "An unsigned amendment", [3]))
    bundle = workspace.export_fhir(ALICE, documented)
    validate(bundle)
    doc = composition(bundle)
    assert doc["status"] == "final"
    assert "version 1" in doc["title"]
    first = doc["section"][0]
    assert "Chest pain &lt;since&gt; Tuesday &amp; worse [lines 1, 2]" in first["text"]["div"]
    assert evidence_lines(first["extension"])[-1] == [1, 2]
    assert "An unsigned amendment" not in json.dumps(bundle)
    [practitioner] = resources(bundle, "Practitioner")
    assert practitioner["identifier"][0]["value"] == "local-bob"  # the signer
    assert doc["attester"][0]["party"] == {"reference": f"urn:uuid:{practitioner['id']}"}
    again = workspace.export_fhir(ALICE, documented)
    assert json.dumps(again) == json.dumps(bundle)
    trail = workspace.audit_for_encounter(ALICE, documented).items
    assert [e["version"] for e in trail if e["action"] == "export"] == [1, 1]


def test_stored_entities_become_resources_with_their_evidence_lines(world, documented) -> None:  # type: ignore[no-untyped-def]
    put_entities(documented)
    bundle = service(world).export_fhir(ALICE, documented)
    validate(bundle)
    conditions = {c["code"]["text"]: c for c in resources(bundle, "Condition")}
    assert conditions["chest pain"]["code"]["coding"][0]["code"] == "R07.9"
    assert evidence_lines(conditions["chest pain"]["extension"]) == [[2, 3]]
    assert conditions["fever"]["verificationStatus"]["coding"][0]["code"] == "refuted"
    medications = {m["medicationCodeableConcept"]["text"]: m for m in resources(bundle, "MedicationStatement")}
    assert medications["aspirin"]["medicationCodeableConcept"]["coding"][0]["code"] == "1191"
    assert evidence_lines(medications["aspirin"]["extension"]) == [[4]]
    assert medications["ibuprofen"]["status"] == "not-taken"


def test_unreadable_entities_are_reported_not_fatal(world, documented) -> None:  # type: ignore[no-untyped-def]
    put_entities(documented, b"{not json")
    bundle = service(world).export_fhir(ALICE, documented)
    validate(bundle)
    assert resources(bundle, "Condition") == []
    assert "could not be read" in composition(bundle)["section"][-1]["text"]["div"]
    put_entities(documented, b'{"entities": []}')  # JSON, but not an entity set
    assert "could not be read (KeyError)" in composition(service(world).export_fhir(ALICE, documented))[
        "section"][-1]["text"]["div"]


def test_unknown_or_undocumented_encounters_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    with pytest.raises(NotFound):
        workspace.export_fhir(ALICE, "enc-" + "0" * 32)
    with pytest.raises(NotFound):
        workspace.export_fhir(ALICE, "audio/zebulon.mp3")
    waiting = transcribed_encounter(world, fareez_lines(count=5))
    with pytest.raises(Conflict, match="no note to export"):
        workspace.export_fhir(ALICE, waiting)


# --- the API --------------------------------------------------------------------------------------

def test_the_api_needs_a_session_audits_the_export_and_answers_fhir_json(world, documented) -> None:  # type: ignore[no-untyped-def]
    auth = LocalAuth(Actor("local-tester", "admin"), session_seconds=3600)
    client = TestClient(create_app(lambda: service(world), auth), base_url="http://testserver", follow_redirects=False)
    path = f"/api/encounters/{documented}/fhir"
    assert client.get(path).status_code == 401
    assert client.get(f"/login?token={auth.login_token}").status_code == 303
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["cache-control"] == "no-store"
    validate(response.json())
    trail = client.get(f"/api/encounters/{documented}/audit").json()["items"]
    assert [(e["action"], e["actor_id"], e["version"]) for e in trail if e["action"] == "export"] == [
        ("export", "local-tester", 0)]
    missing = client.get(f"/api/encounters/enc-{'0' * 32}/fhir")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no such encounter"


# --- the CLI --------------------------------------------------------------------------------------

@pytest.fixture
def local_runtime(world, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """`medscribe fhir` against moto: the running runtime's resources are the test's."""
    names = SimpleNamespace(function_settings=lambda pipeline: workspace_settings(world, pipeline))
    monkeypatch.setattr(cli_fhir, "_connect", lambda: SimpleNamespace(resources=names))


def workspace_settings(world: dict[str, Any], pipeline: Any) -> Any:
    from medscribe.settings import FunctionSettings

    return FunctionSettings(table_name=world["table"], input_bucket=world["bucket"], artifacts_bucket="artifacts",
                            topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                            kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k", pipeline=pipeline)


def test_cli_writes_a_valid_bundle_and_refuses_an_unknown_id(world, documented, local_runtime, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bundle.json"
    assert cli.main(["fhir", documented, "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    validate(written)
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli.main(["fhir", documented]) == 0
    assert json.loads(capsys.readouterr().out) == written
    assert cli.main(["fhir", "enc-" + "0" * 32]) == 1
    assert "no encounter with id 'enc-000" in capsys.readouterr().err
    trail = service(world).audit_for_encounter(ALICE, documented).items
    assert len([e for e in trail if e["action"] == "export"]) == 2


# --- optional delivery to a FHIR server -----------------------------------------------------------

class FhirServerStub(BaseHTTPRequestHandler):
    """A FHIR server on 127.0.0.1 that keeps what it receives and answers with `status`."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    status: ClassVar[int] = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({**self.headers, "path": self.path}, body))
        self.send_response(self.status)
        if self.status == 201:
            self.send_header("Location", f"{self.path}/b-1/_history/1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_cli_delivers_a_signed_request_to_a_fhir_server_only_when_asked(world, documented, local_runtime,  # type: ignore[no-untyped-def]
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    FhirServerStub.received, FhirServerStub.status = [], 201
    with serve(FhirServerStub) as url:
        assert cli.main(["fhir", documented]) == 0
        assert FhirServerStub.received == []  # off unless --deliver is given
        capsys.readouterr()
        assert cli.main(["fhir", documented, "--deliver", f"{url}/datastore/d1/r4/"]) == 0
        location = "/datastore/d1/r4/Bundle/b-1/_history/1"
        assert capsys.readouterr().out.strip() == f"delivered to {url}/datastore/d1/r4: {location}"
        [(headers, body)] = FhirServerStub.received
        bundle = json.loads(body)
        validate(bundle)
        assert headers["path"] == "/datastore/d1/r4/Bundle"
        assert headers["Content-Type"] == "application/fhir+json"
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
        assert "/us-east-1/healthlake/aws4_request" in headers["Authorization"]
        assert headers["If-None-Exist"] == f"identifier=urn:ietf:rfc:3986|{bundle['identifier']['value']}"
        FhirServerStub.status = 503
        assert cli.main(["fhir", documented, "--deliver", url]) == 1
        assert "not delivered: the FHIR server answered 503; try again" in capsys.readouterr().err
        FhirServerStub.status = 400
        assert cli.main(["fhir", documented, "--deliver", url]) == 1
        assert "not delivered: the FHIR server refused the bundle (400)" in capsys.readouterr().err
    assert cli.main(["fhir", documented, "--deliver", "http://fhir.example.org/r4"]) == 2
    assert "must be https://" in capsys.readouterr().err


def test_a_healthlake_endpoint_is_signed_for_its_own_region(world) -> None:  # type: ignore[no-untyped-def]
    server = FhirServer("https://healthlake.eu-west-2.amazonaws.com/datastore/abc/r4/")
    assert server.base_url == "https://healthlake.eu-west-2.amazonaws.com/datastore/abc/r4"
    headers = server._signed_headers(f"{server.base_url}/Bundle", b"{}", {"Content-Type": "application/fhir+json"})
    assert "/eu-west-2/healthlake/aws4_request" in headers["Authorization"]
    with pytest.raises(ValueError, match="https"):
        FhirServer("ftp://127.0.0.1/r4")
