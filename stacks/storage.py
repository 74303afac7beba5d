"""PHI stores: the input and artifacts buckets, the encounter table and its backups, the search domain
(stacks/search.py), plus the access-log bucket.

Every data store is encrypted with the project key and retained when the stack is deleted (PHI).
Stores with a fixed name (the backup vault, the search domain) are deleted when a failed first
deploy rolls back, so that the retry can create them again (docs/operations.md).
The access-log bucket is the exception to KMS: S3 server access logging cannot deliver to a bucket
whose default encryption is SSE-KMS, so it uses SSE-S3 (acknowledged in nag.py).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from medscribe.adapters.encounters import INDEXES, TTL_ATTRIBUTE
from medscribe.domain.selfheal import CLM_TRAINING_PREFIX
from medscribe.settings import PipelineSettings
from stacks.search import SearchDomain
from stacks.security import deployment_id

ABORT_INCOMPLETE_UPLOADS_DAYS = 7
# Daily AWS Backup recovery points, kept as long as the table's point-in-time recovery window.
BACKUP_RETENTION_DAYS = 35


def _secure_bucket(
    scope: Construct,
    construct_id: str,
    settings: PipelineSettings,
    *,
    key: kms.IKey | None,
    access_logs: s3.IBucket | None = None,
    log_prefix: str | None = None,
    expire_days: int | None = None,
) -> s3.Bucket:
    """A TLS-only, private, versioned bucket; SSE-KMS with a bucket key when `key` is given, else SSE-S3."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        bucket_key_enabled=True if key else None,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="retention",
                noncurrent_version_expiration=Duration.days(settings.noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(ABORT_INCOMPLETE_UPLOADS_DAYS),
                expiration=Duration.days(expire_days) if expire_days else None,
            )
        ],
        removal_policy=RemovalPolicy.RETAIN,
    )


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = _secure_bucket(self, "AccessLogs", settings, key=None, expire_days=settings.access_log_days)
        self.input_bucket = _secure_bucket(
            self, "Input", settings, key=key, access_logs=self.access_logs, log_prefix="input/"
        )
        self.artifacts_bucket = _secure_bucket(
            self, "Artifacts", settings, key=key, access_logs=self.access_logs, log_prefix="artifacts/"
        )

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The same indexes as the local runtime's table (medscribe.adapters.encounters.INDEXES).
        for index in INDEXES:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=index.sort, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        # Transcribe reads a custom language model's training text with this role (self-heal loop).
        self.clm_data_role = iam.Role(
            self,
            "LanguageModelDataRole",
            assumed_by=iam.ServicePrincipal(
                "transcribe.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"{settings.prefix}: Amazon Transcribe reads custom language model training text",
        )
        self.clm_data_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.artifacts_bucket.bucket_arn])
        )
        self.clm_data_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[f"{self.artifacts_bucket.bucket_arn}/{CLM_TRAINING_PREFIX}*"]
            )
        )
        self.clm_data_role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))

        # The search index: a copy of the records' text for full-text search (PHI, same key).
        self.search = SearchDomain(self, "Search", settings=settings, key=key)

        vault = backup.BackupVault(
            self,
            "BackupVault",
            backup_vault_name=f"{settings.prefix}-{deployment_id(self)}",  # new for each stack created
            encryption_key=key,
            # deleted by a create rollback (empty then), retained otherwise
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        plan = backup.BackupPlan(
            self,
            "BackupPlan",
            backup_plan_name=settings.prefix,
            backup_vault=vault,
            backup_plan_rules=[
                backup.BackupPlanRule(
                    rule_name="daily",
                    schedule_expression=events.Schedule.cron(hour="3", minute="0"),
                    delete_after=Duration.days(BACKUP_RETENTION_DAYS),
                )
            ],
        )
        self.backup_selection = plan.add_selection(
            "Table", resources=[backup.BackupResource.from_dynamo_db_table(self.table)]
        )

    @property
    def index_arns(self) -> list[str]:
        """Every GSI of the table (read access for whoever queries by status, date or folder)."""
        return [f"{self.table.table_arn}/index/{index.name}" for index in INDEXES]
