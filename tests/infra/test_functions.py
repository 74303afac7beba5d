"""Functions, layers, roles, log groups, grants and event source mappings, for every route and endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER, Access, Endpoint, Route
from medscribe.settings import ENV
from stacks.grants import TABLE_READ_WRITE_ACTIONS, TRANSCRIBE_DELETE_ACTIONS
from tests.infra.helpers import DEPLOYMENT_ID, Synth, as_list, getatt, iam_documents, ref, render, statements

pytestmark = pytest.mark.infra

ROUTE_FIXTURES = ["synth", "probe"]
# Actions that do not support resource-level permissions (the Service Authorization Reference lists
# no resource type for them), so only they may use Resource "*".
RESOURCE_STAR_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "transcribe:StartTranscriptionJob",
    "transcribe:StartMedicalTranscriptionJob",
    "transcribe:ListTranscriptionJobs",
    # Comprehend Medical's synchronous analysis actions have no resource type (self-heal; the entities stage)
    "comprehendmedical:DetectEntitiesV2",
    "comprehendmedical:InferICD10CM",
    "comprehendmedical:InferRxNorm",
    "comprehendmedical:InferSNOMEDCT",
    "comprehendmedical:DetectPHI",
    # creating custom vocabularies and language models has no resource type either (self-heal loop)
    "transcribe:CreateVocabulary",
    "transcribe:CreateMedicalVocabulary",
    "transcribe:CreateLanguageModel",
    "dynamodb:ListStreams",  # the index pipe's DynamoDB stream source; no resource type
}
# Lambda's quota for a function's unzipped code plus all its layers: 250 MB (262,144,000 bytes).
# (the workspace function's own variables: tests/infra/test_workspace.py)
ENV_NAMES = [value for name, value in vars(ENV).items() if name.isupper() and not name.startswith("WORKSPACE_")
             and value not in (ENV.SEARCH_URL, ENV.CLM_ROLE_ARN)]


def resource_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.resolve(construct.node.default_child.logical_id))


def functions_by_name(synth: Synth) -> dict[str, dict[str, Any]]:
    """Every route's and endpoint's function properties, by route or endpoint name."""
    return {
        name: synth.template["Resources"][resource_id(synth, function.function)]["Properties"]
        for name, function in synth.stack.functions.items()
    }


def route_policy(synth: Synth, name: str) -> list[dict[str, Any]]:
    """The statements of a route's or endpoint's role policy."""
    role = synth.stack.functions[name].role
    policy = role.node.find_child("DefaultPolicy").node.find_child("Resource")
    logical_id = str(synth.stack.resolve(policy.logical_id))  # type: ignore[attr-defined]
    return statements(synth.template["Resources"][logical_id]["Properties"]["PolicyDocument"])


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_every_route_and_endpoint_has_exactly_one_function(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    handlers = [
        f
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handler.handler"
    ]
    assert synth.stack.routes
    assert synth.stack.endpoints
    workspace = 2 if synth.stack.workspace else 0  # the workspace function and its authorizer
    assert len(handlers) == len(synth.stack.routes) + len(synth.stack.endpoints) + workspace
    assert len(handlers) == len(synth.stack.functions)


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_function_runtime_tracing_logging_and_environment(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    (key_id,) = synth.resources("AWS::KMS::Key")
    for name, function in functions_by_name(synth).items():
        handler = synth.stack.functions[name].handler
        assert function["Runtime"] == "python3.14", name
        assert function["Architectures"] == ["arm64"], name
        assert function["Handler"] == "handler.handler", name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert function["MemorySize"] == handler.memory_mb, name
        assert function["Timeout"] == handler.timeout_seconds, name
        assert function["FunctionName"] == f"{synth.stack.settings.prefix}-{name}", name
        assert "ReservedConcurrentExecutions" not in function, name
        assert len(function["Layers"]) == 2, name
        variables = function["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == f"medscribe-{name}"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "medscribe"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
        if handler is WORKSPACE_AUTHORIZER:  # knows the user pool and its client, none of the stores
            assert not set(ENV_NAMES) & set(variables), name
            assert {ENV.WORKSPACE_USER_POOL_ID, ENV.WORKSPACE_CLIENT_ID} <= set(variables), name
        else:
            assert set(ENV_NAMES) <= set(variables), name
            assert variables[ENV.SETTINGS] == synth.stack.settings.model_dump_json(exclude_none=True)
            assert variables[ENV.KMS_KEY_ARN] == getatt(key_id)
        # only the functions that write the search index know the domain (and wait for it at deploy)
        assert (ENV.SEARCH_URL in variables) == bool({Access.SEARCH_WRITE, Access.SEARCH_QUERY} & handler.access), name
        assert (ENV.CLM_ROLE_ARN in variables) == (Access.TRANSCRIBE_CUSTOMIZE in handler.access), name
        log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = synth.template["Resources"][log_group_id]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        # retained on stack deletion; deleted by a create rollback (tests/contract/test_redeploy_safety.py)
        assert (log_group["DeletionPolicy"], log_group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
        assert log_group["Properties"]["RetentionInDays"] == synth.stack.settings.log_retention_days
        assert log_group["Properties"]["KmsKeyId"] == getatt(key_id)
        assert render(log_group["Properties"]["LogGroupName"]) == (  # new for every stack created
            f"/aws/lambda/{synth.stack.settings.prefix}-{name}-{DEPLOYMENT_ID}")


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_every_log_group_is_encrypted_with_retention(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    (key_id,) = synth.resources("AWS::KMS::Key")
    for logical_id, log_group in synth.resources("AWS::Logs::LogGroup").items():
        assert log_group["Properties"]["KmsKeyId"] == getatt(key_id), logical_id
        assert log_group["Properties"]["RetentionInDays"] == synth.stack.settings.log_retention_days


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_event_source_mappings_cap_concurrency_and_report_failures(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    mappings = synth.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(synth.stack.routes)
    by_queue = {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"] for m in mappings.values()}
    for name, resources in synth.stack.routes.items():
        mapping = by_queue[resource_id(synth, resources.queue.queue)]
        assert mapping["FunctionName"] == {"Ref": resource_id(synth, resources.function.function)}
        assert mapping["ScalingConfig"] == {
            "MaximumConcurrency": resources.route.max_concurrency(synth.stack.settings)
        }, name
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        assert mapping["BatchSize"] == synth.stack.settings.batch_size, name
        assert mapping["MaximumBatchingWindowInSeconds"] == 1, name


def test_ingest_concurrency_is_the_transcription_cap(synth: Synth) -> None:
    (mapping,) = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"]["Ref"] == resource_id(synth, synth.stack.routes["ingest"].function.function)
    ]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == synth.stack.settings.max_concurrent_transcriptions


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_function_roles_have_no_managed_policies(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    for name, function in synth.stack.functions.items():
        role = synth.template["Resources"][resource_id(synth, function.role)]
        assert "ManagedPolicyArns" not in role["Properties"], name
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_no_wildcard_action_and_resource_star_only_where_unavoidable(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    documents = iam_documents(synth.template["Resources"])
    assert documents
    for logical_id, document in documents:
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            actions = as_list(statement["Action"])
            assert "*" not in actions, logical_id
            assert not [a for a in actions if a.endswith(":*")], logical_id
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= RESOURCE_STAR_ALLOWED, (logical_id, actions)


def test_ingest_grants_are_scoped_to_exact_resources(synth: Synth) -> None:
    policy = route_policy(synth, "ingest")
    storage = synth.stack.storage
    table_id = resource_id(synth, storage.table)
    input_id = resource_id(synth, storage.input_bucket)
    artifacts_id = resource_id(synth, storage.artifacts_bucket)
    (key_id,) = synth.resources("AWS::KMS::Key")
    resources_of = {tuple(sorted(as_list(s["Action"]))): as_list(s["Resource"]) for s in policy}
    assert resources_of[tuple(sorted(TABLE_READ_WRITE_ACTIONS))] == [getatt(table_id)]
    assert resources_of[("dynamodb:Query", "dynamodb:Scan")] == [
        {"Fn::Join": ["", [getatt(table_id), f"/index/{name}"]]} for name in ("by-day", "by-folder", "by-status")
    ]
    # the objects and their tags (the note template an upload chooses), one statement on the same resource
    assert resources_of[("s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion",
                         "s3:GetObjectVersionTagging")] == [{"Fn::Join": ["", [getatt(input_id), "/*"]]}]
    assert resources_of[("s3:ListBucket",)] == [getatt(input_id)]
    # Transcribe writes the job output with ingest's permissions: only under transcripts/.
    assert resources_of[("s3:PutObject",)] == [{"Fn::Join": ["", [getatt(artifacts_id), "/transcripts/*"]]}]
    assert resources_of[("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")] == [getatt(key_id)]
    assert resources_of[("logs:CreateLogStream", "logs:PutLogEvents")] == [
        getatt(resource_id(synth, synth.stack.routes["ingest"].function.log_group))
    ]
    # ingest publishes failure notices, reads job status on conflicts, and writes nothing else
    granted = {action for s in policy for action in as_list(s["Action"])}
    assert "sns:Publish" in granted
    on_artifacts = [s for s in policy if artifacts_id in json.dumps(s["Resource"])]
    assert [as_list(s["Action"]) for s in on_artifacts] == [["s3:PutObject"]]
    assert {a for a in granted if a.startswith("transcribe:Get")} == {
        "transcribe:GetTranscriptionJob",
        "transcribe:GetMedicalTranscriptionJob",
    }


def transcribe_start_statements(policy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in policy if "transcribe:StartTranscriptionJob" in as_list(s["Action"])]


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_transcribe_start_is_pinned_to_the_artifacts_bucket_transcripts_and_project_key(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    (key_id,) = synth.resources("AWS::KMS::Key")
    artifacts_id = resource_id(synth, synth.stack.storage.artifacts_bucket)
    input_objects = {"Fn::Join": ["", [getatt(resource_id(synth, synth.stack.storage.input_bucket)), "/*"]]}
    starters = [name for name, f in synth.stack.functions.items() if Access.TRANSCRIBE_START in f.access]
    assert starters
    for name in synth.stack.functions:
        policy = route_policy(synth, name)
        starts = transcribe_start_statements(policy)
        if name not in starters:
            assert not starts, name
            continue
        (start,) = starts
        assert sorted(as_list(start["Action"])) == [
            "transcribe:StartMedicalTranscriptionJob",
            "transcribe:StartTranscriptionJob",
        ]
        assert start["Resource"] == "*"
        assert start["Condition"] == {
            "StringEquals": {
                "transcribe:OutputBucketName": ref(artifacts_id),
                "transcribe:OutputEncryptionKMSKeyId": getatt(key_id),
            },
            "StringLike": {"transcribe:OutputKey": "transcripts/*"},
        }, name
        # Transcribe reads the media with the caller's permissions.
        assert any(
            "s3:GetObject" in as_list(s["Action"]) and input_objects in as_list(s["Resource"]) for s in policy
        ), name


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_transcribe_job_status_is_read_on_this_stages_jobs_only(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    prefix = synth.stack.settings.prefix
    readers = [name for name, f in synth.stack.functions.items() if Access.TRANSCRIBE_READ in f.access]
    assert readers
    for name in readers:
        policy = route_policy(synth, name)
        # each Get action on the one job type IAM authorizes it on
        for action, resource_type in (("transcribe:GetTranscriptionJob", "transcription-job"),
                                      ("transcribe:GetMedicalTranscriptionJob", "medical-transcription-job")):
            (get,) = [s for s in policy if action in as_list(s["Action"])]
            # CDK merges statements on the same resources: an erasing function's delete of that job type
            erasing = Access.ERASE in synth.stack.functions[name].access
            deletes = {delete for delete, kind in TRANSCRIBE_DELETE_ACTIONS.items() if kind == resource_type}
            assert set(as_list(get["Action"])) == {action, *(deletes if erasing else ())}, name
            assert get["Resource"]["Fn::Join"][1][-1] == f":{resource_type}/{prefix}-*", name
        (listing,) = [s for s in policy if "transcribe:ListTranscriptionJobs" in as_list(s["Action"])]
        assert listing["Resource"] == "*"


def layer_asset_dir(synth: Synth, layer: Any) -> Path:
    content = synth.template["Resources"][resource_id(synth, layer)]["Properties"]["Content"]
    return synth.template_path.parent / f"asset.{content['S3Key'].removesuffix('.zip')}"


def test_code_layer_holds_the_package_without_caches(synth: Synth) -> None:
    code = layer_asset_dir(synth, synth.stack.layers.code)
    assert (code / "python" / "medscribe" / "__init__.py").is_file()
    assert (code / "python" / "medscribe" / "routes.py").is_file()
    assert not list(code.rglob("__pycache__"))
    assert not list(code.rglob("*.egg-info"))


def test_one_dependency_layer_per_requirements_file_shared_by_its_functions(synth: Synth) -> None:
    layers = synth.stack.layers.dependencies
    handlers: list[Route | Endpoint] = [*ROUTES, *ENDPOINTS, WORKSPACE, WORKSPACE_AUTHORIZER]
    assert synth.stack.workspace  # cdk.json enables it
    assert set(layers) == {handler.requirements for handler in handlers}
    code_id = resource_id(synth, synth.stack.layers.code)
    for name, function in functions_by_name(synth).items():
        handler = synth.stack.functions[name].handler
        expected = [ref(resource_id(synth, layers[handler.requirements])), ref(code_id)]
        assert sorted(function["Layers"], key=json.dumps) == sorted(expected, key=json.dumps), name


def test_dependency_layers_hold_python_3_14_arm64_wheels(synth: Synth) -> None:
    for requirements, layer in synth.stack.layers.dependencies.items():
        deps = layer_asset_dir(synth, layer)
        assert (deps / "python" / "aws_lambda_powertools").is_dir(), requirements
        native = list((deps / "python" / "pydantic_core").glob("*.so"))
        assert native, requirements
        assert all("cpython-314-aarch64-linux-gnu" in so.name for so in native), requirements


def test_artifacts_layer_carries_tscribe_and_its_native_wheels(synth: Synth) -> None:
    deps = layer_asset_dir(synth, synth.stack.layers.dependencies["layers/artifacts/requirements.txt"])
    assert (deps / "python" / "tscribe").is_dir()
    for package in ("numpy", "pandas", "matplotlib"):
        native = list((deps / "python" / package).rglob("*.so"))
        assert native, package
        assert all("aarch64" in so.name for so in native), package
    # botocore requires python-dateutil < 3 (pinned in the requirements file)
    assert list((deps / "python").glob("python_dateutil-2.*.dist-info"))
