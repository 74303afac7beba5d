"""Pipeline events on the default EventBridge bus (ids only: they are routed, logged and retried).

The detail is built from medscribe.messages.EncounterDetail, the model the document and score handlers
parse it with (and the entities handler)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify
from medscribe.domain.errors import TransientError
from medscribe.messages import EncounterDetail

SOURCE = "medscribe"
READY_FOR_DOCUMENTATION = "Encounter Ready For Documentation"
READY_FOR_SCORING = "Encounter Ready For Scoring"
READY_FOR_ENTITIES = "Encounter Ready For Entities"


class EventPublisher:
    def __init__(self, stage: str, client: Any | None = None) -> None:
        self.stage = stage
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("events")

    def ready_for_documentation(self, encounter_id: str) -> None:
        self._put(READY_FOR_DOCUMENTATION, encounter_id)

    def ready_for_scoring(self, encounter_id: str) -> None:
        """A transcript or a ground truth exists: score the pair if its other half does too."""
        self._put(READY_FOR_SCORING, encounter_id)

    def ready_for_entities(self, encounter_id: str) -> None:
        """A note (or EMR record) was written (DOCUMENTED or NEEDS_REVIEW): code its clinical entities."""
        self._put(READY_FOR_ENTITIES, encounter_id)

    def _put(self, detail_type: str, encounter_id: str) -> None:
        entry = {"Source": SOURCE, "DetailType": detail_type,
                 "Detail": EncounterDetail(encounter_id=encounter_id, stage=self.stage).model_dump_json()}
        try:
            response = self.client.put_events(Entries=[entry])
        except ClientError as exc:
            raise classify(exc) from exc
        if response.get("FailedEntryCount"):
            raise TransientError("EventBridge did not accept the event")
