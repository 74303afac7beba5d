"""Checks every FHIR bundle test applies: fhir.resources' R4B models (types, cardinalities, required
elements, value sets of codes, no unknown elements: nested resources are validated by their own class),
plus the document rules and invariants the models do not check (bdl-7/9/10/11, references that resolve,
narratives that are well-formed XHTML, cmp-1/cmp-2, con-5, ait-1)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B.bundle import Bundle

XHTML = "{http://www.w3.org/1999/xhtml}div"


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def narratives(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("div"), str):
            yield value["div"]
        for item in value.values():
            yield from narratives(item)
    elif isinstance(value, list):
        for item in value:
            yield from narratives(item)


def validate(bundle: dict[str, Any]) -> Bundle:
    """The parsed bundle; raises (pydantic) or fails an assertion when it is not a valid document."""
    parsed = Bundle.model_validate(json.loads(json.dumps(bundle)))  # exactly what a client receives
    assert parsed.type == "document"
    assert bundle["identifier"]["system"]  # bdl-9
    assert bundle["identifier"]["value"]
    assert bundle["timestamp"]  # bdl-10
    entries = bundle["entry"]
    assert entries[0]["resource"]["resourceType"] == "Composition"  # bdl-11
    urls = [e["fullUrl"] for e in entries]
    assert len(set(urls)) == len(urls)  # bdl-7
    for reference in references(bundle):
        assert reference in urls, reference
    for div in narratives(bundle):
        assert ET.fromstring(div).tag == XHTML  # noqa: S314 (our own output) well-formed, in the XHTML namespace
    for section in entries[0]["resource"]["section"]:
        assert section.get("text") or section.get("entry")  # cmp-1
        assert not (section.get("emptyReason") and section.get("entry"))  # cmp-2
    for resource in (e["resource"] for e in entries):
        if resource["resourceType"] == "AllergyIntolerance":
            assert resource.get("clinicalStatus")  # ait-1
    return parsed


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def evidence_lines(extensions: list[dict[str, Any]]) -> list[list[int]]:
    """The line numbers of each transcript-evidence extension."""
    from medscribe.domain.fhir import EVIDENCE_URL

    return [[part["valuePositiveInt"] for part in ext["extension"] if part["url"] == "line"]
            for ext in extensions if ext["url"] == EVIDENCE_URL]


def sample_entities(encounter_id: str) -> dict[str, Any]:
    """A hand-made entity set (EntitySet.as_dict) over lines 2-12, in the shape the entity stage stores:
    one of each resource kind, a negated condition, medication and test, a family finding and an entity
    with no code."""
    from medscribe.domain.clinical_entities import Attribute, Code, Entity, EntitySet, Span

    def entity(eid: str, category: str, kind: str, text: str, line: int, **more: Any) -> Entity:
        return Entity(id=eid, category=category, type=kind, text=text, spans=(Span(line, 0, len(text)),),
                      score=0.9, **more)

    return EntitySet(encounter_id=encounter_id, engine="offline", language="en", entities=(
        Entity(id="e1", category="MEDICAL_CONDITION", type="DX_NAME", text="chest pain",
               spans=(Span(2, 10, 20), Span(3, 0, 10)), score=0.95, traits=("SYMPTOM",),
               codes=(Code("ICD-10-CM", "R07.9", "Chest pain, unspecified", 0.8),)),
        entity("e2", "MEDICATION", "GENERIC_NAME", "aspirin", 4,
               attributes=(Attribute("DOSAGE", "81 mg", (Span(4, 8, 13),)),
                           Attribute("FREQUENCY", "daily", (Span(4, 14, 19),))),
               codes=(Code("RxNorm", "1191", "aspirin"),)),
        entity("e3", "MEDICAL_CONDITION", "DX_NAME", "fever", 5, traits=("NEGATION", "SYMPTOM"),
               codes=(Code("ICD-10-CM", "R50.9", "Fever, unspecified"),)),
        entity("e4", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", "chest x-ray", 6, traits=("NEGATION",)),
        entity("e5", "MEDICAL_CONDITION", "DX_NAME", "diabetes", 7, traits=("PERTAINS_TO_FAMILY",),
               codes=(Code("ICD-10-CM", "E11.9", "Type 2 diabetes mellitus without complications"),)),
        entity("e6", "MEDICAL_CONDITION", "DX_NAME", "allergic to penicillin", 8,
               codes=(Code("SNOMED CT", "91936005", "Allergy to penicillin"),)),
        entity("e7", "TEST_TREATMENT_PROCEDURE", "PROCEDURE_NAME", "ECG", 9,
               codes=(Code("SNOMED CT", "29303009", "Electrocardiographic procedure"),)),
        entity("e8", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", "blood pressure", 10,
               attributes=(Attribute("TEST_VALUE", "140/90", (Span(10, 20, 26),)),)),
        entity("e9", "MEDICATION", "GENERIC_NAME", "ibuprofen", 11, traits=("NEGATION",),
               not_coded="offline: RxNorm is not available"),
        entity("e10", "ANATOMY", "SYSTEM_ORGAN_SITE", "chest", 2),
        entity("e11", "MEDICAL_CONDITION", "DX_NAME", "palpitations", 12, not_coded="no ICD-10-CM match"),
    ), notes=("offline: RxNorm and SNOMED CT are not coded",)).as_dict()
