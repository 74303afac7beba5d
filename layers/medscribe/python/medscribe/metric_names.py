"""Names of the metrics the services emit that CloudWatch alarms watch (stacks/alarms.py).

One definition for the emitter and the alarm: renaming a metric here renames both, and the infra
test (tests/infra/test_alarms.py) checks every alarm's metric against these names.
"""

from __future__ import annotations

from medscribe.domain.encounter import EncounterStatus

# An encounter's transcription ended FAILED (job failed, request rejected, transcript unreadable).
TRANSCRIPTIONS_FAILED = "TranscriptionsFailed"
# An encounter's documentation ended FAILED (a permanent error writing its note or EMR record).
DOCUMENTATION_FAILED = "DocumentationFailed"
# A self-heal candidate model ended FAILED (its vocabulary or language model failed to build).
SELFHEAL_MODELS_FAILED = "SelfHealModelsFailed"
# A self-heal build stopped at a Transcribe account quota (the model is FAILED with a quota reason).
SELFHEAL_QUOTA_REACHED = "SelfHealQuotaReached"


def outcome_metric(status: EncounterStatus) -> str:
    """The documentation outcome count: `EncountersDocumented`, `EncountersNeedsReview`."""
    return f"Encounters{status.title().replace('_', '')}"
