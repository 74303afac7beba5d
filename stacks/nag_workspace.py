"""The workspace's cdk-nag acknowledgements (stacks/nag.py collects them): its sign-in routes, its two
functions and their roles, the user pool's MFA when the deployment does not require it, and the
resources an admin's erasure deletes (`Access.ERASE`)."""

from __future__ import annotations

from dataclasses import replace

from medscribe.domain.encounter import INPUT_PREFIXES
from medscribe.routes import Access
from stacks.functions import HandlerFunction
from stacks.grants import TRANSCRIBE_DELETE_ACTIONS, scoped_types
from stacks.medscribe_stack import MedscribeStack
from stacks.nag import Ack, _cfn, _Context, _function_acks, _subject

ERASURE_NOTE = (" An admin's erasure (the workspace's DELETE of an encounter) also deletes every version of the "
                "erased encounter's objects here by version id (s3:DeleteObjectVersion), as the README's erasure "
                "section describes; the keys are the encounter's, known only at run time.")


def workspace_acks(stack: MedscribeStack, context: _Context) -> list[Ack]:
    """The workspace's functions and sign-in routes, and the user pool's when MFA is not required."""
    workspace = stack.workspace
    assert workspace is not None
    mfa = stack.settings.workspace_mfa
    acks = [Ack("AwsSolutions-APIG4", _cfn(route), (
        "The workspace's sign-in routes (GET /login starts Cognito's hosted UI with PKCE, GET /auth/callback "
        "receives the authorization code, GET /auth/refresh trades the refresh-token cookie for a new access "
        "token): how a browser gets the token every other route's Lambda authorizer asks for, so they cannot "
        "ask for one.")) for route in workspace.signin_routes]
    for function in (workspace.function, workspace.authorizer_function):
        function_acks = _function_acks(function, context, concurrency=(
            f"{_subject(function)}: invoked only by the workspace HTTP API, whose stage is throttled; reserved "
            "concurrency is left unset because new accounts have low concurrency limits."
        ), dlq=(
            f"{_subject(function)}: invoked synchronously by the workspace HTTP API only; a function DLQ receives "
            "failed asynchronous invocations, which never happen here."
        ))
        acks += erasure_acks(function, context, function_acks) if Access.ERASE in function.access else function_acks
    if mfa != "REQUIRED":
        acks.append(Ack("AwsSolutions-COG2", _cfn(workspace.user_pool), (
            f"The deployment chose workspace_mfa {mfa} (cdk.json; REQUIRED is the default): " + (
                "users may add a TOTP authenticator, and those who do are asked for it at every sign-in."
                if mfa == "OPTIONAL" else
                "sign-in is by password alone (14 characters, four character classes) with threat protection on.")
        )))
    return acks


ERASURE_ONLY = "s3:DeleteObjectVersion only, for an admin's erasure"


def _deleted_rules(context: _Context) -> set[str]:
    return {f"AwsSolutions-IAM5[Resource::{arn}]" for arn in (
        f"{context.artifacts_arn}/*", *(f"{context.input_arn}/{prefix}*" for prefix in INPUT_PREFIXES))}


def erasure_prefix_acks(function: HandlerFunction, context: _Context, acks: list[Ack]) -> list[Ack]:
    """For a function that erases (`Access.ERASE`): one acknowledgement per object ARN it may delete under
    and that none of its other grants (`acks`) already acknowledges (the input prefixes it does not write)."""
    policy = function.role.node.find_child("DefaultPolicy").node.find_child("Resource")
    return [Ack(rule, policy, (
        f"{_subject(function)}: {ERASURE_ONLY} (the workspace's DELETE of an encounter): the erased encounter's "
        "source object may lie under this input prefix, and the keys are the uploader's, known only at run "
        "time, so the ARN ends in the prefix and '*'.")) for rule in sorted(_deleted_rules(context) - {
            ack.rule for ack in acks})]


def erasure_acks(function: HandlerFunction, context: _Context, acks: list[Ack]) -> list[Ack]:
    """The function's acknowledgements with erasure's deletes named on the object ARNs they share with its
    reads and writes, plus one per Transcribe job type it may delete (this stage's names only)."""
    deleted = _deleted_rules(context)
    acks = [replace(ack, reason=ack.reason + ERASURE_NOTE) if ack.rule in deleted and ERASURE_ONLY not in ack.reason
            else ack for ack in acks]
    policy = function.role.node.find_child("DefaultPolicy").node.find_child("Resource")
    for resource_type in scoped_types(TRANSCRIBE_DELETE_ACTIONS):
        acks.append(Ack(
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:transcribe:<AWS::Region>:<AWS::AccountId>:"
            f"{resource_type}/{context.prefix}-*]",
            policy,
            f"{_subject(function)}: an admin's erasure deletes the erased encounter's Transcribe jobs (named "
            f"'{context.prefix}-<encounter id>' and '{context.prefix}-sh-...' at run time), so the ARN ends in the "
            "stage prefix and '*'; delete only, no other stage's jobs.",
        ))
    return acks
