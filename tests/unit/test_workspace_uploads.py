"""Uploads and the signed note's export in the workspace app: the key built from what the user typed
(directories, control characters, extensions, folders), the presigned POST's policy decoded and every
condition checked (moto and the local emulator enforce none of them: S3 does), POST /api/uploads and the
upload page (401, CSRF, 400s, the audit entry without the file name, the CSP naming the bucket's exact
origin), and GET /api/encounters/{id}/export (409 unsigned, JSON and Markdown, audited with the version)."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from starlette.testclient import TestClient

from medscribe.adapters.objects import MAX_PRESIGN_SECONDS, ObjectStore
from medscribe.domain.encounter import Kind
from medscribe.domain.uploads import InvalidUpload, checked_size, upload_target
from medscribe.domain.validation import AUDIO_FORMATS, TEXT_EXTENSIONS
from medscribe.settings import UPLOAD_EXTENSIONS, PipelineSettings
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import LocalAuth
from medscribe.workspace.export import inline, signed_markdown
from medscribe.workspace.ports import Actor, BadRequest
from medscribe.workspace.uploads import MIB, UPLOAD_FORM_SECONDS, S3Uploads
from tests.unit.test_workspace_app import BASE, Clock, login, write
from tests.workspace_fakes import ENC, FakeWorkspace

BUCKET = "medscribe-dev-input"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
ALL = frozenset(UPLOAD_EXTENSIONS)


def objects(endpoint: str | None = None, region: str = "eu-west-1") -> ObjectStore:
    """An S3 client as aws_clients makes it (SigV4, virtual-hosted), with fake credentials: signing is local."""
    return ObjectStore(boto3.client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret", config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"})))


def uploads(settings: PipelineSettings | None = None, endpoint: str | None = None) -> S3Uploads:
    return S3Uploads(objects(endpoint), BUCKET, kms_key_id=KEY_ARN, settings=settings or PipelineSettings())


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(fields["policy"])))


# --- the key -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "filename", "folder", "key"), [
    ("audio", "visit 7.mp3", None, "audio/visit 7.mp3"),
    ("audio", "../../etc/visit.MP3", "clinic-a", "audio/clinic-a/visit.MP3"),
    ("audio", "C:\\Users\\dr\\Desktop\\visit.wav", "/clinic-a//2026/", "audio/clinic-a/2026/visit.wav"),
    ("text", "note\n\x00\u202e.txt", " clinic-b ", "text/clinic-b/note.txt"),
    ("text", "  내원 기록.md  ", "서울", "text/서울/내원 기록.md"),
])
def test_the_key_keeps_the_users_name_without_directories_or_invisible_characters(
        kind: str, filename: str, folder: str | None, key: str) -> None:
    target = upload_target(kind, filename, folder, ALL)
    assert target.key == key
    assert target.kind is Kind(kind)


@pytest.mark.parametrize(("kind", "filename", "folder", "message"), [
    ("ground-truth", "visit.txt", None, "kind must be one of audio, text"),
    ("audio", "visit.txt", None, "a file of kind audio must end in one of"),
    ("text", "visit.mp3", None, "a file of kind text must end in one of"),
    ("audio", "visit", None, "must end in one of"),
    ("audio", ".mp3", None, "must end in one of"),
    ("audio", "../..", None, "the file name is empty"),
    ("audio", "folder/", None, "the file name is empty"),
    ("audio", "\x00\x1f", None, "the file name is empty"),
    ("audio", "x" * 300 + ".mp3", None, "longer than 255 bytes"),
    ("audio", "visit.mp3", "clinic/../../other", "may not contain '.' or '..'"),
    ("audio", "visit.mp3", "a/./b", "may not contain '.' or '..'"),
])
def test_bad_uploads_are_refused_without_repeating_the_name(kind: str, filename: str, folder: str | None,
                                                          message: str) -> None:
    with pytest.raises(InvalidUpload, match=re.escape(message)) as refused:
        upload_target(kind, filename, folder, ALL)
    assert "visit" not in str(refused.value)


def test_only_extensions_the_settings_allow_and_the_pipeline_takes_are_accepted() -> None:
    assert set(UPLOAD_EXTENSIONS) == set(AUDIO_FORMATS) | TEXT_EXTENSIONS  # the settings offer what ingest takes
    with pytest.raises(InvalidUpload, match="mp3, wav"):
        upload_target("audio", "visit.flac", None, frozenset({"mp3", "wav", "txt"}))
    with pytest.raises(InvalidUpload, match="none allowed"):
        upload_target("text", "note.md", None, frozenset({"mp3"}))
    with pytest.raises(ValueError, match="workspace_upload_extensions"):
        PipelineSettings(workspace_upload_extensions=("exe",))  # type: ignore[arg-type]


def test_the_content_type_comes_from_the_extension() -> None:
    assert upload_target("audio", "a.M4A", None, ALL).content_type == "audio/mp4"
    assert upload_target("text", "a.md", None, ALL).content_type == "text/markdown; charset=utf-8"
    assert upload_target("text", "a.txt", None, ALL).content_type_prefix == "text/"


@pytest.mark.parametrize(("size", "message"), [
    (0, "the file is empty"), (-1, "the file is empty"), (True, "whole number"), ("12", "whole number"),
    (1.5, "whole number"), (101, "larger than the upload limit (100 bytes)"),
])
def test_a_bad_or_oversized_size_is_refused(size: Any, message: str) -> None:
    with pytest.raises(InvalidUpload, match=re.escape(message)):
        checked_size(size, 100)
    assert checked_size(None, 100) is None
    assert checked_size(100, 100) == 100


# --- the presigned POST's policy ----------------------------------------------------------------------

def test_the_policy_pins_the_key_size_type_and_kms_key_and_covers_every_field() -> None:
    before = time.time()
    form = uploads(PipelineSettings(workspace_upload_max_mb=3)).form("audio", "../visit 7.mp3", "clinic-a", 1000)
    assert form.key == "audio/clinic-a/visit 7.mp3"
    assert form.url == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/"  # the bucket's regional endpoint
    policy = policy_of(form.fields)
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + UPLOAD_FORM_SECONDS - 5 <= expires <= time.time() + UPLOAD_FORM_SECONDS
    assert UPLOAD_FORM_SECONDS <= MAX_PRESIGN_SECONDS
    conditions = policy["conditions"]
    exact = {name: value for c in conditions if isinstance(c, dict) for name, value in c.items()}
    assert exact["bucket"] == BUCKET
    assert exact["key"] == form.key  # exactly this key: no starts-with, no ${filename}
    assert exact["x-amz-server-side-encryption"] == "aws:kms"
    assert exact["x-amz-server-side-encryption-aws-kms-key-id"] == KEY_ARN
    assert exact["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert exact["x-amz-credential"].endswith("/eu-west-1/s3/aws4_request")
    ranges = [c for c in conditions if isinstance(c, list) and c[0] == "content-length-range"]
    assert ranges == [["content-length-range", 1, 3 * MIB]]
    starts = [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    assert starts == [["starts-with", "$Content-Type", "audio/"]]
    assert form.fields["Content-Type"] == "audio/mpeg"
    # S3 refuses a form field its policy does not name: every field the browser sends is named
    named = {name.lower() for name in exact} | {c[1].lstrip("$").lower() for c in starts}
    unsigned = {"policy", "x-amz-signature"}
    assert {name.lower() for name in form.fields} - unsigned <= named
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with" and c[1] == "$key"]


def test_a_text_form_is_held_to_the_text_limit_and_a_text_type() -> None:
    settings = PipelineSettings(text_max_bytes=4096)
    form = uploads(settings).form("text", "note.txt", None, None)
    conditions = policy_of(form.fields)["conditions"]
    assert ["content-length-range", 1, 4096] in conditions
    assert ["starts-with", "$Content-Type", "text/"] in conditions
    assert form.fields["Content-Type"] == "text/plain; charset=utf-8"
    with pytest.raises(BadRequest, match="larger than the upload limit"):
        uploads(settings).form("text", "note.txt", None, 4097)


def test_presigned_post_refuses_what_sigv4_or_the_prefix_does_not_allow() -> None:
    store = objects()
    with pytest.raises(ValueError, match="SigV4"):
        store.presigned_post(BUCKET, "audio/a.mp3", max_bytes=1, content_type="audio/mpeg",
                             content_type_prefix="audio/", expires_seconds=MAX_PRESIGN_SECONDS + 1)
    with pytest.raises(ValueError, match="prefix"):
        store.presigned_post(BUCKET, "audio/a.mp3", max_bytes=1, content_type="text/plain",
                             content_type_prefix="audio/", expires_seconds=60)


def test_the_origin_is_where_the_forms_post() -> None:
    assert uploads().origin == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com"
    local = uploads(endpoint="http://127.0.0.1:45123")
    assert local.origin == "http://127.0.0.1:45123"
    assert local.form("audio", "a.mp3", None, 10).url == f"http://127.0.0.1:45123/{BUCKET}"


# --- the routes -------------------------------------------------------------------------------------

@pytest.fixture
def service() -> FakeWorkspace:
    return FakeWorkspace()


@pytest.fixture
def client(service: FakeWorkspace) -> tuple[TestClient, LocalAuth]:
    auth = LocalAuth(Actor("local-tester", "admin"), session_seconds=3600, clock=Clock())
    app = create_app(lambda: service, auth,
                     uploads_factory=lambda: uploads(PipelineSettings(workspace_upload_max_mb=1)))
    return TestClient(app, base_url=BASE, follow_redirects=False), auth


@pytest.fixture
def signed_in(client: tuple[TestClient, LocalAuth]) -> tuple[TestClient, str]:
    return client[0], login(*client)


def upload_body(**changes: Any) -> dict[str, Any]:
    return {"filename": "Zebulon visit.mp3", "kind": "audio", "folder": "clinic-a", "size": 2048, **changes}


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/uploads"), ("GET", "/upload"), ("GET", f"/api/encounters/{ENC}/export"),
    ("GET", "/static/upload.js"),
])
def test_without_a_session_uploads_and_exports_are_401(client: tuple[TestClient, LocalAuth],
                                                      service: FakeWorkspace, method: str, path: str) -> None:
    response = client[0].request(method, path, json=upload_body() if method == "POST" else None)
    assert response.status_code == 401
    assert service.audit_log == []


def test_an_upload_form_needs_the_csrf_token_and_the_same_origin(signed_in: tuple[TestClient, str],
                                                                 service: FakeWorkspace) -> None:
    client, csrf = signed_in
    assert write(client, "POST", "/api/uploads", None, upload_body()).status_code == 403
    assert write(client, "POST", "/api/uploads", "wrong", upload_body()).status_code == 403
    elsewhere = write(client, "POST", "/api/uploads", csrf, upload_body(), origin="https://elsewhere.example")
    assert elsewhere.status_code == 403
    assert [e for e in service.audit_log if e["action"] == "upload"] == []


def test_an_upload_form_is_issued_and_audited_without_the_file_name(signed_in: tuple[TestClient, str],
                                                                    service: FakeWorkspace) -> None:
    client, csrf = signed_in
    response = write(client, "POST", "/api/uploads", csrf, upload_body())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == "audio/clinic-a/Zebulon visit.mp3"
    assert body["url"] == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/"
    assert policy_of(body["fields"])["conditions"][1] == {"key": body["key"]}
    uploaded = [e for e in service.audit_log if e["action"] == "upload"]
    assert uploaded == [{**uploaded[0], "actor_id": "local-tester", "encounter_id": None, "version": None}]
    assert "Zebulon" not in json.dumps(service.audit_log)


@pytest.mark.parametrize(("body", "message"), [
    (upload_body(kind="video"), "kind must be one of audio, text"),
    (upload_body(filename="visit.exe"), "must end in one of"),
    (upload_body(kind="text"), "a file of kind text must end in one of"),
    (upload_body(size=MIB + 1), "larger than the upload limit"),
    (upload_body(size=0), "the file is empty"),
    (upload_body(filename=None), "`kind` and `filename` are required"),
    (upload_body(folder=["a"]), "`folder` must be a string"),
    (upload_body(folder=".."), "may not contain"),
    ([1, 2], "must be a JSON object"),
])
def test_a_bad_upload_request_is_400(signed_in: tuple[TestClient, str], service: FakeWorkspace, body: Any,
                                     message: str) -> None:
    client, csrf = signed_in
    response = write(client, "POST", "/api/uploads", csrf, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert [e for e in service.audit_log if e["action"] == "upload"] == []


def test_the_upload_page_lets_its_script_connect_to_the_bucket_origin_only(signed_in: tuple[TestClient, str]) -> None:
    client, _ = signed_in
    response = client.get("/upload")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    connect = re.search(r"connect-src ([^;]+);", csp)
    assert connect is not None
    assert connect.group(1).split() == ["'self'", f"https://{BUCKET}.s3.eu-west-1.amazonaws.com"]
    assert "*" not in csp
    assert "script-src 'self';" in csp
    assert "form-action 'self'" in csp
    assert re.findall(r"<script[^>]*>", response.text) == ['<script src="/static/workspace.js" defer>',
                                                          '<script src="/static/upload.js" defer>']
    assert 'data-max-audio="1048576" data-max-text="1048576"' in response.text  # 1 MiB here; text_max_bytes 1 MiB
    assert "Largest file: 1.0 MiB for a recording, 1.0 MiB for a" in response.text
    # every other page keeps connect-src 'self'
    assert "connect-src 'self';" in client.get("/").headers["content-security-policy"]


def test_without_uploads_the_page_and_the_api_are_404(service: FakeWorkspace) -> None:
    auth = LocalAuth(Actor("local-tester", "admin"), session_seconds=3600, clock=Clock())
    client = TestClient(create_app(lambda: service, auth), base_url=BASE, follow_redirects=False)
    csrf = login(client, auth)
    assert client.get("/upload").status_code == 404
    assert write(client, "POST", "/api/uploads", csrf, upload_body()).status_code == 404


# --- the signed note's export -----------------------------------------------------------------------

def test_export_is_409_until_a_version_is_signed(signed_in: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, _ = signed_in
    response = client.get(f"/api/encounters/{ENC}/export")
    assert response.status_code == 409
    assert "no signed version" in response.json()["error"]
    assert client.get(f"/api/encounters/enc-{'c' * 32}/export").status_code == 404
    assert [e for e in service.audit_log if e["action"] == "export"] == []


def test_export_answers_the_signed_version_as_json_or_markdown_and_is_audited(
        signed_in: tuple[TestClient, str], service: FakeWorkspace) -> None:
    client, csrf = signed_in
    assert write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0}).status_code == 200
    note = {"sections": [{"name": "Plan", "items": [{"text": "A newer draft", "lines": [3]}]}]}
    assert write(client, "PUT", f"/api/encounters/{ENC}/note", csrf,
                 {"version": 0, "note": note, "amend_reason": "more"}).status_code == 200  # a draft after it
    exported = client.get(f"/api/encounters/{ENC}/export?format=json")
    assert exported.status_code == 200
    assert exported.json()["version"]["version"] == 0  # the signed version, not the newer draft
    assert "A newer draft" not in exported.text
    markdown = client.get(f"/api/encounters/{ENC}/export?format=markdown")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.headers["content-disposition"] == f'attachment; filename="{ENC}-v0.md"'
    text = markdown.text
    assert f"# Signed note {inline(ENC)}" in text
    assert "- Version: 0" in text
    assert "- Signed by: local-tester (admin)" in text
    assert "## Chief complaint" in text
    assert "- Chest pain on exertion *(line 2)*" in text
    assert "- Stress test *(lines 3, 99)*" in text
    assert [(e["action"], e["version"]) for e in service.audit_log if e["action"] == "export"] == [("export", 0),
                                                                                                 ("export", 0)]
    assert client.get(f"/api/encounters/{ENC}/export?format=pdf").status_code == 400


def test_the_encounter_page_links_the_export_once_signed(signed_in: tuple[TestClient, str]) -> None:
    client, csrf = signed_in
    assert "/export?format=markdown" not in client.get(f"/encounters/{ENC}").text
    write(client, "POST", f"/api/encounters/{ENC}/sign", csrf, {"version": 0})
    page = client.get(f"/encounters/{ENC}").text
    assert f'href="/api/encounters/{ENC}/export?format=markdown"' in page
    assert "Export signed version 0" in page


def test_markdown_from_claim_text_renders_literally() -> None:
    export = {"encounter_id": ENC, "version": {"version": 2, "signed_by": "u", "signed_role": "clinician",
                                               "signed_at": "2026-12-04T00:00:00.000Z"},
              "note": {"template": "soap", "amend_reason": "fixed\n# typo", "sections": [
                  {"name": "Plan", "items": [{"text": "# Heading\n![x](http://e/x.png) <b>bold</b> | a |",
                                              "lines": []}]},
                  {"name": "Empty", "items": []}]}}
    text = signed_markdown(export)
    claim = next(line for line in text.splitlines() if line.startswith("- \\#"))
    assert claim == r"- \# Heading !\[x\](http://e/x.png) \<b\>bold\</b\> \| a \| *(uncited)*"
    assert "- Amendment reason: fixed \\# typo" in text
    assert "*Nothing documented.*" in text
    assert [inline(t) for t in ("- a", "+ b", "12. c", "3) d", "=== e", "BP (140/90) & 5 mg")] == [
        "\\- a", "\\+ b", "12\\. c", "3\\) d", "\\=== e", "BP (140/90) \\& 5 mg"]
    emr = signed_markdown({**export, "note": {"record": {"Symptoms and Signs": ["cough"], "Age": "54"}}})
    assert "## EMR record" in emr
    assert "- **Symptoms and Signs**:\n  - cough" in emr
    assert "- **Age**: 54" in emr
