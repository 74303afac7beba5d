"""The medscribe stack: shared stores, then everything per route and per endpoint, generated from
`ROUTES` and `ENDPOINTS`.

Nothing is wired by hand outside the loops over the two tables (the alarms on the pipeline's own
metrics, stacks/alarms.py, read the route table too): each route gets its queue, DLQ,
alarm, trigger (S3 notification, EventBridge rule or EventBridge Scheduler schedule), function, role,
log group and event source; each endpoint its function, role, log group and IAM-authorised function URL.
With `workspace_enabled`, the clinician workspace (stacks/workspace.py) adds its user pool, HTTP API and
function, built like an endpoint's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from medscribe.routes import (
    ENDPOINTS,
    ROUTES,
    WORKSPACE,
    WORKSPACE_AUTHORIZER,
    Access,
    Endpoint,
    Route,
    S3Trigger,
    ScheduleTrigger,
)
from medscribe.settings import ENV, PipelineSettings, function_env
from stacks.alarms import MetricAlarms
from stacks.functions import EndpointFunction, HandlerFunction, RouteFunction
from stacks.layers import Layers
from stacks.messaging import Notifications, RouteQueue
from stacks.naming import construct_id
from stacks.security import ProjectKey
from stacks.storage import Storage
from stacks.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
# Event rules may send to an encrypted queue only from this account (queue policy aws:SourceAccount).
# Without this flag CDK grants events.amazonaws.com unconditionally on encrypted queues.
EVENTS_TARGET_QUEUE_SAME_ACCOUNT = "@aws-cdk/aws-events:eventsTargetQueueSameAccount"


@dataclass(frozen=True)
class RouteResources:
    route: Route
    queue: RouteQueue
    function: RouteFunction


def check_routes(routes: Sequence[Route], endpoints: Sequence[Endpoint] = ()) -> None:
    """Fail synth on a route table S3 or CloudFormation would reject at deploy time.

    Routes and endpoints share one namespace: the name makes the function and log group names."""
    names = [route.name for route in routes] + [endpoint.name for endpoint in (*endpoints, WORKSPACE)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate route or endpoint names: {duplicates}")
    ids = [construct_id(name) for name in names]
    if len(set(ids)) != len(ids):
        raise ValueError(f"route or endpoint names collide once turned into construct ids: {names}")
    prefixes = [
        (route.name, prefix)
        for route in routes
        if isinstance(route.trigger, S3Trigger)
        for prefix in route.trigger.prefixes
    ]
    for (name_a, a), (name_b, b) in combinations(prefixes, 2):
        # S3 rejects overlapping ObjectCreated filters on one bucket.
        if a.startswith(b) or b.startswith(a):
            raise ValueError(f"S3 prefixes overlap: {name_a}:{a!r} and {name_b}:{b!r}")
    for route in routes:
        for setting in _settings_named_by(route):
            if setting not in PipelineSettings.model_fields:
                raise ValueError(f"route {route.name!r} names an unknown setting {setting!r}")


def _settings_named_by(route: Route) -> list[str]:
    named = [route.concurrency_setting]
    if isinstance(route.trigger, ScheduleTrigger):
        named += [route.trigger.interval_setting, route.trigger.local_interval_setting]
    return named


class MedscribeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        stack_id: str,
        *,
        settings: PipelineSettings,
        routes: Sequence[Route] = ROUTES,
        endpoints: Sequence[Endpoint] = ENDPOINTS,
        root: Path = ROOT,
        lambdas_dir: Path | None = None,
    ) -> None:
        super().__init__(
            scope,
            stack_id,
            stack_name=settings.prefix,
            description="medscribe: serverless clinical documentation pipeline",
        )
        self.node.set_context(EVENTS_TARGET_QUEUE_SAME_ACCOUNT, True)
        check_routes(routes, endpoints)
        self.settings = settings
        lambdas_dir = lambdas_dir or root / "lambdas"

        self.security = ProjectKey(self, "Security", prefix=settings.prefix)
        key = self.security.key
        self.storage = Storage(self, "Storage", settings=settings, key=key)
        self.notifications = Notifications(self, "Notifications", settings=settings, key=key)
        topic = self.notifications.topic
        self.metric_alarms = MetricAlarms(self, "MetricAlarms", settings=settings, routes=routes, topic=topic)
        web: list[Endpoint] = [WORKSPACE, WORKSPACE_AUTHORIZER] if settings.workspace_enabled else []
        self.layers = Layers(self, "Layers", root=root, handlers=[*routes, *endpoints, *web])
        environment = function_env(
            table=self.storage.table.table_name,
            input_bucket=self.storage.input_bucket.bucket_name,
            artifacts_bucket=self.storage.artifacts_bucket.bucket_name,
            topic_arn=topic.topic_arn,
            kms_key_arn=key.key_arn,
            settings=settings,
        )
        # Only the functions that write or query the index know (and wait at deploy time for) the search domain.
        # Resources only some functions use are in only their environment (and deploy-time dependencies).
        extra_environment = {
            Access.SEARCH_WRITE: {ENV.SEARCH_URL: self.storage.search.url},
            Access.SEARCH_QUERY: {ENV.SEARCH_URL: self.storage.search.url},
            Access.TRANSCRIBE_CUSTOMIZE: {ENV.CLM_ROLE_ARN: self.storage.clm_data_role.role_arn},
        }

        def environment_for(handler: Route | Endpoint) -> dict[str, str]:
            return environment | {
                name: value for access, extra in extra_environment.items() if access in handler.access
                for name, value in extra.items()
            }

        self.routes: dict[str, RouteResources] = {}
        self.endpoints: dict[str, EndpointFunction] = {}
        for route in routes:
            cid = construct_id(route.name)
            queue = RouteQueue(
                self,
                f"{cid}Queue",
                route=route,
                settings=settings,
                key=key,
                topic=topic,
                input_bucket=self.storage.input_bucket,
                table=self.storage.table,
            )
            function = RouteFunction(
                self,
                f"{cid}Function",
                route=route,
                settings=settings,
                code_dir=lambdas_dir / route.name,
                layers=self.layers,
                environment=environment_for(route),
                key=key,
                storage=self.storage,
                topic=topic,
                queue=queue.queue,
            )
            self.routes[route.name] = RouteResources(route, queue, function)
            CfnOutput(self, f"{cid}QueueUrl", value=queue.queue.queue_url)
            CfnOutput(self, f"{cid}DeadLetterQueueUrl", value=queue.dead_letter_queue.queue_url)
            CfnOutput(self, f"{cid}FunctionName", value=function.function.function_name)
            if queue.rule is not None:
                CfnOutput(self, f"{cid}RuleName", value=queue.rule.rule_name)
            if queue.schedule is not None:
                CfnOutput(self, f"{cid}ScheduleName", value=queue.schedule.schedule_name)
            if queue.pipe is not None:
                CfnOutput(self, f"{cid}PipeName", value=queue.pipe.ref)

        for endpoint in endpoints:
            cid = construct_id(endpoint.name)
            self.endpoints[endpoint.name] = endpoint_function = EndpointFunction(
                self,
                f"{cid}Endpoint",
                endpoint=endpoint,
                settings=settings,
                code_dir=lambdas_dir / endpoint.name,
                layers=self.layers,
                environment=environment_for(endpoint),
                key=key,
                storage=self.storage,
                topic=topic,
            )
            CfnOutput(self, f"{cid}EndpointFunctionName", value=endpoint_function.function.function_name)
            CfnOutput(
                self,
                f"{cid}EndpointUrl",
                value=endpoint_function.url.url,
                description=f"{endpoint.description} (AuthType AWS_IAM: sign requests with SigV4, service lambda)",
            )

        self.workspace: Workspace | None = None
        if settings.workspace_enabled:
            self.workspace = Workspace(
                self,
                "Workspace",
                settings=settings,
                layers=self.layers,
                environment=environment_for(WORKSPACE),
                key=key,
                storage=self.storage,
                topic=topic,
                code_dir=lambdas_dir / WORKSPACE.name,
                authorizer_code_dir=lambdas_dir / WORKSPACE_AUTHORIZER.name,
            )

        CfnOutput(self, "InputBucketName", value=self.storage.input_bucket.bucket_name)
        CfnOutput(self, "ArtifactsBucketName", value=self.storage.artifacts_bucket.bucket_name)
        CfnOutput(self, "AccessLogBucketName", value=self.storage.access_logs.bucket_name)
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(
            self,
            "SearchUrl",
            value=self.storage.search.url,
            description="OpenSearch domain endpoint (SigV4, service es): `medscribe search --aws` reads it",
        )
        CfnOutput(self, "TopicArn", value=topic.topic_arn)
        CfnOutput(self, "KmsKeyArn", value=key.key_arn)
        CfnOutput(
            self,
            "QueueConcurrencyNeeded",
            value=str(sum(route.max_concurrency(settings) for route in routes)),
            description="Sum of the event source mappings' maximum concurrency: the account's unreserved Lambda "
                        "concurrency (aws lambda get-account-settings) must be at least this, or batches are "
                        "throttled back to their queues (README, Deploy to AWS)",
        )

    @property
    def functions(self) -> dict[str, HandlerFunction]:
        """Every handler function, routes', endpoints' and the workspace's, by name."""
        web = ({WORKSPACE.name: self.workspace.function,
                WORKSPACE_AUTHORIZER.name: self.workspace.authorizer_function} if self.workspace else {})
        return {**{name: r.function for name, r in self.routes.items()}, **self.endpoints, **web}
