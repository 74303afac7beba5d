"""The project's customer-managed KMS key: every store (buckets, table, topic, queues, log groups) uses it.

The key policy keeps CDK's default statement (the account root, so IAM policies decide who in the
account may use the key) and adds the AWS services that use the key on their own behalf:
- CloudWatch Logs, only for this stage's Lambda, search-domain and workspace API access log groups
  (encryption-context condition);
- CloudWatch alarms, which publish to the encrypted notification topic.
S3 (event notifications) and EventBridge (rule targets) get their statements from CDK when the
queues are wired (`SqsDestination`, `SqsQueue`), see messaging.py.
"""

from __future__ import annotations

from aws_cdk import Aws, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

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


def deployment_id(scope: Construct) -> str:
    """Eight hex characters that differ for every stack CloudFormation creates (the first group of the
    GUID in the stack's id), as a deploy-time token. Resources kept after the stack is deleted (log
    groups, the search domain, the backup vault) carry it in their names, so a stage deleted and
    deployed again never collides with its own retained leftovers (RELIABILITY.md)."""
    return Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Stack.of(scope).stack_id))))


def lambda_log_group_name(prefix: str, function_name: str, deployment: str = "*") -> str:
    """The one naming rule for function log groups (`deployment`: `deployment_id`); the key policy
    relies on it with the wildcard."""
    return f"/aws/lambda/{prefix}-{function_name}-{deployment}"


def workspace_access_log_group_name(prefix: str, deployment: str = "*") -> str:
    """The one naming rule for the workspace HTTP API's access log group; the key policy relies on it."""
    return f"/aws/apigateway/{prefix}/{deployment}/workspace-access"


def opensearch_log_group_name(prefix: str, kind: str, deployment: str = "*") -> str:
    """The one naming rule for the search domain's log groups; the key policy relies on it."""
    return f"/aws/opensearch/{prefix}/{deployment}/{kind}"


class ProjectKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}",
            description=f"{prefix}: encrypts PHI stores, queues, topic and logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        log_groups = [
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{name}"
            for name in (lambda_log_group_name(prefix, "*"), opensearch_log_group_name(prefix, "*", "*"),
                         workspace_access_log_group_name(prefix))
        ]
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsForStageLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                # No condition: AWS documents none for this call; the topic policy limits publishers
                # to this account's alarms (messaging.py).
                resources=["*"],
            )
        )
