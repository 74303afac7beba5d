"""KMS key, buckets, table and backups of the synthesized stack."""

from __future__ import annotations

import pytest

from medscribe.adapters.encounters import table_definition
from medscribe.settings import PipelineSettings
from stacks.storage import ABORT_INCOMPLETE_UPLOADS_DAYS, BACKUP_RETENTION_DAYS
from tests.infra.helpers import Synth, getatt, ref, statements

pytestmark = pytest.mark.infra


def key_id(synth: Synth) -> str:
    (logical_id,) = synth.resources("AWS::KMS::Key")
    return logical_id


def bucket_id(synth: Synth, construct: str) -> str:
    storage = synth.stack.storage
    bucket = {"input": storage.input_bucket, "artifacts": storage.artifacts_bucket, "logs": storage.access_logs}
    return str(synth.stack.resolve(bucket[construct].node.default_child.logical_id))  # type: ignore[union-attr]


def test_one_customer_managed_key_with_rotation_retained(synth: Synth) -> None:
    (key,) = synth.resources("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_key_policy_lets_services_use_the_key_only_as_scoped(synth: Synth) -> None:
    (key,) = synth.resources("AWS::KMS::Key").values()
    by_sid = {statement.get("Sid"): statement for statement in statements(key["Properties"]["KeyPolicy"])}
    logs = by_sid["CloudWatchLogsForStageLogGroups"]
    assert logs["Principal"]["Service"] == {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    condition = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    prefix = synth.stack.settings.prefix
    assert [arn["Fn::Join"][1][-1] for arn in condition] == [
        f":log-group:/aws/lambda/{prefix}-*-*",  # function log groups: <prefix>-<function>-<deployment id>
        f":log-group:/aws/opensearch/{prefix}/*/*",  # the search domain's: <prefix>/<deployment id>/<kind>
        f":log-group:/aws/apigateway/{prefix}/*/workspace-access",  # the workspace API's access logs
    ]
    assert by_sid["CloudWatchAlarmsPublishToEncryptedTopic"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    s3 = by_sid["S3NotificationsToEncryptedQueues"]
    assert s3["Principal"] == {"Service": "s3.amazonaws.com"}
    assert sorted(s3["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    principals = [statement["Principal"] for statement in statements(key["Properties"]["KeyPolicy"])]
    assert {"AWS": "*"} not in principals
    assert "*" not in principals


def test_every_bucket_is_encrypted_private_versioned_and_retained(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    for logical_id, bucket in buckets.items():
        properties = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain", logical_id
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id


@pytest.mark.parametrize("name", ["input", "artifacts"])
def test_data_buckets_use_the_project_key_and_log_to_the_log_bucket(synth: Synth, name: str) -> None:
    properties = synth.template["Resources"][bucket_id(synth, name)]["Properties"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": getatt(key_id(synth)),
    }
    assert rule["BucketKeyEnabled"] is True
    assert properties["LoggingConfiguration"] == {
        "DestinationBucketName": ref(bucket_id(synth, "logs")),
        "LogFilePrefix": f"{name}/",
    }


def test_access_log_bucket_uses_sse_s3_and_expires_logs(synth: Synth, settings: PipelineSettings) -> None:
    properties = synth.template["Resources"][bucket_id(synth, "logs")]["Properties"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    (lifecycle,) = properties["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == settings.access_log_days
    assert "LoggingConfiguration" not in properties


def test_lifecycle_rules_on_every_bucket(synth: Synth, settings: PipelineSettings) -> None:
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any(
            rule["Status"] == "Enabled"
            and rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": settings.noncurrent_version_days}
            and rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOADS_DAYS}
            for rule in rules
        ), logical_id


def test_every_bucket_policy_denies_insecure_transport(synth: Synth) -> None:
    policies = {
        policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in synth.resources("AWS::S3::BucketPolicy").values()
    }
    assert set(policies) == set(synth.resources("AWS::S3::Bucket"))
    for bucket, document in policies.items():
        denies = [
            statement
            for statement in statements(document)
            if statement["Effect"] == "Deny"
            and statement["Action"] == "s3:*"
            and statement["Principal"] == {"AWS": "*"}
            and statement["Condition"].get("Bool") == {"aws:SecureTransport": "false"}
        ]
        assert denies, bucket
        old_tls = [
            statement
            for statement in statements(document)
            if statement["Effect"] == "Deny" and statement["Condition"].get("NumericLessThan") == {"s3:TlsVersion": 1.2}
        ]
        assert old_tls, bucket


def test_table_is_encrypted_recoverable_and_streamed(synth: Synth) -> None:
    (table_id,) = synth.resources("AWS::DynamoDB::Table")
    table = synth.template["Resources"][table_id]
    properties = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"] == {
        "KMSMasterKeyId": getatt(key_id(synth)),
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # the deployed table has exactly the local runtime's indexes and key attributes
    local = table_definition("t")
    assert properties["GlobalSecondaryIndexes"] == local["GlobalSecondaryIndexes"]
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(local["AttributeDefinitions"], key=str)
    assert [i["IndexName"] for i in properties["GlobalSecondaryIndexes"]] == ["by-status", "by-day", "by-folder"]


def test_table_is_in_a_daily_backup_plan_with_an_encrypted_vault(synth: Synth) -> None:
    (table_id,) = synth.resources("AWS::DynamoDB::Table")
    (vault,) = synth.resources("AWS::Backup::BackupVault").values()
    assert vault["Properties"]["EncryptionKeyArn"] == getatt(key_id(synth))
    # retained on stack deletion; deleted by a create rollback (fixed name, empty then)
    assert (vault["DeletionPolicy"], vault["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    (plan,) = synth.resources("AWS::Backup::BackupPlan").values()
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["Lifecycle"] == {"DeleteAfterDays": BACKUP_RETENTION_DAYS}
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    (selection,) = synth.resources("AWS::Backup::BackupSelection").values()
    assert selection["Properties"]["BackupSelection"]["Resources"] == [getatt(table_id)]
