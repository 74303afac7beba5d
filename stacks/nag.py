"""Every cdk-nag acknowledgement of the stack, with its reason, in one place (`plan`; the workspace's are
built by stacks/nag_workspace.py from this module's helpers).

Each acknowledgement names one finding (rule id, with the finding for granular rules such as
IAM5) on one CloudFormation resource: nothing is acknowledged on a parent construct or the stack,
so a new resource with the same problem is reported, not silently covered. tests/infra checks
that the acknowledgements are exactly the findings of an unacknowledged synth (none missing, none
stale), and docs/security.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

from medscribe.domain.selfheal import CLM_TRAINING_PREFIX
from medscribe.domain.uploads import UPLOAD_PREFIXES
from medscribe.routes import Access
from stacks.functions import HandlerFunction
from stacks.grants import (
    ENCRYPTING_ACCESS,
    TRANSCRIBE_CUSTOMIZE_ACTIONS,
    TRANSCRIBE_READ_ACTIONS,
    TRANSCRIBE_START_ACTIONS,
    TRANSCRIPTS_PREFIX,
    bedrock_model_ids,
    comprehend_medical_actions,
    resourceless,
    scoped_types,
    split_inference_profile,
)
from stacks.medscribe_stack import MedscribeStack, RouteResources
from stacks.messaging import PIPE_KEY_ACTIONS, QUEUE_SEND_KEY_ACTIONS, STREAM_LIST_ACTIONS

NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
NOTIFICATIONS_HANDLER = (
    "CDK's BucketNotificationsHandler singleton, the custom resource that applies the input "
    "bucket's notification configuration during deployments; it handles no PHI"
)


@dataclass(frozen=True)
class Ack:
    rule: str
    resource: IConstruct  # the CfnResource the finding is reported on
    reason: str

    @property
    def path(self) -> str:
        return self.resource.node.path


def _cfn(construct: IConstruct) -> IConstruct:
    child = construct.node.default_child
    if child is None:
        raise ValueError(f"{construct.node.path} has no CloudFormation resource")
    return child


def _arn(construct: IConstruct) -> str:
    """How cdk-nag spells a reference to the construct's ARN inside a finding: `<LogicalId.Arn>`."""
    element = _cfn(construct)
    assert isinstance(element, CfnElement)
    stack = Stack.of(element)
    return f"<{stack.resolve(stack.get_logical_id(element))}.Arn>"


def plan(stack: MedscribeStack) -> list[Ack]:
    storage = stack.storage
    settings = stack.settings
    single_region = (
        "this stage is deployed to one region and no disaster-recovery region (with its own KMS key) "
        "is defined yet; versioning, RETAIN and lifecycle rules protect the objects in place"
    )
    acks = [
        Ack(
            "HIPAA.Security-S3BucketReplicationEnabled",
            _cfn(storage.input_bucket),
            f"Input uploads are consumed once into the encounter table and artifacts; {single_region}.",
        ),
        Ack(
            "HIPAA.Security-S3BucketReplicationEnabled",
            _cfn(storage.artifacts_bucket),
            "Artifacts are derived from the input objects and the table (PITR and daily AWS Backup) "
            f"and can be regenerated; {single_region}.",
        ),
        Ack(
            "HIPAA.Security-S3BucketReplicationEnabled",
            _cfn(storage.access_logs),
            f"Server access logs are audit records of this stage's buckets; {single_region}.",
        ),
        Ack(
            "HIPAA.Security-S3DefaultEncryptionKMS",
            _cfn(storage.access_logs),
            "S3 server access logging cannot deliver to a bucket whose default encryption is SSE-KMS, "
            "so the access-log bucket uses SSE-S3 (AES-256); it is TLS-only, private and holds no PHI "
            "objects, only request records.",
        ),
        Ack(
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]",
            _cfn(storage.backup_selection.node.find_child("Role")),
            "Role AWS Backup assumes (trust: backup.amazonaws.com only) to back up the encounter table; "
            "the AWS-managed service-role policy is the permission set AWS documents and maintains for "
            "backup jobs.",
        ),
    ]
    handler = stack.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
    if handler is not None:
        acks += [
            Ack(
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                _cfn(handler.node.find_child("Role")),
                f"{NOTIFICATIONS_HANDLER}; CDK attaches this AWS-managed logging policy to its role.",
            ),
            Ack(
                "HIPAA.Security-IAMNoInlinePolicy",
                storage.input_bucket.node.find_child("Notifications")
                .node.find_child("HandlerPolicy")
                .node.find_child("Resource"),
                f"{NOTIFICATIONS_HANDLER}; CDK's inline policy grants only s3:PutBucketNotification on "
                "the input bucket.",
            ),
        ]
    acks += _search_acks(stack)
    clm_policy = storage.clm_data_role.node.find_child("DefaultPolicy").node.find_child("Resource")
    acks += [
        Ack(
            f"AwsSolutions-IAM5[Resource::{_arn(storage.artifacts_bucket)}/{CLM_TRAINING_PREFIX}*]",
            clm_policy,
            "Amazon Transcribe reads a custom language model's training text with this role; the files "
            f"are written per model under '{CLM_TRAINING_PREFIX}<model>/' at run time, so the object ARN "
            "ends in that prefix and '*'; nothing else in the bucket.",
        ),
        Ack(
            "HIPAA.Security-IAMNoInlinePolicy",
            clm_policy,
            "The language-model data role (trusted by transcribe.amazonaws.com for this account only) has one "
            "inline policy, deleted with the role: s3:ListBucket on the artifacts bucket, s3:GetObject under "
            f"'{CLM_TRAINING_PREFIX}', kms:Decrypt on the project key.",
        ),
    ]
    context = _Context(
        input_arn=_arn(storage.input_bucket),
        artifacts_arn=_arn(storage.artifacts_bucket),
        search_arn=_arn(storage.search.domain),
        prefix=settings.prefix,
        bedrock_model_ids=bedrock_model_ids(settings) if _uses_bedrock(stack) else [],
    )
    for resources in stack.routes.values():
        route = resources.route
        subject = _subject(resources.function)
        acks += _function_acks(
            resources.function,
            context,
            concurrency=(
                f"{subject}: concurrency is capped at the SQS event source mapping, the function's only "
                f"invoker (MaximumConcurrency {route.max_concurrency(settings)}); reserved concurrency is left "
                "unset because new accounts have low concurrency limits."
            ),
            dlq=(
                f"{subject}: invoked only by its SQS event source mapping and has no asynchronous "
                "trigger, so a function DLQ would never receive anything; failed messages go to the route's "
                f"dead-letter queue after {settings.max_receive_count} receives, and its alarm notifies the topic."
            ),
        )
        acks += _trigger_role_acks(resources)
    for endpoint_function in stack.endpoints.values():
        subject = _subject(endpoint_function)
        acks += _function_acks(
            endpoint_function,
            context,
            concurrency=(
                f"{subject}: invoked only through its function URL with AuthType AWS_IAM, by IAM principals of "
                "this account whose own policies allow lambda:InvokeFunctionUrl and lambda:InvokeFunction on "
                "it (the function has no resource-based policy), so every caller is authenticated and "
                "accountable; reserved concurrency is left unset because new accounts have low concurrency "
                "limits, and the account limit bounds it."
            ),
            dlq=(
                f"{subject}: invoked synchronously through its function URL only; a function DLQ receives "
                "failed asynchronous invocations, which never happen here, and every error returns to the "
                "caller as the HTTP response."
            ),
        )
    if stack.workspace is not None:
        from stacks.nag_workspace import workspace_acks  # it builds on this module's helpers

        acks += workspace_acks(stack, context)
    return acks


@dataclass(frozen=True)
class _Context:
    """What the per-function acknowledgements need from the stack (cdk-nag's spelling of ARNs)."""

    input_arn: str
    artifacts_arn: str
    search_arn: str
    prefix: str
    bedrock_model_ids: list[str]


def _uses_bedrock(stack: MedscribeStack) -> bool:
    return any(Access.BEDROCK_INVOKE in function.access for function in stack.functions.values())


def _subject(function: HandlerFunction) -> str:
    return f"{function.kind.capitalize()} '{function.handler.name}'"


def _function_acks(function: HandlerFunction, context: _Context, *, concurrency: str, dlq: str) -> list[Ack]:
    """The acknowledgements of one route's or endpoint's function, its role policy included."""
    subject = _subject(function)
    access = function.access
    policy = function.role.node.find_child("DefaultPolicy").node.find_child("Resource")
    lambda_function = _cfn(function.function)
    unscoped = ["xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing)"]
    if Access.TRANSCRIBE_START in access:
        unscoped.append(
            f"{' and '.join(TRANSCRIBE_START_ACTIONS)} (Transcribe defines no resource type for them), limited by "
            "conditions to output in the artifacts bucket under 'transcripts/' encrypted with the project key"
        )
    if Access.TRANSCRIBE_READ in access:
        unscoped.append(f"{' and '.join(resourceless(TRANSCRIBE_READ_ACTIONS))} (a list action)")
    if Access.TRANSCRIBE_CUSTOMIZE in access:
        unscoped.append(
            f"{', '.join(resourceless(TRANSCRIBE_CUSTOMIZE_ACTIONS))} (Transcribe defines no resource type for "
            "creating custom vocabularies and language models, so IAM matches them only on '*'; every other "
            "customization action is scoped to this stage's names)"
        )
    if comprehend := comprehend_medical_actions(access):
        unscoped.append(
            f"{', '.join(comprehend)} (Comprehend Medical's synchronous analysis actions have no resource "
            "type; the requests carry missed words (self-heal) or a documented encounter's text, coded and "
            "searched for PHI to redact (entities))"
        )
    acks = [
        Ack(
            "AwsSolutions-IAM5[Resource::*]",
            policy,
            f"{subject}: Resource '*' appears only for actions that support no resource-level "
            "permissions: " + "; ".join(unscoped) + ".",
        ),
        Ack(
            "HIPAA.Security-IAMNoInlinePolicy",
            policy,
            f"{subject}: one role per function; its only policy is inline so it is deleted with the "
            "role and cannot be attached elsewhere (IAM's guidance for one-to-one policies), and every "
            f"statement names this {function.kind}'s resources (the Resource '*' exceptions are listed in its IAM5 "
            "acknowledgement).",
        ),
        Ack("HIPAA.Security-LambdaConcurrency", lambda_function, concurrency),
        Ack("HIPAA.Security-LambdaDLQ", lambda_function, dlq),
        Ack(
            "HIPAA.Security-LambdaInsideVPC",
            lambda_function,
            f"{subject}: calls only AWS regional APIs over TLS with IAM authorization and reaches no "
            "private network resource; a VPC would add NAT or endpoint cost without reducing exposure.",
        ),
    ]
    if Access.SEARCH_WRITE in access:
        acks.append(
            Ack(
                f"AwsSolutions-IAM5[Resource::{context.search_arn}/*]",
                policy,
                f"{subject}: OpenSearch authorizes HTTP calls on paths under the domain ARN (index "
                "template, bulk, search, delete by id), so the resource is the search domain's '/*'; the "
                "actions are the five es:ESHttp* methods, not es:*, and the domain names this role in its "
                "resource policy.",
            )
        )
    if Access.INPUT_READ in access:
        acks.append(
            Ack(
                f"AwsSolutions-IAM5[Resource::{context.input_arn}/*]",
                policy,
                f"{subject}: reads uploaded objects (s3:GetObject, s3:GetObjectVersion) whose keys "
                "uploaders choose, so the object ARN is the input bucket's '/*'; no other bucket."
                + (
                    " Amazon Transcribe reads the media of the jobs this route starts with the same permissions."
                    if Access.TRANSCRIBE_START in access
                    else ""
                ) + (" It also reads their tags (s3:GetObject[Version]Tagging: the note template an upload chooses)."
                     if Access.INPUT_TAGS_READ in access else ""),
            )
        )
    if Access.INPUT_WRITE in access:
        acks += [Ack(
            f"AwsSolutions-IAM5[Resource::{context.input_arn}/{prefix}*]", policy,
            f"{subject}: s3:PutObject only, for uploads it signs (presigned POST) under the input prefix "
            f"'{prefix}', where ingest picks them up; the object names are chosen at upload time, so the ARN "
            "ends in the prefix and '*'; nothing else in the bucket.",
        ) for prefix in UPLOAD_PREFIXES]
    if Access.ARTIFACTS_READ_WRITE in access:
        acks.append(
            Ack(
                f"AwsSolutions-IAM5[Resource::{context.artifacts_arn}/*]",
                policy,
                f"{subject}: reads and writes artifacts under keys derived from encounter ids, so the "
                "object ARN is the artifacts bucket's '/*'; no other bucket.",
            )
        )
    else:
        if Access.ARTIFACTS_READ in access:
            acks.append(
                Ack(
                    f"AwsSolutions-IAM5[Resource::{context.artifacts_arn}/*]",
                    policy,
                    f"{subject}: reads artifacts (s3:GetObject, s3:GetObjectVersion only, no write) under "
                    "keys derived from encounter ids, so the object ARN is the artifacts bucket's '/*'; no "
                    "other bucket.",
                )
            )
        if Access.TRANSCRIBE_START in access:
            acks.append(
                Ack(
                    f"AwsSolutions-IAM5[Resource::{context.artifacts_arn}/{TRANSCRIPTS_PREFIX}*]",
                    policy,
                    f"{subject}: s3:PutObject only, for Amazon Transcribe, which writes each job's output "
                    f"with the caller's permissions to '{TRANSCRIPTS_PREFIX}<encounter id>/' in the artifacts "
                    "bucket; the encounter ids are not known at deploy time.",
                )
            )
    if Access.TRANSCRIBE_READ in access:
        for resource_type in scoped_types(TRANSCRIBE_READ_ACTIONS):
            acks.append(
                Ack(
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:transcribe:<AWS::Region>:"
                    f"<AWS::AccountId>:{resource_type}/{context.prefix}-*]",
                    policy,
                    f"{subject}: reads the status of this stage's Transcribe jobs; job names are "
                    f"'{context.prefix}-<encounter id>' and encounter ids are created at run time, so the ARN "
                    "ends in the stage prefix and '*'.",
                )
            )
    if Access.TRANSCRIBE_CUSTOMIZE in access:
        for resource_type in scoped_types(TRANSCRIBE_CUSTOMIZE_ACTIONS):
            actions = [action for action, kind in TRANSCRIBE_CUSTOMIZE_ACTIONS.items() if kind == resource_type]
            acks.append(
                Ack(
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:transcribe:<AWS::Region>:"
                    f"<AWS::AccountId>:{resource_type}/{context.prefix}-*]",
                    policy,
                    f"{subject}: {', '.join(actions)} on the self-heal loop's custom "
                    f"{resource_type.replace('-', ' ')} resources, named '{context.prefix}-sh-<digest of the "
                    "phrases>' at run time, so the ARN ends in the stage prefix and '*'; no other stage's or "
                    "system's ones.",
                )
            )
    if Access.BEDROCK_INVOKE in access:
        acks += _bedrock_acks(subject, policy, context.bedrock_model_ids)
    writers = [service for item, service in ENCRYPTING_ACCESS.items() if item in access]
    if writers:
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acks.append(
                Ack(
                    f"AwsSolutions-IAM5[Action::{action}]",
                    policy,
                    f"{subject}: part of CDK's encrypt/decrypt grant (the one CDK's own write grants "
                    f"use) for {' and '.join(writers)} writes on the function's behalf; the grant's only "
                    "resource is the project key's exact ARN.",
                )
            )
    if Access.ERASE in access:  # deletes under input prefixes none of its other grants acknowledges
        from stacks.nag_workspace import erasure_prefix_acks  # it builds on this module's helpers

        acks += erasure_prefix_acks(function, context, acks)
    return acks


def _bedrock_acks(subject: str, policy: IConstruct, model_ids: list[str]) -> list[Ack]:
    """One IAM5 per foundation model behind a configured inference profile (any region by design)."""
    profiles_by_model: dict[str, list[str]] = {}
    for model_id in model_ids:
        geography, foundation_model = split_inference_profile(model_id)
        if geography is not None:
            profiles_by_model.setdefault(foundation_model, []).append(model_id)
    return [
        Ack(
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{foundation_model}]",
            policy,
            f"{subject}: bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream (Converse, "
            f"ConverseStream) on the foundation model behind the cross-region inference profile "
            f"{' and '.join(repr(p) for p in profiles)}, which routes each request to one region of its "
            "geography, so the region is '*' as Bedrock's inference-profile prerequisites require; the "
            "statement only applies to requests made through that profile (bedrock:InferenceProfileArn "
            "equals its ARN in this account and region).",
        )
        for foundation_model, profiles in profiles_by_model.items()
    ]


def _trigger_role_acks(resources: RouteResources) -> list[Ack]:
    """The inline policy of the execution role a schedule or a stream pipe sends to the queue with."""
    roles = [
        (resources.queue.schedule_role, "schedule's", "", QUEUE_SEND_KEY_ACTIONS),
        (resources.queue.pipe_role, "pipe's", "reading the table's stream, ", PIPE_KEY_ACTIONS),
    ]
    acks = [
        Ack(
            "HIPAA.Security-IAMNoInlinePolicy",
            role.node.find_child("DefaultPolicy").node.find_child("Resource"),
            f"Route '{resources.route.name}': the {kind} execution role has one inline policy, deleted with "
            f"the role (IAM's guidance for one-to-one policies); it allows only {reads}sqs:SendMessage on the "
            f"route queue and its DLQ, and {', '.join(sorted(key_actions))} on the project key.",
        )
        for role, kind, reads, key_actions in roles
        if role is not None
    ]
    if resources.queue.pipe_role is not None:
        acks.append(
            Ack(
                "AwsSolutions-IAM5[Resource::*]",
                resources.queue.pipe_role.node.find_child("DefaultPolicy").node.find_child("Resource"),
                f"Route '{resources.route.name}': the pipe's execution role has Resource '*' only for "
                f"{', '.join(STREAM_LIST_ACTIONS)}, which EventBridge Pipes uses for a DynamoDB stream source and "
                "which has no resource type (IAM matches it only on '*'); it lists stream ARNs, no data. The "
                "stream reads are scoped to the table's stream ARN.",
            )
        )
    return acks


SEARCH_NOT_IN_VPC = (
    "The search domain has a public endpoint that accepts only HTTPS (TLS 1.2) requests signed with SigV4 "
    "by IAM principals of this account: its resource policy names the index function's role, and nothing "
    "allows anonymous access. The functions that use it run outside a VPC (they call S3, DynamoDB, "
    "Transcribe and Bedrock; a VPC would need NAT or five interface endpoints), so a VPC domain would add "
    "cost and moving parts without closing an exposure. README 'Search domain' records the decision and "
    "how to move it into a VPC."
)


def _search_acks(stack: MedscribeStack) -> list[Ack]:
    search = stack.storage.search
    domain = _cfn(search.domain)
    settings = stack.settings
    acks = [
        Ack("AwsSolutions-OS1", domain, SEARCH_NOT_IN_VPC),
        Ack("HIPAA.Security-OpenSearchInVPCOnly", domain, SEARCH_NOT_IN_VPC),
        Ack(
            "AwsSolutions-OS3",
            domain,
            "Access is granted to IAM roles (SigV4), not to IP addresses: Lambda functions have no fixed "
            "source addresses, and an IP allow list is weaker than the role-based resource policy.",
        ),
        Ack(
            "AwsSolutions-OS4",
            domain,
            f"{settings.search_instance_count} data node(s) of {settings.search_instance_type}: dedicated "
            "master nodes are for clusters of several data nodes; the index is a copy of the table that "
            "can be rebuilt (the index route re-indexes any encounter named in its queue), so a small "
            "clinic's domain runs without them. "
            "Raise search_instance_count and add masters for production scale.",
        ),
    ]
    if settings.search_instance_count < 2:
        acks.append(
            Ack(
                "AwsSolutions-OS7",
                domain,
                "One data node (search_instance_count 1) cannot be spread over zones; setting 2 or more "
                "enables zone awareness over two Availability Zones. The index can be rebuilt from the table "
                "through the index route's queue.",
            )
        )
    return acks


def acknowledge(stack: MedscribeStack) -> None:
    for ack in plan(stack):
        Validations.of(ack.resource).acknowledge(Acknowledgment(id=ack.rule, reason=ack.reason))


def acknowledgements(stack: MedscribeStack) -> list[tuple[str, str]]:
    """(rule id, reason) of every acknowledgement: what docs/security.md lists and the tests count."""
    return [(ack.rule, ack.reason) for ack in plan(stack)]
