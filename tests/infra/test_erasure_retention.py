"""What `medscribe erase --aws` reports as aging out is what the synthesized stack keeps (issue 14, item 6):
the retention constants of medscribe.services.erasure against the template, and the dates it computes."""

from __future__ import annotations

from datetime import date

from medscribe.services.erasure import BACKUP_RETENTION_DAYS, DLQ_RETENTION_DAYS, PITR_DAYS, retention
from medscribe.settings import PipelineSettings
from tests.infra.helpers import Synth


def test_the_erasure_report_uses_the_stacks_retention(synth: Synth, settings: PipelineSettings) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    pitr = table["Properties"]["PointInTimeRecoverySpecification"]
    assert pitr["PointInTimeRecoveryEnabled"] is True
    assert pitr.get("RecoveryPeriodInDays", 35) == PITR_DAYS  # absent: DynamoDB's default, 35 days
    (plan,) = synth.resources("AWS::Backup::BackupPlan").values()
    assert [rule["Lifecycle"]["DeleteAfterDays"] for rule in plan["Properties"]["BackupPlan"]["BackupPlanRule"]] \
        == [BACKUP_RETENTION_DAYS]
    groups = synth.resources("AWS::Logs::LogGroup").values()
    assert {group["Properties"]["RetentionInDays"] for group in groups} == {settings.log_retention_days}
    rules = [rule for bucket in synth.resources("AWS::S3::Bucket").values()
             for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]]
    assert {rule["NoncurrentVersionExpiration"]["NoncurrentDays"] for rule in rules} == \
        {settings.noncurrent_version_days}
    assert {rule["ExpirationInDays"] for rule in rules if "ExpirationInDays" in rule} == {settings.access_log_days}
    dlqs = [q for q in synth.resources("AWS::SQS::Queue").values() if "RedrivePolicy" not in q["Properties"]
            and "MessageRetentionPeriod" in q["Properties"]]
    assert dlqs
    assert {q["Properties"]["MessageRetentionPeriod"] for q in dlqs} == {DLQ_RETENTION_DAYS * 86400}
    # no snapshot options: OpenSearch takes hourly automated snapshots, kept 14 days by the service
    (domain,) = synth.resources("AWS::OpenSearchService::Domain").values()
    assert "SnapshotOptions" not in domain["Properties"]


def test_the_dates_follow_from_today_and_the_settings() -> None:
    settings = PipelineSettings(access_log_days=365, noncurrent_version_days=90, log_retention_days=365)
    gone = {item.store: item.gone_by for item in retention(settings, date(2026, 12, 3))}
    assert gone["DynamoDB point-in-time recovery"] == date(2027, 1, 7)
    assert gone["AWS Backup daily recovery points"] == date(2027, 1, 7)
    assert gone["OpenSearch automated snapshots"] == date(2026, 12, 17)
    assert gone["S3 server access logs"] == date(2028, 3, 2)  # 365 days, then 90 as a non-current version
    assert gone["CloudWatch Logs (functions, search domain)"] == date(2027, 12, 3)
    assert gone["emails already sent (SNS)"] is None
