"""Self-heal handler.

Trigger: SQS queue fed by an EventBridge Scheduler schedule every `selfheal_interval_minutes`
(a timer in the local runtime; `medscribe selfheal` sends one tick on demand), see medscribe.routes.
Side effects: one step of every model in the registry: a new candidate custom vocabulary (and
custom language model) from the missed words and keywords files; evaluation jobs over the
ground-truth recordings; scores, a CSV report, an email and, when the candidate beats the incumbent
by `selfheal_margin`, the ACTIVE model for new jobs.
Idempotency key: the candidate's name is a digest of its phrases (the same phrases never build
twice), and every model step is a conditional status change.
"""

from __future__ import annotations

from functools import partial

from medscribe.handlers import sqs_batch_handler
from medscribe.messages import SelfhealTick, parse
from medscribe.services.wiring import selfheal_service

SERVICE = selfheal_service()


def record_handler(_tick: SelfhealTick) -> None:
    SERVICE.tick()  # every tick means "advance the loop"; the message carries no data


handler = sqs_batch_handler(partial(parse, SelfhealTick), record_handler)
