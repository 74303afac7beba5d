"""The clinician workspace in AWS: Cognito user pool, HTTP API and its Lambda authorizer, the workspace functions.

Properties of the synthesized template, for cdk.json's settings (`synth`: workspace enabled, MFA required),
for other workspace settings (`variant`) and with the workspace switched off (`disabled`); both extra apps
run the nag packs with the acknowledgements, so a finding the plan does not cover fails them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app import build_app, cdk_json_context
from medscribe.adapters.cognito_signin import CALLBACK_PATH, LOGIN_PATH, REFRESH_PATH, SIGNIN_PATHS
from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.domain.uploads import UPLOAD_PREFIXES
from medscribe.routes import WORKSPACE, WORKSPACE_AUTHORIZER
from medscribe.settings import CONTEXT_KEY, ENV, PipelineSettings
from stacks import nag
from stacks.grants import (
    OBJECT_READ_ACTIONS,
    TABLE_INDEX_ACTIONS,
    TABLE_READ_WRITE_ACTIONS,
    TRANSCRIBE_DELETE_ACTIONS,
)
from stacks.workspace import GROUPS, PASSWORD_MIN_LENGTH, UPLOAD_CORS_HEADERS
from tests.infra.conftest import _synth
from tests.infra.helpers import DEPLOYMENT_ID, SKIP_BUNDLING, Synth, as_list, getatt, ref, render, statements

pytestmark = pytest.mark.infra

VARIANT = {
    "workspace_mfa": "OPTIONAL",
    "workspace_callback_urls": ["https://workspace.example.org/auth/callback", "http://localhost:8765/auth/callback"],
    "workspace_logout_urls": ["https://workspace.example.org/"],
    "workspace_access_token_minutes": 15,
    "workspace_refresh_token_days": 7,
}


def _with_settings(tmp_path: Path, **changes: Any) -> Synth:
    context = {**cdk_json_context()[CONTEXT_KEY], **changes}
    app, stack = build_app(outdir=str(tmp_path), extra_context={**SKIP_BUNDLING, CONTEXT_KEY: context})
    return _synth(app, stack)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _with_settings(tmp_path_factory.mktemp("workspace-variant"), **VARIANT)


@pytest.fixture(scope="module")
def disabled(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _with_settings(tmp_path_factory.mktemp("workspace-disabled"), workspace_enabled=False)


def lid(synth: Synth, construct: Any) -> str:
    """The logical id of a construct (or of its default CloudFormation child)."""
    child = getattr(construct.node, "default_child", None) or construct
    return str(synth.stack.resolve(child.logical_id))


def token(logical_id: str) -> str:
    """A Ref as `render` writes it."""
    return "${" + logical_id + "}"


def one(synth: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = synth.resources(resource_type).items()
    return found[0], found[1]["Properties"]


def test_cdk_json_enables_the_workspace_with_mfa_required(settings: PipelineSettings, synth: Synth) -> None:
    assert settings.workspace_enabled
    assert settings.workspace_mfa == "REQUIRED"
    assert synth.stack.workspace is not None
    assert WORKSPACE.name in synth.stack.functions


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_every_route_but_the_sign_in_has_the_lambda_authorizer(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    routes = synth.resources("AWS::ApiGatewayV2::Route")
    authorizers = synth.resources("AWS::ApiGatewayV2::Authorizer")
    keys = {route["Properties"]["RouteKey"] for route in routes.values()}
    assert keys == {"$default", *(f"GET {path}" for path in SIGNIN_PATHS)}  # the app routes itself
    open_keys = set()
    for route_id, route in routes.items():
        properties = route["Properties"]
        if properties.get("AuthorizationType", "NONE") == "NONE":  # NONE is the default when absent
            assert "AuthorizerId" not in properties, route_id
            open_keys.add(properties["RouteKey"])
            continue
        assert properties["AuthorizationType"] == "CUSTOM", route_id
        assert authorizers[properties["AuthorizerId"]["Ref"]]["Properties"]["AuthorizerType"] == "REQUEST", route_id
    # exactly the sign-in: /login starts it, /auth/callback receives the authorization code, /auth/refresh
    # trades the refresh-token cookie for a new access token (the sign-out, POST /auth/logout, is authorized)
    assert open_keys == {"GET /login", "GET /auth/callback", "GET /auth/refresh"}
    assert REFRESH_PATH == "/auth/refresh"
    # one API, and nothing reaches the functions another way: no other stage, integration or function URL
    assert len(synth.resources("AWS::ApiGatewayV2::Api")) == len(synth.resources("AWS::ApiGatewayV2::Stage")) == 1
    workspace = synth.stack.workspace
    assert workspace is not None
    function_ids = [getatt(lid(synth, f.function)) for f in (workspace.function, workspace.authorizer_function)]
    assert not [u for u in synth.resources("AWS::Lambda::Url").values()
                if u["Properties"]["TargetFunctionArn"] in function_ids]


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_the_authorizer_is_the_token_checking_function_uncached(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    workspace = synth.stack.workspace
    assert workspace is not None
    authorizer_id, authorizer = one(synth, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["AuthorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["EnableSimpleResponses"] is True
    # no identity source: the token is in the Authorization header (API callers) or the cookie (browsers),
    # and API Gateway requires all declared sources; so no caching either (it keys on identity sources)
    assert authorizer.get("IdentitySource", []) == []
    assert authorizer["AuthorizerResultTtlInSeconds"] == 0
    function_id = lid(synth, workspace.authorizer_function.function)
    assert function_id in str(authorizer["AuthorizerUri"])
    properties = synth.template["Resources"][function_id]["Properties"]
    variables = properties["Environment"]["Variables"]
    assert variables[ENV.WORKSPACE_USER_POOL_ID] == ref(lid(synth, workspace.user_pool))
    assert variables[ENV.WORKSPACE_CLIENT_ID] == ref(lid(synth, workspace.client))
    assert not {ENV.TABLE, ENV.INPUT_BUCKET, ENV.ARTIFACTS_BUCKET} & set(variables)
    assert properties["Timeout"] == WORKSPACE_AUTHORIZER.timeout_seconds
    assert properties["TracingConfig"] == {"Mode": "Active"}
    # only this API's authorizer may invoke it
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()
                   if function_id in str(p["Properties"]["FunctionName"])]
    (permission,) = permissions
    assert permission["Principal"] == "apigateway.amazonaws.com"
    api = token(lid(synth, workspace.api))
    assert render(permission["SourceArn"]) == (
        f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:{api}/authorizers/"
        f"{token(authorizer_id)}")


def test_the_authorizer_role_has_no_data_access(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    role = workspace.authorizer_function.role
    policies = [r["Properties"] for r in synth.resources("AWS::IAM::Policy").values()
                if {"Ref": lid(synth, role)} in r["Properties"]["Roles"]]
    granted = {action for p in policies for s in statements(p["PolicyDocument"]) for action in as_list(s["Action"])}
    assert granted
    assert {action.split(":")[0] for action in granted} <= {"logs", "xray"}, granted
    role_properties = synth.template["Resources"][lid(synth, role)]["Properties"]
    assert "ManagedPolicyArns" not in role_properties
    assert "Policies" not in role_properties
    assert WORKSPACE_AUTHORIZER.access == frozenset()


def test_the_user_pool_admits_no_one_by_itself_and_enforces_threat_protection(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    pool = synth.template["Resources"][lid(synth, workspace.user_pool)]
    properties = pool["Properties"]
    assert properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert properties["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert properties["UserPoolTier"] == "PLUS"
    assert properties["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]}
    assert properties["Policies"]["PasswordPolicy"] == {
        "MinimumLength": PASSWORD_MIN_LENGTH, "RequireLowercase": True, "RequireNumbers": True,
        "RequireSymbols": True, "RequireUppercase": True, "TemporaryPasswordValidityDays": 3,
    }
    assert PASSWORD_MIN_LENGTH >= 14
    # kept like the table: deletion protection and Retain; a name new for every stack created
    assert properties["DeletionProtection"] == "ACTIVE"
    assert (pool["DeletionPolicy"], pool["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert DEPLOYMENT_ID in render(properties["UserPoolName"])
    assert "SmsConfiguration" not in properties  # no SMS, so no role that can send texts


def test_mfa_follows_the_setting_and_is_totp_only(synth: Synth, variant: Synth) -> None:
    for which, expected in ((synth, "ON"), (variant, "OPTIONAL")):
        _, pool = one(which, "AWS::Cognito::UserPool")
        assert pool["MfaConfiguration"] == expected
        assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    off = PipelineSettings(workspace_mfa="OFF")
    assert off.workspace_mfa == "OFF"
    with pytest.raises(ValidationError):
        PipelineSettings(workspace_mfa="SMS")  # type: ignore[arg-type]


def test_mfa_short_of_required_is_an_acknowledged_finding_with_the_setting_as_reason(synth: Synth, variant: Synth
                                                                                      ) -> None:
    assert not [ack for ack in nag.plan(synth.stack) if ack.rule == "AwsSolutions-COG2"]
    (ack,) = [ack for ack in nag.plan(variant.stack) if ack.rule == "AwsSolutions-COG2"]
    assert "workspace_mfa OPTIONAL" in ack.reason


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_groups_clinician_and_admin_belong_to_the_pool(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    workspace = synth.stack.workspace
    assert workspace is not None
    groups = [g["Properties"] for g in synth.resources("AWS::Cognito::UserPoolGroup").values()]
    assert sorted(g["GroupName"] for g in groups) == sorted(GROUPS) == ["admin", "clinician"]
    assert all(g["UserPoolId"] == ref(lid(synth, workspace.user_pool)) for g in groups)


def api_url(synth: Synth) -> str:
    workspace = synth.stack.workspace
    assert workspace is not None
    return f"https://{token(lid(synth, workspace.api))}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"


@pytest.mark.parametrize(("which", "settings_of"), [("synth", {}), ("variant", VARIANT)])
def test_the_app_client_uses_the_code_grant_and_the_settings(which: str, settings_of: dict[str, Any],
                                                             request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    settings = synth.stack.settings
    _, client = one(synth, "AWS::Cognito::UserPoolClient")
    assert client["AllowedOAuthFlows"] == ["code"]  # no implicit grant: tokens never travel in a URL
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["GenerateSecret"] is False
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert render(client["CallbackURLs"]) == [f"{api_url(synth)}{CALLBACK_PATH.lstrip('/')}",
                                              *settings_of.get("workspace_callback_urls", [])]
    assert render(client["LogoutURLs"]) == [api_url(synth), *settings_of.get("workspace_logout_urls", [])]
    assert client["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"}
    assert client["AccessTokenValidity"] == client["IdTokenValidity"] == settings.workspace_access_token_minutes
    assert client["RefreshTokenValidity"] == settings.workspace_refresh_token_days * 24 * 60
    assert settings.workspace_access_token_minutes == settings_of.get("workspace_access_token_minutes", 30)


@pytest.mark.parametrize("url", [
    "http://example.org/auth/callback", "http://localhost.example.org/", "https://", "javascript:alert(1)",
    "https://example.org/#fragment", "ftp://example.org/",
])
def test_callback_urls_must_be_https_or_this_machine(url: str) -> None:
    with pytest.raises(ValidationError):
        PipelineSettings(workspace_callback_urls=(url,))
    with pytest.raises(ValidationError):
        PipelineSettings(workspace_logout_urls=(url,))


def test_the_stage_is_throttled_and_logs_every_request_encrypted_without_query_strings(synth: Synth) -> None:
    (key_id,) = synth.resources("AWS::KMS::Key")
    _, stage = one(synth, "AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    throttle = stage["DefaultRouteSettings"]
    assert 0 < throttle["ThrottlingRateLimit"] <= throttle["ThrottlingBurstLimit"] <= 1000
    log_group_id = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    log_group = synth.template["Resources"][log_group_id]
    assert log_group["Properties"]["KmsKeyId"] == getatt(key_id)
    assert log_group["Properties"]["RetentionInDays"] == synth.stack.settings.log_retention_days
    assert (log_group["DeletionPolicy"], log_group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    prefix = synth.stack.settings.prefix
    name = render(log_group["Properties"]["LogGroupName"])
    assert name == f"/aws/apigateway/{prefix}/{DEPLOYMENT_ID}/workspace-access"
    log_format = stage["AccessLogSettings"]["Format"]
    assert "$context.authorizer.sub" in log_format  # the Lambda authorizer's context
    assert "$context.status" in log_format
    for leak in ("querystring", "$input", "header", "email", "username", "$context.identity.user"):
        assert leak not in log_format.lower(), leak
    # CloudWatch Logs may use the project key for this log group: the key policy names it
    key_policy = synth.template["Resources"][key_id]["Properties"]["KeyPolicy"]
    (logs_statement,) = [s for s in statements(key_policy) if s.get("Sid") == "CloudWatchLogsForStageLogGroups"]
    allowed = render(logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert (f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:"
            f"/aws/apigateway/{prefix}/*/workspace-access") in allowed


def test_only_this_api_may_invoke_the_workspace_function(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    function_id = lid(synth, workspace.function.function)
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()
                   if function_id in str(p["Properties"]["FunctionName"])]
    api = token(lid(synth, workspace.api))
    scope = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
    for permission in permissions:  # one per route (CDK), each scoped to this API
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["Principal"] == "apigateway.amazonaws.com"
    assert sorted(render(p["SourceArn"]) for p in permissions) == sorted(
        f"{scope}{api}/*/*{path}" for path in ("", LOGIN_PATH, CALLBACK_PATH, REFRESH_PATH))
    _, integration = one(synth, "AWS::ApiGatewayV2::Integration")
    assert integration["IntegrationUri"] == getatt(function_id)
    assert integration["PayloadFormatVersion"] == "2.0"


def test_the_function_times_out_before_the_gateway(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    properties = synth.template["Resources"][lid(synth, workspace.function.function)]["Properties"]
    assert properties["Timeout"] == WORKSPACE.timeout_seconds < 30  # HTTP API integrations end at 30 s
    variables = properties["Environment"]["Variables"]
    assert variables[ENV.WORKSPACE_USER_POOL_ID] == ref(lid(synth, workspace.user_pool))
    assert variables[ENV.WORKSPACE_CLIENT_ID] == ref(lid(synth, workspace.client))
    assert render(variables[ENV.WORKSPACE_AUTH_URL]) == (
        f"https://{token(lid(synth, workspace.domain))}.auth.${{AWS::Region}}.amazoncognito.com")


def test_the_workspace_role_reaches_its_stores_only(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    storage = synth.stack.storage
    table, input_bucket, artifacts = (lid(synth, c) for c in (storage.table, storage.input_bucket,
                                                               storage.artifacts_bucket))
    policy = workspace.function.role.node.find_child("DefaultPolicy").node.find_child("Resource")
    document = synth.template["Resources"][lid(synth, policy)]["Properties"]["PolicyDocument"]
    by_actions = {tuple(sorted(as_list(s["Action"]))): render(as_list(s["Resource"])) for s in statements(document)}
    assert by_actions[tuple(TABLE_READ_WRITE_ACTIONS)] == [f"${{{table}.Arn}}"]
    assert tuple(TABLE_INDEX_ACTIONS) in by_actions
    assert sorted(by_actions[("s3:PutObject",)]) == sorted(f"${{{input_bucket}.Arn}}/{p}*" for p in UPLOAD_PREFIXES)
    assert UPLOAD_PREFIXES == ("audio/", "text/")
    assert by_actions[tuple(sorted(OBJECT_READ_ACTIONS))] == [f"${{{input_bucket}.Arn}}/*"]
    assert by_actions[tuple(sorted(["s3:AbortMultipartUpload", "s3:PutObject", *OBJECT_READ_ACTIONS]))] == [
        f"${{{artifacts}.Arn}}/*"]
    granted = {action for s in statements(document) for action in as_list(s["Action"])}
    services = {action.split(":")[0] for action in granted}
    assert services == {"dynamodb", "s3", "kms", "logs", "xray", "transcribe", "es"}, services
    # an admin's erasure: versions listed per bucket, deleted by version id under the input prefixes and in
    # the artifacts bucket; this stage's Transcribe jobs; no other delete
    # (CDK merges the statements of one resource set: s3:ListBucket on each bucket joins the listing)
    assert sorted(by_actions[("s3:ListBucket", "s3:ListBucketVersions")]) == sorted(
        [f"${{{input_bucket}.Arn}}", f"${{{artifacts}.Arn}}"])
    assert sorted(by_actions[("s3:DeleteObjectVersion",)]) == sorted(
        [*(f"${{{input_bucket}.Arn}}/{p}*" for p in INPUT_PREFIXES), f"${{{artifacts}.Arn}}/*"])
    prefix = synth.stack.settings.prefix
    for action, resource_type in TRANSCRIBE_DELETE_ACTIONS.items():
        assert by_actions[(action,)] == [
            f"arn:${{AWS::Partition}}:transcribe:${{AWS::Region}}:${{AWS::AccountId}}:{resource_type}/{prefix}-*"]
    deletes = {a for a in granted if ":Delete" in a}
    assert deletes == {"dynamodb:DeleteItem", "s3:DeleteObjectVersion", *TRANSCRIBE_DELETE_ACTIONS}
    assert {a for a in granted if "*" in a} == {"kms:GenerateDataKey*", "kms:ReEncrypt*"}  # CDK's key grant only
    # OpenSearch: a query on the index's _search path and the erasure's _bulk, POST only (no index writes)
    domain = lid(synth, storage.search.domain)
    es = [(as_list(s["Action"]), sorted(render(as_list(s["Resource"])))) for s in statements(document)
          if any(a.startswith("es:") for a in as_list(s["Action"]))]
    assert es == [(["es:ESHttpPost"], [f"${{{domain}.Arn}}/_bulk", f"${{{domain}.Arn}}/encounters/_search"])]


def test_outputs_name_the_workspace_and_its_sign_in(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    outputs = synth.template["Outputs"]
    # what a person opens is the app's /login (it starts the hosted UI with state and a PKCE challenge): a page
    # opened without a valid token is answered 403 by the authorizer, which cannot redirect
    assert render(outputs["WorkspaceUrl"]["Value"]) == f"{api_url(synth)}{LOGIN_PATH.lstrip('/')}"
    assert render(outputs["WorkspaceApiUrl"]["Value"]) == api_url(synth)  # for API callers (Bearer tokens)
    assert "WorkspaceLoginUrl" not in outputs
    assert outputs["WorkspaceUserPoolId"]["Value"] == ref(lid(synth, workspace.user_pool))


def test_switched_off_none_of_it_is_synthesized(disabled: Synth) -> None:
    assert disabled.stack.workspace is None
    assert WORKSPACE.name not in disabled.stack.functions
    assert WORKSPACE_AUTHORIZER.name not in disabled.stack.functions
    assert WORKSPACE_AUTHORIZER.requirements not in disabled.stack.layers.dependencies
    types = {resource["Type"] for resource in disabled.template["Resources"].values()}
    assert not {t for t in types if t.startswith(("AWS::Cognito::", "AWS::ApiGatewayV2::"))}
    assert not [name for name in disabled.template["Outputs"] if name.startswith("Workspace")]
    assert WORKSPACE.requirements not in disabled.stack.layers.dependencies
    assert not [f for f in disabled.resources("AWS::Lambda::Function").values()
                if f["Properties"].get("FunctionName") == f"{disabled.stack.settings.prefix}-{WORKSPACE.name}"]
    assert not [ack for ack in nag.plan(disabled.stack) if "/Workspace/" in ack.path]
    bucket = disabled.template["Resources"][lid(disabled, disabled.stack.storage.input_bucket)]["Properties"]
    assert "CorsConfiguration" not in bucket  # no upload page, no browser posts


def test_the_input_bucket_takes_browser_posts_from_the_workspace_origin_only(synth: Synth) -> None:
    workspace = synth.stack.workspace
    assert workspace is not None
    storage = synth.stack.storage
    resources = synth.template["Resources"]
    (rule,) = resources[lid(synth, storage.input_bucket)]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["POST"]
    # the HTTP API's ApiEndpoint is https://<api id>.execute-api.<region>.amazonaws.com: an origin exactly
    assert render(rule["AllowedOrigins"]) == [f"${{{lid(synth, workspace.api)}.ApiEndpoint}}"]
    assert "*" not in json.dumps(rule)
    assert rule["AllowedHeaders"] == UPLOAD_CORS_HEADERS
    assert "CorsConfiguration" not in resources[lid(synth, storage.artifacts_bucket)]["Properties"]

