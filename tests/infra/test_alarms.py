"""The alarms on the pipeline's own metrics watch exactly what the handlers emit, and notify the topic.

Each alarm's metrics are read from the synthesized template and compared with the metric names the
services emit (medscribe.metric_names) and with the namespace and `service` dimension Powertools gives
them (the function's POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME); which routes emit a
metric is read from the handlers and the wiring, not from stacks/alarms.py.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sns as sns

from medscribe import metric_names
from medscribe.metric_names import (
    DOCUMENTATION_FAILED,
    SELFHEAL_MODELS_FAILED,
    SELFHEAL_QUOTA_REACHED,
    TRANSCRIPTIONS_FAILED,
)
from medscribe.routes import ROUTES, route
from medscribe.settings import PipelineSettings
from stacks.alarms import (
    EMITTERS,
    ENCOUNTERS_DOCUMENTED,
    ENCOUNTERS_NEEDS_REVIEW,
    FAILED_ENCOUNTERS,
    METRIC_ALARMS,
    NEEDS_REVIEW_RATE,
    SELFHEAL_FAILURES,
    TRANSCRIPTION_FAILURES,
    MetricAlarms,
)
from tests.infra.helpers import ROOT, Synth, ref, render, statements

pytestmark = pytest.mark.infra

WIRING = ROOT / "layers/medscribe/python/medscribe/services/wiring.py"
SERVICES = ROOT / "layers/medscribe/python/medscribe/services"
# metric -> (the module that emits it, the wiring factory that builds that module's service)
EMITTED_BY = {
    TRANSCRIPTIONS_FAILED: ("transcription_stage.py", "transcription_service"),
    DOCUMENTATION_FAILED: ("documentation_stage.py", "documentation_stage"),
    ENCOUNTERS_DOCUMENTED: ("documentation_stage.py", "documentation_stage"),
    ENCOUNTERS_NEEDS_REVIEW: ("documentation_stage.py", "documentation_stage"),
    SELFHEAL_MODELS_FAILED: ("selfheal.py", "selfheal_service"),
    SELFHEAL_QUOTA_REACHED: ("selfheal.py", "selfheal_service"),
}
WATCHES = {
    FAILED_ENCOUNTERS: {TRANSCRIPTIONS_FAILED, DOCUMENTATION_FAILED},
    TRANSCRIPTION_FAILURES: {TRANSCRIPTIONS_FAILED},
    SELFHEAL_FAILURES: {SELFHEAL_MODELS_FAILED, SELFHEAL_QUOTA_REACHED},
    NEEDS_REVIEW_RATE: {ENCOUNTERS_DOCUMENTED, ENCOUNTERS_NEEDS_REVIEW},
}


def logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.resolve(construct.node.default_child.logical_id))


def _factories_calling() -> dict[str, set[str]]:
    """wiring factory -> the factories it calls (itself included)."""
    tree = ast.parse(WIRING.read_text())
    calls: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            calls[node.name] = called | {node.name}
    return calls


def _handler_factories(route_name: str) -> set[str]:
    tree = ast.parse((ROOT / route(route_name).handler_path).read_text())
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module == "medscribe.services.wiring" for alias in node.names}


@pytest.mark.parametrize("metric", sorted(EMITTED_BY))
def test_emitters_are_the_routes_whose_handlers_build_the_emitting_service(metric: str) -> None:
    module, factory = EMITTED_BY[metric]
    source = (SERVICES / module).read_text()
    constants = {value: name for name, value in vars(metric_names).items() if name.isupper()}
    emitted_as = f"name={constants[metric]}" if metric in constants else "name=outcome_metric("
    assert emitted_as in source, (metric, module)  # the service emits it by the shared name
    calls = _factories_calling()
    emitting = {r.name for r in ROUTES
                if any(factory in calls.get(imported, set()) for imported in _handler_factories(r.name))}
    assert emitting
    assert set(EMITTERS[metric]) == emitting


def test_each_alarm_watches_the_metrics_the_functions_emit_and_notifies_the_topic(synth: Synth) -> None:
    settings = synth.stack.settings
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    alarms = synth.stack.metric_alarms.alarms
    assert set(alarms) == set(METRIC_ALARMS)
    functions = {name: synth.template["Resources"][logical_id(synth, resources.function.function)]
                 for name, resources in synth.stack.routes.items()}
    environment = {name: function["Properties"]["Environment"]["Variables"] for name, function in functions.items()}
    for alarm, construct in alarms.items():
        properties = synth.template["Resources"][logical_id(synth, construct)]["Properties"]
        assert properties["AlarmName"] == f"{settings.prefix}-{alarm}"
        assert properties["AlarmActions"] == [ref(topic_id)]
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["EvaluationPeriods"] == 1
        period = 60 * (settings.alarm_needs_review_period_minutes if alarm == NEEDS_REVIEW_RATE
                       else settings.alarm_period_minutes)
        watched = set()
        ids = []
        (expression,) = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
        for metric in (m for m in properties["Metrics"] if "MetricStat" in m):
            stat = metric["MetricStat"]
            name = stat["Metric"]["MetricName"]
            (dimension,) = stat["Metric"]["Dimensions"]
            assert dimension["Name"] == "service"
            (route_name,) = [n for n, env in environment.items()
                             if env["POWERTOOLS_SERVICE_NAME"] == dimension["Value"]]
            assert stat["Metric"]["Namespace"] == environment[route_name]["POWERTOOLS_METRICS_NAMESPACE"]
            assert route_name in EMITTERS[name]
            assert (stat["Stat"], stat["Period"]) == ("Sum", period)
            watched.add((name, route_name))
            ids.append(metric["Id"])
        expected = {(name, r) for name in WATCHES[alarm] for r in EMITTERS[name]}
        assert watched == expected, alarm
        used = set(re.findall(r"FILL\((\w+), 0\)", expression["Expression"]))
        assert used == set(ids), alarm  # every series counts, none is left out of the expression
        if alarm == NEEDS_REVIEW_RATE:
            assert properties["Threshold"] == settings.alarm_needs_review_ratio
            assert f">= {settings.alarm_needs_review_min_notes}," in expression["Expression"]
        else:
            assert properties["Threshold"] == getattr(settings, {
                FAILED_ENCOUNTERS: "alarm_failed_encounters", TRANSCRIPTION_FAILURES: "alarm_transcription_failures",
                SELFHEAL_FAILURES: "alarm_selfheal_failures"}[alarm])


def test_the_topic_accepts_every_alarm_of_the_stage(synth: Synth) -> None:
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    (statement,) = [s for s in statements(policy["Properties"]["PolicyDocument"])
                    if s.get("Sid") == "CloudWatchAlarmsOfThisStage"]
    allowed = [arn.rsplit(":alarm:", 1)[1] for arn in render(statement["Condition"]["ArnLike"]["aws:SourceArn"])]
    names = [properties["Properties"]["AlarmName"] for properties in synth.resources("AWS::CloudWatch::Alarm").values()]
    assert len(names) == len(ROUTES) + len(METRIC_ALARMS)
    for name in names:
        assert any(re.fullmatch(pattern.replace("*", ".*"), name) for pattern in allowed), name


def _alarms(settings: PipelineSettings, routes: tuple[Any, ...] = ROUTES) -> dict[str, dict[str, Any]]:
    app = App()
    stack = Stack(app, "AlarmsOnly")
    MetricAlarms(stack, "MetricAlarms", settings=settings, routes=routes, topic=sns.Topic(stack, "Topic"))
    template = app.synth().get_stack_by_name("AlarmsOnly").template
    return {r["Properties"]["AlarmName"]: r["Properties"] for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_thresholds_and_periods_come_from_the_settings() -> None:
    settings = PipelineSettings(stage="t", alarm_period_minutes=5, alarm_failed_encounters=3,
                                alarm_transcription_failures=2, alarm_selfheal_failures=4,
                                alarm_needs_review_period_minutes=180, alarm_needs_review_ratio=0.25,
                                alarm_needs_review_min_notes=12)
    alarms = _alarms(settings)
    thresholds = {name.removeprefix("medscribe-t-"): properties["Threshold"] for name, properties in alarms.items()}
    assert thresholds == {FAILED_ENCOUNTERS: 3, TRANSCRIPTION_FAILURES: 2, SELFHEAL_FAILURES: 4,
                          NEEDS_REVIEW_RATE: 0.25}
    for name, properties in alarms.items():
        periods = {m["MetricStat"]["Period"] for m in properties["Metrics"] if "MetricStat" in m}
        assert periods == ({180 * 60} if name.endswith(NEEDS_REVIEW_RATE) else {5 * 60}), name
    (rate,) = [m["Expression"] for m in alarms[f"medscribe-t-{NEEDS_REVIEW_RATE}"]["Metrics"] if "Expression" in m]
    assert rate == "IF((FILL(d0, 0) + FILL(r0, 0)) >= 12, (FILL(r0, 0)) / (FILL(d0, 0) + FILL(r0, 0)), 0)"
    for properties in alarms.values():  # no PHI: fixed words, counts and statuses
        assert re.fullmatch(r"[A-Za-z0-9 ,.:()_/-]+", properties["AlarmDescription"])


def test_an_alarm_whose_metrics_no_route_of_the_stack_emits_is_left_out() -> None:
    alarms = _alarms(PipelineSettings(stage="t"), tuple(r for r in ROUTES if r.name != "document"))
    assert set(alarms) == {f"medscribe-t-{name}" for name in (FAILED_ENCOUNTERS, TRANSCRIPTION_FAILURES,
                                                              SELFHEAL_FAILURES)}
    (failed,) = [p for name, p in alarms.items() if name.endswith(FAILED_ENCOUNTERS)]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m} == {
        TRANSCRIPTIONS_FAILED}


@pytest.mark.parametrize("bad", [{"alarm_needs_review_ratio": 0}, {"alarm_needs_review_ratio": 1.5},
                                 {"alarm_failed_encounters": 0}, {"alarm_period_minutes": 0},
                                 {"alarm_needs_review_period_minutes": 1441}])
def test_bad_alarm_settings_stop_with_a_message(bad: dict[str, Any]) -> None:
    with pytest.raises(SystemExit, match=next(iter(bad))):
        PipelineSettings.from_context(bad)
