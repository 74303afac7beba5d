"""Ask: answer a question over one encounter's transcript (used by the ask function URL and the CLI)."""

from __future__ import annotations

from collections.abc import Callable

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.llm import LanguageModel
from medscribe.domain.note_writing import Answer, answer_question
from medscribe.domain.transcript_lines import Line, lines_from_json
from medscribe.observability import logger


class AskService:
    def __init__(self, repository: EncounterRepository, artifacts: ArtifactStore,
                 model: Callable[[], LanguageModel | None],
                 repair_model: Callable[[], LanguageModel | None] | None = None) -> None:
        self.repository = repository
        self.artifacts = artifacts
        self.model = model
        self.repair_model = repair_model or model  # the retry of an answer that is not JSON

    def lines(self, encounter_id: str) -> list[Line] | None:
        encounter = self.repository.get(encounter_id)
        if encounter is None or not encounter.transcript_key:
            return None
        return lines_from_json(self.artifacts.get_json(encounter.transcript_key))

    def ask(self, encounter_id: str, question: str) -> Answer | None:
        lines = self.lines(encounter_id)
        if lines is None:
            return None
        answer = answer_question(lines, question, self.model(), repair_model=self.repair_model())
        logger.info("answered", extra={"encounter_id": encounter_id, "found": answer.found, "verified": answer.verified,
                                       "cited": len(answer.lines)})
        return answer
