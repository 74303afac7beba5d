"""Lambda layers and one function per route: its own role, log group, grants and SQS event source.

Roles carry no managed policies: each gets write access to its own log group, X-Ray, consume access
to its route queue (added by `SqsEventSource`) and the route's `Access` grants scoped to the exact
resources. Concurrency is capped at the event source mapping (`max_concurrency`), the function's
only invoker; reserved concurrency stays unset because new accounts have low concurrency limits.

Each function gets two layers: the `medscribe` package and the dependency layer built from its
route's requirements file (one layer per distinct file, shared by the routes that name it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from medscribe.routes import Access, Route
from medscribe.settings import PipelineSettings
from stacks import naming
from stacks.bundling import dependency_layer_code
from stacks.security import lambda_log_group_name
from stacks.storage import Storage

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Wheels matching ARCHITECTURE; python3.14 runs on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 fits too.
LAYER_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
MAX_BATCHING_WINDOW = Duration.seconds(1)
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info"]

# PipelineSettings.log_retention_days allows exactly the retention periods CloudWatch Logs accepts.
RETENTION: dict[int, logs.RetentionDays] = {
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

TABLE_READ_WRITE_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]
OBJECT_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
OBJECT_WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]
# Neither start action supports resource-level permissions (Service Authorization Reference: no
# resource type), so they are granted on "*" and pinned by Transcribe's request condition keys.
TRANSCRIBE_START_ACTIONS = ["transcribe:StartMedicalTranscriptionJob", "transcribe:StartTranscriptionJob"]
TRANSCRIBE_READ_ACTIONS = ["transcribe:GetMedicalTranscriptionJob", "transcribe:GetTranscriptionJob"]
TRANSCRIBE_LIST_ACTIONS = ["transcribe:ListTranscriptionJobs"]  # no resource-level permissions either
TRANSCRIBE_JOB_RESOURCE_TYPES = ("transcription-job", "medical-transcription-job")
# Transcribe writes its output here with the caller's permissions (domain.transcription.TranscriptKeys).
TRANSCRIPTS_PREFIX = "transcripts/"
# Access that needs another: Transcribe reads the input media with the caller's permissions.
IMPLIED_ACCESS: dict[Access, frozenset[Access]] = {Access.TRANSCRIBE_START: frozenset({Access.INPUT_READ})}
# Write access for which a service encrypts with the project key on the function's behalf.
ENCRYPTING_ACCESS = {
    Access.TABLE_READ_WRITE: "DynamoDB",
    Access.ARTIFACTS_READ_WRITE: "S3 (SSE-KMS)",
    Access.TOPIC_PUBLISH: "SNS",
    Access.TRANSCRIBE_START: "Amazon Transcribe (transcript output)",
}


def effective_access(access: frozenset[Access]) -> frozenset[Access]:
    """A route's access with what it implies (starting a transcription implies reading the input)."""
    return access.union(*(IMPLIED_ACCESS.get(item, frozenset()) for item in access))


def transcription_job_arns(scope: Construct, prefix: str) -> list[str]:
    """This stage's Transcribe job ARNs (standard and Medical): job names are `<prefix>-<encounter id>`."""
    stack = Stack.of(scope)
    return [
        stack.format_arn(
            service="transcribe",
            resource=resource_type,
            resource_name=f"{prefix}-*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for resource_type in TRANSCRIBE_JOB_RESOURCE_TYPES
    ]


class Layers(Construct):
    """The `medscribe` package layer and one dependency layer per requirements file (built without Docker)."""

    def __init__(self, scope: Construct, construct_id: str, *, root: Path, routes: Sequence[Route]) -> None:
        super().__init__(scope, construct_id)
        package_dir = root / "layers" / "medscribe"
        if not (package_dir / "python" / "medscribe" / "__init__.py").is_file():
            raise FileNotFoundError(f"{package_dir}/python/medscribe is missing: the code layer needs it")
        self.code = lambda_.LayerVersion(
            self,
            "Code",
            description="medscribe package (domain, services, adapters)",
            code=lambda_.Code.from_asset(str(package_dir), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        # Keyed by the requirements path as routes.py writes it (relative to the project root).
        self.dependencies: dict[str, lambda_.LayerVersion] = {}
        for requirements in sorted({route.requirements for route in routes}):
            path = root / requirements
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: a route's dependency layer needs it")
            self.dependencies[requirements] = lambda_.LayerVersion(
                self,
                dependency_layer_id(requirements),
                description=f"third-party runtime dependencies ({requirements})",
                code=dependency_layer_code(path, RUNTIME, LAYER_PLATFORMS),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
            )

    def for_route(self, route: Route) -> list[lambda_.ILayerVersion]:
        return [self.dependencies[route.requirements], self.code]


def dependency_layer_id(requirements: str) -> str:
    """`layers/deps/requirements.txt` -> `Deps`: the layer is named after the folder of its file."""
    path = Path(requirements)
    name = path.parent.name if path.name == "requirements.txt" else path.stem
    return naming.construct_id(name)


class RouteFunction(Construct):
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
        super().__init__(scope, construct_id)
        if not (code_dir / "handler.py").is_file():
            raise FileNotFoundError(f"route {route.name!r}: {code_dir / 'handler.py'} is missing")
        function_name = f"{settings.prefix}-{route.name}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: logs, X-Ray, its queue and its route's grants only",
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=lambda_log_group_name(settings.prefix, route.name),
            retention=RETENTION[settings.log_retention_days],
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=route.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDES),
            layers=layers.for_route(route),
            memory_size=route.memory_mb,
            timeout=Duration.seconds(route.timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": f"medscribe-{route.name}",
                "POWERTOOLS_METRICS_NAMESPACE": "medscribe",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # PHI-safe defaults even if a decorator forgets them.
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            },
        )
        grant_access(self.role, route.access, key=key, storage=storage, topic=topic, prefix=settings.prefix)
        self.event_source = event_sources.SqsEventSource(
            queue,
            batch_size=settings.batch_size,
            max_batching_window=MAX_BATCHING_WINDOW,
            max_concurrency=route.max_concurrency(settings),
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)


def grant_access(
    role: iam.IRole,
    access: frozenset[Access],
    *,
    key: kms.IKey,
    storage: Storage,
    topic: sns.ITopic,
    prefix: str,
) -> None:
    """Turn a route's `Access` set into IAM statements on the exact resources it names."""
    access = effective_access(access)
    artifacts_arn = storage.artifacts_bucket.bucket_arn
    for item in sorted(access):
        match item:
            case Access.TABLE_READ_WRITE:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=TABLE_READ_WRITE_ACTIONS,
                        resources=[storage.table.table_arn, storage.by_status_index_arn],
                    )
                )
            case Access.INPUT_READ:
                _grant_bucket(role, storage.input_bucket.bucket_arn, OBJECT_READ_ACTIONS)
            case Access.ARTIFACTS_READ_WRITE:
                _grant_bucket(role, artifacts_arn, OBJECT_READ_ACTIONS + OBJECT_WRITE_ACTIONS)
            case Access.TOPIC_PUBLISH:
                role.add_to_principal_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn]))
            case Access.TRANSCRIBE_START:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=TRANSCRIBE_START_ACTIONS,
                        resources=["*"],
                        # Jobs may only write their transcript to transcripts/ in the artifacts
                        # bucket, encrypted with the project key (a request without the key is denied).
                        conditions={
                            "StringEquals": {
                                "transcribe:OutputBucketName": storage.artifacts_bucket.bucket_name,
                                "transcribe:OutputEncryptionKMSKeyId": key.key_arn,
                            },
                            "StringLike": {"transcribe:OutputKey": f"{TRANSCRIPTS_PREFIX}*"},
                        },
                    )
                )
                if Access.ARTIFACTS_READ_WRITE not in access:
                    # Transcribe writes the output with the caller's permissions.
                    role.add_to_principal_policy(
                        iam.PolicyStatement(
                            actions=["s3:PutObject"], resources=[f"{artifacts_arn}/{TRANSCRIPTS_PREFIX}*"]
                        )
                    )
            case Access.TRANSCRIBE_READ:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=TRANSCRIBE_READ_ACTIONS, resources=transcription_job_arns(role.stack, prefix)
                    )
                )
                role.add_to_principal_policy(iam.PolicyStatement(actions=TRANSCRIBE_LIST_ACTIONS, resources=["*"]))
            case _:
                assert_never(item)
    # Every store is encrypted with the project key: reading needs Decrypt, writing also data keys.
    if access & ENCRYPTING_ACCESS.keys():
        key.grant_encrypt_decrypt(role)
    elif access:
        key.grant_decrypt(role)


def _grant_bucket(role: iam.IRole, bucket_arn: str, object_actions: list[str]) -> None:
    # ListBucket lets a missing key surface as 404 (NoSuchKey) instead of 403.
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn]))
    role.add_to_principal_policy(iam.PolicyStatement(actions=object_actions, resources=[f"{bucket_arn}/*"]))
