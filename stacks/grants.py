"""IAM grants of the functions' roles: an `Access` set (routes.py) turned into statements on the
exact resources it names, and the action tables they are made of.

Roles carry no managed policies. `grant_access` adds, per `Access`, the actions it needs on this
stage's own resources (the table and its indexes, the buckets, the topic, the default event bus for
the pipeline's event source, this stage's Transcribe names, the configured Bedrock models, the search
domain); actions IAM authorizes on no resource type go on "*", pinned by condition keys where the
service has them. The project key follows the access: encrypt and decrypt where a service encrypts
writes on the function's behalf, decrypt for other access to encrypted stores, nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.domain.search import DEFAULT_INDEX
from medscribe.domain.uploads import UPLOAD_PREFIXES
from medscribe.routes import Access
from medscribe.settings import PipelineSettings
from stacks.storage import Storage

TABLE_READ_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
]
TABLE_READ_WRITE_ACTIONS = sorted(
    [*TABLE_READ_ACTIONS, "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
)
# The only ones IAM authorizes on an index ARN (Service Authorization Reference): granted on the indexes
# too, every other table action on the table alone (on an index ARN it would match nothing).
TABLE_INDEX_ACTIONS = ["dynamodb:Query", "dynamodb:Scan"]
OBJECT_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
OBJECT_WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]
# GetObjectTagging with a VersionId (ingest names the exact revision) is authorized as GetObjectVersionTagging.
OBJECT_TAG_READ_ACTIONS = ["s3:GetObjectTagging", "s3:GetObjectVersionTagging"]
# A presigned POST is authorized as s3:PutObject of the signer when S3 receives the upload.
UPLOAD_ACTIONS = ["s3:PutObject"]
# Neither start action supports resource-level permissions (Service Authorization Reference: no
# resource type), so they are granted on "*" and pinned by Transcribe's request condition keys.
TRANSCRIBE_START_ACTIONS = ["transcribe:StartMedicalTranscriptionJob", "transcribe:StartTranscriptionJob"]
# Transcribe actions by the resource type IAM authorizes them on (Service Authorization Reference), each
# type granted on this stage's names (`<type>/<prefix>-*`); None: the action has no resource type and
# IAM matches it only on Resource "*". tests/contract checks both tables against the IAM database.
TRANSCRIBE_READ_ACTIONS: dict[str, str | None] = {
    "transcribe:GetTranscriptionJob": "transcription-job",
    "transcribe:GetMedicalTranscriptionJob": "medical-transcription-job",
    "transcribe:ListTranscriptionJobs": None,
}
# The self-heal loop's custom vocabularies (standard and medical) and language models: create, read,
# update, delete. The create actions have no resource type (IAM matches them on "*" only).
TRANSCRIBE_CUSTOMIZE_ACTIONS: dict[str, str | None] = {
    "transcribe:CreateVocabulary": None,
    "transcribe:GetVocabulary": "vocabulary",
    "transcribe:UpdateVocabulary": "vocabulary",
    "transcribe:DeleteVocabulary": "vocabulary",
    "transcribe:CreateMedicalVocabulary": None,
    "transcribe:GetMedicalVocabulary": "medical-vocabulary",
    "transcribe:UpdateMedicalVocabulary": "medical-vocabulary",
    "transcribe:DeleteMedicalVocabulary": "medical-vocabulary",
    "transcribe:CreateLanguageModel": None,
    "transcribe:DescribeLanguageModel": "language-model",
    "transcribe:DeleteLanguageModel": "language-model",
}
# Transcribe writes its output here with the caller's permissions (domain.transcription.TranscriptKeys).
TRANSCRIPTS_PREFIX = "transcripts/"
# An admin's erasure in the workspace (services/erasure.py): every version and delete marker of the
# encounter's objects, listed per bucket and deleted by version id (DeleteObjects authorizes each key as
# s3:DeleteObjectVersion), and its Transcribe jobs by name (one resource type per job kind).
ERASE_BUCKET_ACTIONS = ["s3:ListBucketVersions"]
ERASE_OBJECT_ACTIONS = ["s3:DeleteObjectVersion"]
TRANSCRIBE_DELETE_ACTIONS: dict[str, str | None] = {
    "transcribe:DeleteTranscriptionJob": "transcription-job",
    "transcribe:DeleteMedicalTranscriptionJob": "medical-transcription-job",
}
# The OpenSearch HTTP calls (method, path under the domain) of a query and of an erasure's document delete
# (opensearch-py: `search` POSTs `<index>/_search`, `bulk` POSTs `_bulk`).
SEARCH_QUERY_CALL = (["es:ESHttpPost"], [f"{DEFAULT_INDEX}/_search"])
SEARCH_ERASE_CALL = (["es:ESHttpPost"], ["_bulk"])
COMPREHEND_MEDICAL_ACTIONS = ["comprehendmedical:DetectEntitiesV2"]  # no resource-level permissions
# the entities stage: entities, then their ICD-10-CM, RxNorm and SNOMED CT codes, and the PHI its redacted
# copies hide (no resource-level permissions)
COMPREHEND_MEDICAL_CODES_ACTIONS = ["comprehendmedical:DetectEntitiesV2", "comprehendmedical:InferICD10CM",
                                    "comprehendmedical:InferRxNorm", "comprehendmedical:InferSNOMEDCT",
                                    "comprehendmedical:DetectPHI"]
# The `Source` of every event the pipeline puts on the default bus (medscribe.adapters.events.SOURCE;
# routes.READY_FOR_DOCUMENTATION_PATTERN matches it; a test keeps the three equal).
PIPELINE_EVENT_SOURCE = "medscribe"
# Converse uses InvokeModel, ConverseStream uses InvokeModelWithResponseStream.
BEDROCK_INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
# Geography prefixes of Bedrock's system-defined (cross-region) inference profile ids, e.g.
# `us.anthropic.claude-haiku-4-5-20251001-v1:0`; an id without one is a foundation model id.
INFERENCE_PROFILE_GEOGRAPHIES = frozenset({"us", "us-gov", "eu", "apac", "au", "ca", "jp", "global"})
# Access that needs another: Transcribe reads the input media with the caller's permissions.
# Erasure reads the encounter's items and objects and rewrites score reports before it deletes them.
IMPLIED_ACCESS: dict[Access, frozenset[Access]] = {
    Access.TRANSCRIBE_START: frozenset({Access.INPUT_READ}),
    Access.ERASE: frozenset({Access.TABLE_READ_WRITE, Access.INPUT_READ, Access.ARTIFACTS_READ_WRITE}),
}
# Read-only access that a read-write access on the same store already covers.
SUBSUMED_ACCESS: dict[Access, Access] = {
    Access.TABLE_READ: Access.TABLE_READ_WRITE,
    Access.ARTIFACTS_READ: Access.ARTIFACTS_READ_WRITE,
}
# Write access for which a service encrypts with the project key on the function's behalf.
ENCRYPTING_ACCESS = {
    Access.TABLE_READ_WRITE: "DynamoDB",
    Access.ARTIFACTS_READ_WRITE: "S3 (SSE-KMS)",
    Access.INPUT_WRITE: "S3 (SSE-KMS, uploads signed by the function)",
    Access.TOPIC_PUBLISH: "SNS",
    Access.TRANSCRIBE_START: "Amazon Transcribe (transcript output)",
}
# Access that touches nothing encrypted with the project key (the default event bus uses an AWS
# owned key; Transcribe job status, Bedrock inference and S3 object tags carry no project-key data).
KEYLESS_ACCESS = frozenset({
    Access.INPUT_TAGS_READ,  # object tags are not encrypted with the bucket key
    Access.TRANSCRIBE_READ, Access.EVENTS_PUT, Access.BEDROCK_INVOKE, Access.TRANSCRIBE_CUSTOMIZE,
    Access.COMPREHEND_MEDICAL, Access.COMPREHEND_MEDICAL_CODES, Access.SEARCH_WRITE, Access.SEARCH_QUERY,
    Access.ERASE,  # its objects and items: the read-write access it implies brings the key
})


def comprehend_medical_actions(access: frozenset[Access]) -> list[str]:
    """The Comprehend Medical actions `access` grants (all on "*": they have no resource type)."""
    granted = (COMPREHEND_MEDICAL_ACTIONS if Access.COMPREHEND_MEDICAL in access else []) + (
        COMPREHEND_MEDICAL_CODES_ACTIONS if Access.COMPREHEND_MEDICAL_CODES in access else [])
    return list(dict.fromkeys(granted))


def effective_access(access: frozenset[Access]) -> frozenset[Access]:
    """The access with what it implies (starting a transcription implies reading the input), minus
    read-only access that a read-write access on the same store covers."""
    implied = access.union(*(IMPLIED_ACCESS.get(item, frozenset()) for item in access))
    return frozenset(item for item in implied if SUBSUMED_ACCESS.get(item) not in implied)


def resourceless(actions: dict[str, str | None]) -> list[str]:
    """The actions of a Transcribe table that have no resource type (granted on "*")."""
    return [action for action, resource_type in actions.items() if resource_type is None]


def scoped_types(actions: dict[str, str | None]) -> list[str]:
    """The resource types of a Transcribe table, each once, in table order."""
    return list(dict.fromkeys(kind for kind in actions.values() if kind is not None))


def transcribe_statements(scope: Construct, actions: dict[str, str | None], prefix: str) -> list[iam.PolicyStatement]:
    """One statement per resource type on this stage's names of that type (job names are
    `<prefix>-<encounter id>`, the self-heal loop's `<prefix>-sh-<digest>`), one on "*" for the
    actions without a resource type."""
    stack = Stack.of(scope)
    statements = [
        iam.PolicyStatement(
            actions=[action for action, kind in actions.items() if kind == resource_type],
            resources=[stack.format_arn(service="transcribe", resource=resource_type, resource_name=f"{prefix}-*",
                                        arn_format=ArnFormat.SLASH_RESOURCE_NAME)],
        )
        for resource_type in scoped_types(actions)
    ]
    if resourceless(actions):
        statements.append(iam.PolicyStatement(actions=resourceless(actions), resources=["*"]))
    return statements


def default_event_bus_arn(scope: Construct) -> str:
    return Stack.of(scope).format_arn(
        service="events", resource="event-bus", resource_name="default", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def bedrock_model_ids(settings: PipelineSettings) -> list[str]:
    """The configured Bedrock model ids (fast and long tier), each once, in settings order."""
    ids = list(dict.fromkeys([settings.bedrock_model_id, settings.bedrock_long_model_id]))
    for model_id in ids:
        if model_id.startswith("arn:") or "/" in model_id:
            raise ValueError(
                f"bedrock model {model_id!r}: the stack grants foundation model ids and system-defined "
                "inference profile ids (e.g. us.anthropic.claude-haiku-4-5-20251001-v1:0), not ARNs"
            )
    return ids


def split_inference_profile(model_id: str) -> tuple[str | None, str]:
    """`us.anthropic.x-v1:0` -> ("us", "anthropic.x-v1:0"); a foundation model id -> (None, model_id)."""
    geography, separator, foundation_model = model_id.partition(".")
    if separator and geography in INFERENCE_PROFILE_GEOGRAPHIES:
        return geography, foundation_model
    return None, model_id


def bedrock_foundation_model_arn(scope: Construct, model_id: str) -> str:
    """The foundation model(s) a configured id invokes: behind an inference profile in any region
    (the profile routes each request to one region of its geography), else in this region."""
    geography, foundation_model = split_inference_profile(model_id)
    if geography is None:
        return Stack.of(scope).format_arn(
            service="bedrock",
            account="",
            resource="foundation-model",
            resource_name=foundation_model,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
    return f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{foundation_model}"


def bedrock_statements(scope: Construct, model_ids: Sequence[str]) -> list[iam.PolicyStatement]:
    """Invoke statements for each model id, as Bedrock's inference-profile prerequisites describe:
    the profile in this region and account, and its foundation model in every region, the latter
    only for requests made through that profile (`bedrock:InferenceProfileArn`)."""
    statements = []
    for model_id in model_ids:
        geography, _ = split_inference_profile(model_id)
        foundation_model = bedrock_foundation_model_arn(scope, model_id)
        if geography is None:
            statements.append(iam.PolicyStatement(actions=BEDROCK_INVOKE_ACTIONS, resources=[foundation_model]))
            continue
        profile = Stack.of(scope).format_arn(
            service="bedrock",
            resource="inference-profile",
            resource_name=model_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        statements.append(iam.PolicyStatement(actions=BEDROCK_INVOKE_ACTIONS, resources=[profile]))
        statements.append(
            iam.PolicyStatement(
                actions=BEDROCK_INVOKE_ACTIONS,
                resources=[foundation_model],
                conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile}},
            )
        )
    return statements


def grant_access(
    role: iam.IRole,
    access: frozenset[Access],
    *,
    key: kms.IKey,
    storage: Storage,
    topic: sns.ITopic,
    settings: PipelineSettings,
) -> None:
    """Turn an `Access` set into IAM statements on the exact resources it names."""
    access = effective_access(access)
    artifacts_arn = storage.artifacts_bucket.bucket_arn
    for item in sorted(access):
        match item:
            case Access.TABLE_READ_WRITE | Access.TABLE_READ:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=TABLE_READ_WRITE_ACTIONS if item is Access.TABLE_READ_WRITE else TABLE_READ_ACTIONS,
                        resources=[storage.table.table_arn],
                    )
                )
                role.add_to_principal_policy(
                    iam.PolicyStatement(actions=TABLE_INDEX_ACTIONS, resources=storage.index_arns)
                )
            case Access.INPUT_READ:
                _grant_bucket(role, storage.input_bucket.bucket_arn, OBJECT_READ_ACTIONS)
            case Access.INPUT_TAGS_READ:
                role.add_to_principal_policy(iam.PolicyStatement(
                    actions=OBJECT_TAG_READ_ACTIONS, resources=[f"{storage.input_bucket.bucket_arn}/*"]
                ))
            case Access.INPUT_WRITE:
                # only where the upload forms write (audio/, text/): nothing else in the bucket
                role.add_to_principal_policy(iam.PolicyStatement(
                    actions=UPLOAD_ACTIONS, resources=upload_resources(storage.input_bucket.bucket_arn)
                ))
            case Access.ARTIFACTS_READ_WRITE:
                _grant_bucket(role, artifacts_arn, OBJECT_READ_ACTIONS + OBJECT_WRITE_ACTIONS)
            case Access.ARTIFACTS_READ:
                _grant_bucket(role, artifacts_arn, OBJECT_READ_ACTIONS)
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
                for statement in transcribe_statements(role.stack, TRANSCRIBE_READ_ACTIONS, settings.prefix):
                    role.add_to_principal_policy(statement)
            case Access.EVENTS_PUT:
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=["events:PutEvents"],
                        resources=[default_event_bus_arn(role.stack)],
                        # events:source is multivalued (one value per entry): every entry of a request
                        # must carry the pipeline's source, and a request without one is denied.
                        conditions={
                            "ForAllValues:StringEquals": {"events:source": [PIPELINE_EVENT_SOURCE]},
                            "Null": {"events:source": "false"},
                        },
                    )
                )
            case Access.BEDROCK_INVOKE:
                for statement in bedrock_statements(role.stack, bedrock_model_ids(settings)):
                    role.add_to_principal_policy(statement)
            case Access.TRANSCRIBE_CUSTOMIZE:
                for statement in transcribe_statements(role.stack, TRANSCRIBE_CUSTOMIZE_ACTIONS, settings.prefix):
                    role.add_to_principal_policy(statement)
                # CreateLanguageModel hands Transcribe the role that reads the training text
                role.add_to_principal_policy(iam.PolicyStatement(
                    actions=["iam:PassRole"], resources=[storage.clm_data_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "transcribe.amazonaws.com"}},
                ))
            case Access.COMPREHEND_MEDICAL:
                role.add_to_principal_policy(iam.PolicyStatement(actions=COMPREHEND_MEDICAL_ACTIONS, resources=["*"]))
            case Access.COMPREHEND_MEDICAL_CODES:
                role.add_to_principal_policy(iam.PolicyStatement(actions=COMPREHEND_MEDICAL_CODES_ACTIONS,
                                                                 resources=["*"]))
            case Access.SEARCH_WRITE:
                storage.search.allow(role)  # the role's policy and the domain's resource policy
            case Access.SEARCH_QUERY:
                storage.search.allow(role, *SEARCH_QUERY_CALL)
            case Access.ERASE:
                buckets = [storage.input_bucket.bucket_arn, artifacts_arn]
                role.add_to_principal_policy(iam.PolicyStatement(actions=ERASE_BUCKET_ACTIONS, resources=buckets))
                # inputs only where ingest takes them from (the input prefixes), artifacts anywhere
                role.add_to_principal_policy(iam.PolicyStatement(
                    actions=ERASE_OBJECT_ACTIONS,
                    resources=[*input_prefix_resources(storage.input_bucket.bucket_arn), f"{artifacts_arn}/*"],
                ))
                for statement in transcribe_statements(role.stack, TRANSCRIBE_DELETE_ACTIONS, settings.prefix):
                    role.add_to_principal_policy(statement)
                storage.search.allow(role, *SEARCH_ERASE_CALL)
            case _:
                assert_never(item)
    # Every store is encrypted with the project key: reading needs Decrypt, writing also data keys.
    if access & ENCRYPTING_ACCESS.keys():
        key.grant_encrypt_decrypt(role)
    elif access - KEYLESS_ACCESS:
        key.grant_decrypt(role)


def upload_resources(input_arn: str) -> list[str]:
    """The object ARNs an upload may write: one per upload prefix (`<input bucket>/audio/*`, `.../text/*`)."""
    return [f"{input_arn}/{prefix}*" for prefix in UPLOAD_PREFIXES]


def input_prefix_resources(input_arn: str) -> list[str]:
    """One object ARN per input prefix the pipeline reads (audio, text, ground truth, keywords): what an
    erasure may delete, since an erased encounter's source can be under any of them."""
    return [f"{input_arn}/{prefix}*" for prefix in INPUT_PREFIXES]


def _grant_bucket(role: iam.IRole, bucket_arn: str, object_actions: list[str]) -> None:
    # ListBucket lets a missing key surface as 404 (NoSuchKey) instead of 403.
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn]))
    role.add_to_principal_policy(iam.PolicyStatement(actions=object_actions, resources=[f"{bucket_arn}/*"]))
