"""The clinician workspace in AWS (`workspace_enabled`): a Cognito user pool with hosted sign-in, an HTTP API
whose every route but the three sign-in routes needs one of the pool's access tokens, and the `workspace`
function behind it.

- User pool: no self sign-up (an administrator creates users and puts them in the `clinician` or `admin`
  group), sign-in with an email address, a 14-character password with all four character classes,
  TOTP multi-factor sign-in per `workspace_mfa` (no SMS: no phone numbers, no SMS role), threat protection
  enforced (the Plus feature plan: compromised-credential and adaptive-authentication checks), recovery by
  email only. Deletion protection on and retained with the stack, like the encounter table: the audit trail
  names actors by their Cognito `sub`, which only this pool maps to a person.
- App client: authorization code grant only (no implicit grant: tokens never travel in a URL), with PKCE,
  no client secret: PKCE binds the code to whoever started the sign-in, and a secret would have to live in
  Secrets Manager with rotation. Token lifetimes from the settings; token revocation on; "user not found"
  answered like a wrong password.
- HTTP API: the `$default` route (the app routes itself) with the `workspace_authorizer` Lambda REQUEST
  authorizer (payload 2.0, simple responses). Not a JWT authorizer: that reads the `Authorization` header
  only, which browsers do not send on page loads, so in a browser every page would be refused. The Lambda
  authorizer verifies a Cognito access token from that header (API callers) or from the HttpOnly cookie the
  app's sign-in callback sets (browsers). No identity source is declared: API Gateway requires every
  declared source to be present, so declaring both the Cookie and the Authorization header would refuse
  each kind of caller; the authorizer refuses a request without a token itself. Hence no result caching
  either (API Gateway caches only by identity source), and a signed-out cookie stops working at once.
  Exactly three routes have no authorizer, because they are the sign-in: GET /login (starts the hosted UI
  with PKCE), GET /auth/callback (receives the authorization code) and GET /auth/refresh (trades the
  refresh-token cookie for a new access token). Stage throttling bounds what
  unauthenticated requests can cost. JSON access logs (ids and statuses, no query strings) go to a log
  group encrypted with the project key.
- The authorizer function has its own role: logs and X-Ray only, no table, bucket, topic or key access.
- Uploads: the input bucket gets a CORS rule for the API's origin (POST only), so the upload page can
  post a file there with a presigned POST; the workspace role may write under the input prefixes only
  (routes.Access.INPUT_WRITE), with data keys of the project key.
"""

from __future__ import annotations

from pathlib import Path

import jsii
from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from medscribe.adapters.cognito_signin import CALLBACK_PATH, LOGIN_PATH, SIGNIN_PATHS
from medscribe.routes import WORKSPACE, WORKSPACE_AUTHORIZER
from medscribe.settings import ENV, PipelineSettings
from stacks.functions import HandlerFunction
from stacks.layers import Layers
from stacks.security import RETENTION, deployment_id, workspace_access_log_group_name
from stacks.storage import Storage

GROUPS = {
    "clinician": "Clinicians: list, review, edit and sign notes; upload recordings",
    "admin": "Administrators: everything clinicians do, plus the audit trail of every actor, CSV export and erasure",
}
PASSWORD_MIN_LENGTH = 14
TEMPORARY_PASSWORD_DAYS = 3
# Stage-wide request limits (API Gateway's account default is 10,000 requests per second).
THROTTLE_RATE = 50
THROTTLE_BURST = 100
# The upload page's POST to the input bucket: the headers its preflight may name, how long a browser
# may keep the preflight's answer.
UPLOAD_CORS_HEADERS = ["content-type"]
UPLOAD_CORS_MAX_AGE_SECONDS = 600
# One JSON line per request: who (the token's subject, a Cognito id, never a name), what route and status,
# how long. No query string (search terms) and no headers.
ACCESS_LOG_FORMAT = apigw_v1.AccessLogFormat.custom(
    '{"requestId":"$context.requestId","requestTime":"$context.requestTime","ip":"$context.identity.sourceIp",'
    '"method":"$context.httpMethod","path":"$context.path","status":"$context.status",'
    '"responseLength":"$context.responseLength","latencyMs":"$context.responseLatency",'
    '"sub":"$context.authorizer.sub","authorizerError":"$context.authorizer.error",'
    '"integrationError":"$context.integrationErrorMessage"}'
)


@jsii.implements(apigw.IAccessLogSettings)
class AccessLogSettings:
    """Where and how the stage writes access logs (aws-apigatewayv2 declares only the interface)."""

    def __init__(self, destination: apigw.IAccessLogDestination, log_format: apigw_v1.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return self._format


MFA = {"OFF": cognito.Mfa.OFF, "OPTIONAL": cognito.Mfa.OPTIONAL, "REQUIRED": cognito.Mfa.REQUIRED}


class Workspace(Construct):
    """User pool, hosted sign-in domain, app client, HTTP API with its Lambda authorizer, and the functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        layers: Layers,
        environment: dict[str, str],
        key: kms.IKey,
        storage: Storage,
        topic: sns.ITopic,
        code_dir: Path,
        authorizer_code_dir: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = settings.prefix
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{prefix}-workspace-{deployment_id(self)}",  # kept after deletion: new name per stack
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(TEMPORARY_PASSWORD_DAYS),
            ),
            mfa=MFA[settings.workspace_mfa],
            mfa_second_factor=(
                None if settings.workspace_mfa == "OFF" else cognito.MfaSecondFactor(otp=True, sms=False)
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.groups = {
            name: cognito.UserPoolGroup(
                self, f"{name.capitalize()}Group", user_pool=self.user_pool, group_name=name, description=description
            )
            for name, description in GROUPS.items()
        }
        # Domain prefixes are global per region: the account id keeps this stage's apart from everyone else's.
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=f"{prefix}-{Stack.of(self).account}"),
        )

        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=workspace_access_log_group_name(prefix, deployment_id(self)),
            retention=RETENTION[settings.log_retention_days],
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,  # as the function log groups
        )
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=f"{prefix}-workspace",
            description="medscribe clinician workspace: every route but the sign-in needs a Cognito token",
            create_default_stage=False,
        )
        self.stage = self.api.add_stage(
            "DefaultStage",
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=THROTTLE_RATE, burst_limit=THROTTLE_BURST),
            access_log_settings=AccessLogSettings(apigw.LogGroupLogDestination(self.access_logs), ACCESS_LOG_FORMAT),
        )
        self.url = self.stage.url
        # The upload page posts files from the browser straight to the input bucket (a presigned POST the
        # function signs): the bucket answers this API's origin, and only it, for POST (its preflight too:
        # a request that reports upload progress is preflighted). The form's policy, not CORS, limits what
        # may be written; CORS only lets the page read S3's answer.
        storage.input_bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.POST],
            allowed_origins=[self.api.api_endpoint],
            allowed_headers=UPLOAD_CORS_HEADERS,
            max_age=UPLOAD_CORS_MAX_AGE_SECONDS,
        )
        self.client = self.user_pool.add_client(
            "Client",
            user_pool_client_name=f"{prefix}-workspace",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[f"{self.url}{CALLBACK_PATH.lstrip('/')}", *settings.workspace_callback_urls],
                logout_urls=[self.url, *settings.workspace_logout_urls],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            access_token_validity=Duration.minutes(settings.workspace_access_token_minutes),
            id_token_validity=Duration.minutes(settings.workspace_access_token_minutes),
            refresh_token_validity=Duration.days(settings.workspace_refresh_token_days),
            enable_token_revocation=True,
            prevent_user_existence_errors=True,
        )
        self.auth_url = self.domain.base_url()

        self.function = HandlerFunction(
            self,
            "Function",
            handler=WORKSPACE,
            settings=settings,
            code_dir=code_dir,
            layers=layers,
            environment={
                **environment,
                ENV.WORKSPACE_USER_POOL_ID: self.user_pool.user_pool_id,
                ENV.WORKSPACE_CLIENT_ID: self.client.user_pool_client_id,
                ENV.WORKSPACE_AUTH_URL: self.auth_url,
            },
            key=key,
            storage=storage,
            topic=topic,
            role_description="logs, X-Ray and the workspace's grants only",
        )
        self.authorizer_function = HandlerFunction(
            self,
            "AuthorizerFunction",
            handler=WORKSPACE_AUTHORIZER,
            settings=settings,
            code_dir=authorizer_code_dir,
            layers=layers,
            environment={
                ENV.WORKSPACE_USER_POOL_ID: self.user_pool.user_pool_id,
                ENV.WORKSPACE_CLIENT_ID: self.client.user_pool_client_id,
            },
            key=key,
            storage=storage,
            topic=topic,
            role_description="logs and X-Ray only: verifies tokens against the pool's public keys",
        )
        self.authorizer = authorizers.HttpLambdaAuthorizer(
            "Authorizer",
            self.authorizer_function.function,
            authorizer_name=f"{prefix}-workspace-token",
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            identity_source=[],  # header or cookie: the authorizer refuses a request with neither
            results_cache_ttl=Duration.seconds(0),  # caching needs identity sources; a signed-out cookie ends at once
        )
        integration = integrations.HttpLambdaIntegration(
            "Integration",
            self.function.function,
            payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
        )
        self.route = apigw.HttpRoute(
            self,
            "DefaultRoute",
            http_api=self.api,
            route_key=apigw.HttpRouteKey.DEFAULT,
            integration=integration,
            authorizer=self.authorizer,
        )
        # The sign-in: how a browser gets the token the authorizer asks for, so it cannot need one.
        self.signin_routes = [
            apigw.HttpRoute(
                self,
                f"SignInRoute{index}",
                http_api=self.api,
                route_key=apigw.HttpRouteKey.with_(path, apigw.HttpMethod.GET),
                integration=integration,
            )
            for index, path in enumerate(SIGNIN_PATHS)
        ]
        # What a person opens: the sign-in. A page opened without a (valid) token is refused by the authorizer
        # with 403 (a Lambda authorizer cannot redirect), so the workspace's URL is its /login.
        self.login_url = f"{self.url}{LOGIN_PATH.lstrip('/')}"
        CfnOutput(self, "Url", key="WorkspaceUrl", value=self.login_url,
                  description="Open the workspace here: the app's /login starts Cognito's hosted sign-in (PKCE)")
        CfnOutput(self, "ApiUrl", key="WorkspaceApiUrl", value=self.url,
                  description="The workspace's base URL, for API callers with a Bearer access token")
        CfnOutput(self, "UserPoolId", key="WorkspaceUserPoolId", value=self.user_pool.user_pool_id,
                  description="Create users here (aws cognito-idp admin-create-user) and add them to a group")
        CfnOutput(self, "FunctionName", key="WorkspaceFunctionName", value=self.function.function.function_name)
