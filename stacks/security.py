"""The project's customer-managed KMS key: every store (buckets, table, topic, queues, log groups) uses it.

The key policy keeps CDK's default statement (the account root, so IAM policies decide who in the
account may use the key) and adds the AWS services that use the key on their own behalf:
- CloudWatch Logs, only for this stage's Lambda log groups (encryption-context condition);
- CloudWatch alarms, which publish to the encrypted notification topic.
S3 (event notifications) and EventBridge (rule targets) get their statements from CDK when the
queues are wired (`SqsDestination`, `SqsQueue`), see messaging.py.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def lambda_log_group_name(prefix: str, function_name: str) -> str:
    """The one naming rule for function log groups; the key policy relies on it."""
    return f"/aws/lambda/{prefix}-{function_name}"


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
        log_groups = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{lambda_log_group_name(prefix, '*')}"
        )
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
