"""Rules AWS services document for the roles they use, which no recorded call shows."""

from __future__ import annotations

from tests.contract import iam
from tests.contract.stack import ACCOUNT, PARTITION, REGION, RenderedStack

# EventBridge Pipes, "Data encryption in EventBridge Pipes": a pipe encrypted with a customer managed
# key (KmsKeyIdentifier) uses it with its execution role, which needs these on the key.
PIPE_CUSTOMER_KEY_ACTIONS = ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt")


def test_a_pipe_with_a_customer_key_may_describe_and_use_it(stack: RenderedStack) -> None:
    pipes = stack.synth.resources("AWS::Pipes::Pipe")
    assert pipes, "the stack has no pipe: this rule checks nothing"
    for logical_id, pipe in pipes.items():
        properties = pipe["Properties"]
        key = stack.renderer.value(properties.get("KmsKeyIdentifier"))
        assert key, f"{logical_id}: no customer key (the stack encrypts every pipe with the project key)"
        key_arn = key if key.startswith("arn:") else f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{key}"
        role_logical_id, _ = properties["RoleArn"]["Fn::GetAtt"]
        statements = stack.statements(role_logical_id)
        denied = [action for action in PIPE_CUSTOMER_KEY_ACTIONS
                  if not iam.decide(statements, iam.Request.of(action, key_arn)).allowed]
        assert not denied, f"pipe {logical_id}: its role may not {', '.join(denied)} on its key {key_arn}"
