"""CloudWatch alarms on the metrics the handlers emit (Powertools EMF), each notifying the topic.

- failed encounters: encounters that ended FAILED (transcription or documentation), summed per period;
- transcription failures: transcriptions that ended FAILED, summed per period;
- self-heal failures: self-heal models that failed to build or stopped at a Transcribe quota;
- NEEDS_REVIEW rate: NEEDS_REVIEW / (DOCUMENTED + NEEDS_REVIEW) per period, over periods with at least
  `alarm_needs_review_min_notes` notes (one note needing review out of one is not a trend).

Powertools adds the dimension `service` (the function's POWERTOOLS_SERVICE_NAME) to every metric, so a
metric emitted by several functions is one CloudWatch metric per function: each alarm adds up the
series of every route that emits it (`EMITTERS`). FILL(m, 0) turns a period without a datapoint into 0,
so a sum or a ratio is not lost when one of its series is silent.
Names and descriptions carry counts and statuses only, never PHI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from medscribe.domain.encounter import EncounterStatus
from medscribe.metric_names import (
    DOCUMENTATION_FAILED,
    SELFHEAL_MODELS_FAILED,
    SELFHEAL_QUOTA_REACHED,
    TRANSCRIPTIONS_FAILED,
    outcome_metric,
)
from medscribe.routes import Route
from medscribe.settings import PipelineSettings
from stacks.naming import METRICS_NAMESPACE, service_name

ENCOUNTERS_DOCUMENTED = outcome_metric(EncounterStatus.DOCUMENTED)
ENCOUNTERS_NEEDS_REVIEW = outcome_metric(EncounterStatus.NEEDS_REVIEW)

# The routes whose handlers emit each metric (tests/infra/test_alarms.py checks it against the handlers).
EMITTERS: dict[str, tuple[str, ...]] = {
    TRANSCRIPTIONS_FAILED: ("ingest", "transcript", "reconcile"),  # every user of the transcription service
    DOCUMENTATION_FAILED: ("document",),
    ENCOUNTERS_DOCUMENTED: ("document",),
    ENCOUNTERS_NEEDS_REVIEW: ("document",),
    SELFHEAL_MODELS_FAILED: ("selfheal",),
    SELFHEAL_QUOTA_REACHED: ("selfheal",),
}

FAILED_ENCOUNTERS = "encounters-failed"
TRANSCRIPTION_FAILURES = "transcriptions-failed"
SELFHEAL_FAILURES = "selfheal-failed"
NEEDS_REVIEW_RATE = "needs-review-rate"
METRIC_ALARMS = (FAILED_ENCOUNTERS, TRANSCRIPTION_FAILURES, SELFHEAL_FAILURES, NEEDS_REVIEW_RATE)
# The metrics each alarm reads (every emitting route's series of each).
ALARM_METRICS: dict[str, tuple[str, ...]] = {
    FAILED_ENCOUNTERS: (TRANSCRIPTIONS_FAILED, DOCUMENTATION_FAILED),
    TRANSCRIPTION_FAILURES: (TRANSCRIPTIONS_FAILED,),
    SELFHEAL_FAILURES: (SELFHEAL_MODELS_FAILED, SELFHEAL_QUOTA_REACHED),
    NEEDS_REVIEW_RATE: (ENCOUNTERS_DOCUMENTED, ENCOUNTERS_NEEDS_REVIEW),
}


def metric_alarm_name(prefix: str, alarm: str) -> str:
    return f"{prefix}-{alarm}"


def alarm_series(alarm: str, routes: Sequence[str]) -> list[tuple[str, str]]:
    """(metric name, route) of every series `alarm` reads in a stack with `routes`: what CloudWatch bills
    a metric math alarm for (one alarm metric each)."""
    return [(name, route) for name in ALARM_METRICS[alarm] for route in EMITTERS[name] if route in routes]


@dataclass(frozen=True)
class _Series:
    metric_name: str
    route: str


class MetricAlarms(Construct):
    """The alarms on the pipeline's own metrics, for the routes the stack has."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, routes: Sequence[Route],
                 topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self._prefix = settings.prefix
        self._routes = {route.name for route in routes}
        self._topic = topic
        period = Duration.minutes(settings.alarm_period_minutes)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._sum_alarm(FAILED_ENCOUNTERS, "Encounters ended FAILED (transcription or documentation)",
                        settings.alarm_failed_encounters, period)
        self._sum_alarm(TRANSCRIPTION_FAILURES, "Transcriptions ended FAILED", settings.alarm_transcription_failures,
                        period)
        self._sum_alarm(SELFHEAL_FAILURES, "Self-heal models failed to build or stopped at a Transcribe quota",
                        settings.alarm_selfheal_failures, period)
        self._needs_review_alarm(settings)

    def _series(self, alarm: str, metric_name: str | None = None) -> list[_Series]:
        return [_Series(name, route) for name, route in alarm_series(alarm, sorted(self._routes))
                if metric_name in (None, name)]

    @staticmethod
    def _metric(series: _Series, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=series.metric_name,
            dimensions_map={"service": service_name(series.route)},
            statistic=cloudwatch.Stats.SUM,
            period=period,
        )

    def _add(self, alarm: str, description: str, expression: cloudwatch.MathExpression, threshold: float) -> None:
        self.alarms[alarm] = created = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in alarm.split("-")),
            alarm_name=metric_alarm_name(self._prefix, alarm),
            alarm_description=description,
            metric=expression,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        created.add_alarm_action(cloudwatch_actions.SnsAction(self._topic))

    def _sum_alarm(self, alarm: str, what: str, threshold: int, period: Duration) -> None:
        series = self._series(alarm)
        if not series:  # none of the emitting routes is in this stack
            return
        using = {f"m{index}": self._metric(one, period) for index, one in enumerate(series)}
        expression = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in using),
            using_metrics=using,
            label=alarm,
            period=period,
        )
        minutes = int(period.to_minutes())
        self._add(alarm, f"{what}: at least {threshold} in {minutes} minutes", expression, threshold)

    def _needs_review_alarm(self, settings: PipelineSettings) -> None:
        period = Duration.minutes(settings.alarm_needs_review_period_minutes)
        documented = self._series(NEEDS_REVIEW_RATE, ENCOUNTERS_DOCUMENTED)
        review = self._series(NEEDS_REVIEW_RATE, ENCOUNTERS_NEEDS_REVIEW)
        if not documented or not review:
            return
        using = {f"d{index}": self._metric(one, period) for index, one in enumerate(documented)}
        using |= {f"r{index}": self._metric(one, period) for index, one in enumerate(review)}
        reviewed = " + ".join(f"FILL(r{index}, 0)" for index in range(len(review)))
        total = " + ".join(f"FILL({name}, 0)" for name in using)
        minimum = settings.alarm_needs_review_min_notes
        expression = cloudwatch.MathExpression(
            expression=f"IF(({total}) >= {minimum}, ({reviewed}) / ({total}), 0)",
            using_metrics=using,
            label=NEEDS_REVIEW_RATE,
            period=period,
        )
        ratio = settings.alarm_needs_review_ratio
        self._add(
            NEEDS_REVIEW_RATE,
            f"Share of notes ending NEEDS_REVIEW reached {ratio:g} in {settings.alarm_needs_review_period_minutes} "
            f"minutes (periods with at least {minimum} notes)",
            expression,
            ratio,
        )
