"""The search domain: Amazon OpenSearch Service, fed by the index route (DynamoDB stream -> OpenSearch).

- Encryption at rest with the project key, node-to-node encryption, HTTPS only with TLS 1.2 (PFS).
- Access: a resource policy that names the roles allowed to call the domain's HTTP API (the index
  function's role on every path; the workspace function's on the index's `_search` path and, for an
  admin's erasure, `_bulk`) — no open or anonymous access. Every request is SigV4-signed; a role or user in
  this account that should only *query* (e.g. `medscribe search --aws`) needs an IAM policy with
  es:ESHttpGet/Post on the domain, which is how same-account IAM access to a domain works.
- Not in a VPC, on purpose (README "Search domain"): the functions are not in a VPC either (they call
  S3, DynamoDB, Transcribe and Bedrock, which would need NAT or five interface endpoints), and a
  public endpoint that accepts only signed requests from named roles gives the same data protection
  here. The nag acknowledgements in nag.py carry this reason.
- Logs: application (error), search slow and index slow logs to log groups encrypted with the project
  key; the log-delivery resource policy is written here (CDK's default would add a custom-resource
  Lambda function).
- Sizing from settings (`search_*`); two or more data nodes are spread over two Availability Zones.
- Retained when the stack is deleted: the index holds PHI. The domain and its log groups have fixed
  names, so a failed first deploy deletes them on rollback (RETAIN_ON_UPDATE_OR_DELETE), or its
  retry would fail on them (docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from medscribe.settings import PipelineSettings
from stacks.security import RETENTION, deployment_id, opensearch_log_group_name

# The HTTP actions the index route uses (index template, bulk, search, delete by id).
SEARCH_HTTP_ACTIONS = ["es:ESHttpDelete", "es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
LOG_KINDS = ("application", "search-slow", "index-slow")


class SearchDomain(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: PipelineSettings, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_groups = {
            kind: logs.LogGroup(
                self,
                f"{kind.title().replace('-', '')}Logs",
                log_group_name=opensearch_log_group_name(settings.prefix, kind, deployment_id(self)),
                encryption_key=key,
                retention=RETENTION[settings.log_retention_days],
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            )
            for kind in LOG_KINDS
        }
        self.log_policy = logs.CfnResourcePolicy(
            self,
            "LogDelivery",
            policy_name=f"{settings.prefix}-opensearch-logs",
            policy_document=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "OpenSearchLogDelivery",
                            "Effect": "Allow",
                            "Principal": {"Service": "es.amazonaws.com"},
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": [f"{group.log_group_arn}" for group in self.log_groups.values()],
                            "Condition": {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                        }
                    ],
                }
            ),
        )
        nodes = settings.search_instance_count
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=domain_name(settings.prefix, deployment_id(self)),
            version=opensearch.EngineVersion.open_search(settings.search_engine_version),
            capacity=opensearch.CapacityConfig(
                data_nodes=nodes,
                data_node_instance_type=settings.search_instance_type,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(volume_size=settings.search_volume_gb, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=nodes >= 2, availability_zone_count=2)
            if nodes >= 2
            else None,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=self.log_groups["application"],
                slow_search_log_enabled=True,
                slow_search_log_group=self.log_groups["search-slow"],
                slow_index_log_enabled=True,
                slow_index_log_group=self.log_groups["index-slow"],
            ),
            suppress_logs_resource_policy=True,
            enable_auto_software_update=True,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.domain.node.add_dependency(self.log_policy)
        self.name = domain_name(settings.prefix, deployment_id(self))
        self._grants: dict[tuple[tuple[str, ...], tuple[str, ...]], list[iam.IRole]] = {}

    @property
    def url(self) -> str:
        return f"https://{self.domain.domain_endpoint}"

    def allow(self, role: iam.IRole, actions: Sequence[str] = SEARCH_HTTP_ACTIONS,
              paths: Sequence[str] = ("*",)) -> None:
        """Let `role` make these HTTP calls on these paths of the domain (`*`: every path; `<index>/_search`: a
        query): the role's own policy, and the domain's resource policy, one statement per kind of grant."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=[f"{self.domain.domain_arn}/{p}" for p in paths])
        )
        self._grants.setdefault((tuple(actions), tuple(paths)), []).append(role)
        # Written on the CloudFormation resource directly: CDK's `access_policies` would deploy a
        # custom-resource Lambda function to set it after creation.
        cfn = self.domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        # the literal name: the domain's own ARN here would be a circular reference
        domain = f"arn:{Aws.PARTITION}:es:{Aws.REGION}:{Aws.ACCOUNT_ID}:domain/{self.name}"
        cfn.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [principal.role_arn for principal in principals]},
                    "Action": list(granted),
                    "Resource": [f"{domain}/{path}" for path in grant_paths],
                }
                for (granted, grant_paths), principals in self._grants.items()
            ],
        }


def domain_name(prefix: str, deployment: str) -> str:
    """OpenSearch domain names have 3-28 characters; `deployment` (`deployment_id`, 8) makes the name of
    each stack's domain new, so a retained domain never blocks a stage deployed again."""
    return f"{prefix[:19].rstrip('-')}-{deployment}"
