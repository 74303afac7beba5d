"""One function per route and one per endpoint: each with its own role, log group and grants.

Roles carry no managed policies: each gets write access to its own log group, X-Ray and the
`Access` grants of its route or endpoint, scoped to the exact resources (stacks/grants.py).
- A route's function also consumes its route queue (added by `SqsEventSource`). Concurrency is
  capped at the event source mapping (`max_concurrency`), the function's only invoker.
- An endpoint's function sits behind a Lambda function URL with AuthType AWS_IAM (never NONE, no
  CORS): only IAM principals of this account whose own policies allow it may call it; the function
  gets no resource-based policy.
Reserved concurrency stays unset because new accounts have low concurrency limits.

Each function gets two layers (stacks/layers.py): the `medscribe` package and the dependency layer
built from its requirements file.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from medscribe.routes import Endpoint, Route
from medscribe.settings import PipelineSettings
from stacks import naming
from stacks.grants import effective_access, grant_access
from stacks.layers import ARCHITECTURE, ASSET_EXCLUDES, RUNTIME, Layers
from stacks.security import RETENTION, deployment_id, lambda_log_group_name
from stacks.storage import Storage

MAX_BATCHING_WINDOW = Duration.seconds(1)


class HandlerFunction(Construct):
    """A route's or endpoint's handler: its own role (no managed policies), KMS-encrypted log group
    with retention, active tracing, both layers, the shared environment and the `Access` grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: Route | Endpoint,
        settings: PipelineSettings,
        code_dir: Path,
        layers: Layers,
        environment: dict[str, str],
        key: kms.IKey,
        storage: Storage,
        topic: sns.ITopic,
        role_description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = handler
        self.kind = "route" if isinstance(handler, Route) else "endpoint"
        # What the role is granted: the declared access with what it implies (see effective_access).
        self.access = effective_access(handler.access)
        if not (code_dir / "handler.py").is_file():
            raise FileNotFoundError(f"{self.kind} {handler.name!r}: {code_dir / 'handler.py'} is missing")
        function_name = f"{settings.prefix}-{handler.name}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: {role_description}",
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # named per stack (deployment_id): a stage deleted and deployed again gets new log groups
            log_group_name=lambda_log_group_name(settings.prefix, handler.name, deployment_id(self)),
            retention=RETENTION[settings.log_retention_days],
            encryption_key=key,
            # deleted by a create rollback (a retry would fail on it), retained otherwise
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=handler.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDES),
            layers=layers.for_handler(handler),
            memory_size=handler.memory_mb,
            timeout=Duration.seconds(handler.timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": naming.service_name(handler.name),
                "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # PHI-safe defaults even if a decorator forgets them.
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            },
        )
        grant_access(self.role, handler.access, key=key, storage=storage, topic=topic, settings=settings)


class RouteFunction(HandlerFunction):
    """The handler of one route, fed by the route's queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        route: Route,
        settings: PipelineSettings,
        code_dir: Path,
        layers: Layers,
        environment: dict[str, str],
        key: kms.IKey,
        storage: Storage,
        topic: sns.ITopic,
        queue: sqs.IQueue,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            handler=route,
            settings=settings,
            code_dir=code_dir,
            layers=layers,
            environment=environment,
            key=key,
            storage=storage,
            topic=topic,
            role_description="logs, X-Ray, its queue and its route's grants only",
        )
        self.route = route
        self.event_source = event_sources.SqsEventSource(
            queue,
            batch_size=settings.batch_size,
            max_batching_window=MAX_BATCHING_WINDOW,
            max_concurrency=route.max_concurrency(settings),
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)


class EndpointFunction(HandlerFunction):
    """The handler of one endpoint, behind an IAM-authorised function URL (no CORS, no resource policy)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: Endpoint,
        settings: PipelineSettings,
        code_dir: Path,
        layers: Layers,
        environment: dict[str, str],
        key: kms.IKey,
        storage: Storage,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            handler=endpoint,
            settings=settings,
            code_dir=code_dir,
            layers=layers,
            environment=environment,
            key=key,
            storage=storage,
            topic=topic,
            role_description="logs, X-Ray and its endpoint's grants only",
        )
        self.endpoint = endpoint
        # AWS_IAM: callers sign requests (SigV4) and need lambda:InvokeFunctionUrl and
        # lambda:InvokeFunction on this function in their own policies. No grant is made here, so no
        # principal outside this account's IAM can call it. Browsers are not callers: no CORS.
        self.url = self.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
