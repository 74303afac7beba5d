"""FHIR R4 export: one encounter as a FHIR document Bundle, built as plain dicts. Pure.

No FHIR library is imported here (the code layer does not carry one); the tests validate every bundle
with fhir.resources. The bundle is a clinical document and holds PHI (claim text, transcript lines).

**What the Bundle holds** (type `document`; `identifier` and `timestamp` per note version):
- `Composition` (the first entry, as a document requires): status `final` when the exported version is
  signed, else `preliminary` (the pipeline's note or an unsigned edit); type LOINC 34117-2 (History &
  physical note) for the `hp` template, else 11506-3 (Progress note); author the note engine (`Device`)
  and, for a human version, the clinician (`Practitioner`); a signed version has a legal `attester`.
  One section per note section (an EMR record: one per non-empty field), then "After-visit summary" when
  the encounter has one, then a section "Coded clinical entities" whose entries are the resources below
  (or whose text says why there are none).
- `Patient`: a placeholder with no name, birth date or identifier (nothing identifies the patient in a
  recording or a note upload; the receiving EHR links it to its own patient). Tagged `placeholder`.
- `Practitioner`: a placeholder whose only content is the workspace actor id (a Cognito `sub` or
  `local-<user>`: a staff user id, never a patient's data) of the signer, or of the editor of an
  unsigned human version; no identifier for the pipeline's own note. Tagged `placeholder`.
- `Device`: the note engine ("offline", "bedrock:<model id>", ...).
- `Encounter`: status `finished`, class `UNK` (v3 NullFlavor: the setting is not known; nothing is
  invented), identifier the encounter id.
- `DocumentReference` for the recording (audio encounters: its S3 URI, content type and size) and for
  the transcript: the numbered lines embedded as `application/json` (`{"lines": [{"n", "speaker",
  "role", "text"}]}`, base64 in `attachment.data`) with their S3 URI where stored; it `transforms` the
  recording. For a text note structured into an EMR record, the "transcript" is the uploaded text (URI only).
- `Condition` / `MedicationStatement` / `AllergyIntolerance` / `Procedure` / `Observation` from the coded
  entities (domain.clinical_entities), codes in ICD-10-CM, RxNorm and SNOMED CT systems.
- `DocumentReference` for the after-visit summary (domain.after_visit), when one was written: its
  sentences as narrative, the summary JSON (sentences, cited lines, checks) embedded as
  `application/json` in the patient's `language`, one `EVIDENCE_URL` extension per sentence (`item`: its
  1-based position over all sections), `relatesTo` `transforms` the transcript, `docStatus` `preliminary`
  (nobody signs the summary) and the Composition's section "After-visit summary" (after the note's
  sections, before the entities section) pointing at it.

**How evidence is linked.** FHIR has no element for "this sentence of the narrative cites these lines of
that document", so the line numbers travel in extensions under this project's namespace
(`EVIDENCE_URL`), each pointing at the transcript DocumentReference whose embedded lines they number:
- each Composition section carries the transcript in `section.entry` (FHIR: "the actual resource from
  which the narrative in the section is derived"), one `EVIDENCE_URL` extension per claim (sub-extensions
  `item`: the claim's 1-based position, `line` repeated: its cited line numbers, `source`: the transcript
  reference), and the same numbers in its narrative (`[lines 3, 4]` after each claim);
- each clinical resource carries one `EVIDENCE_URL` extension (its entity's lines) and, where R4 has an
  element for it, the transcript in it too: `Condition.evidence.detail`, `MedicationStatement.derivedFrom`,
  `Observation.derivedFrom`.

**Negated and other non-asserted findings** (R4 semantics): a negated condition is a `Condition` with
`verificationStatus` `refuted` and no `clinicalStatus`; a negated medication a `MedicationStatement` with
status `not-taken`; a negated procedure a `Procedure` with status `not-done`. Negated tests and allergies,
and any finding about a family member (`PERTAINS_TO_FAMILY`) or hypothetical, become no resource: they are
listed in the entities section's narrative as "not asserted". Machine-extracted conditions are
`unconfirmed` and observations `preliminary`: nobody has reviewed them.

**Deterministic:** resource ids are uuid5 of (encounter id, resource kind, index or entity id); the
bundle identifier and timestamp come from the exported version (its signature time, else its creation
time), so exporting the same version twice gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from medscribe.domain.clinical_entities import Entity, EntitySet
from medscribe.domain.encounter import Encounter, Kind

NAMESPACE = "https://medscribe.example.org/fhir"  # this project's; no StructureDefinition is published there
EVIDENCE_URL = f"{NAMESPACE}/StructureDefinition/transcript-evidence"
ACTOR_SYSTEM = f"{NAMESPACE}/sid/workspace-actor"
ENCOUNTER_SYSTEM = f"{NAMESPACE}/sid/encounter-id"
TAG_SYSTEM = f"{NAMESPACE}/CodeSystem/tags"
CODE_SYSTEMS = {"ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
                "RxNorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "SNOMED CT": "http://snomed.info/sct"}
LOINC = "http://loinc.org"
DOCUMENT_TYPES = {"hp": ("34117-2", "History and physical note"), "soap": ("11506-3", "Progress note")}
DEFAULT_DOCUMENT_TYPE = ("11506-3", "Progress note")
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
XHTML = "http://www.w3.org/1999/xhtml"
ENTITIES_SECTION = "Coded clinical entities"
SUMMARY_SECTION = "After-visit summary"
MEDIA_TYPES = {"mp3": "audio/mpeg", "mp4": "audio/mp4", "m4a": "audio/mp4", "wav": "audio/wav", "flac": "audio/flac",
               "ogg": "audio/ogg", "amr": "audio/amr", "webm": "audio/webm"}
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, NAMESPACE)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold
_ALLERGY = re.compile(r"allerg|알레르기", re.IGNORECASE)
_NOT_ASSERTED_TRAITS = {"PERTAINS_TO_FAMILY": "about a family member", "HYPOTHETICAL": "hypothetical"}


@dataclass(frozen=True)
class ExportClaim:
    text: str
    lines: tuple[int, ...]


@dataclass(frozen=True)
class ExportSection:
    name: str
    items: tuple[ExportClaim, ...]


@dataclass(frozen=True)
class ExportSource:
    """What one export reads: the record, the exported note version and what it cites."""

    encounter: Encounter
    version: int
    signed: bool
    at: str  # the version's signature time, else its creation time (ISO-8601 UTC)
    author_id: str | None  # the signer, or the editor of a human version; None for the pipeline's note
    template: str | None  # "hp", "soap"; None for an EMR record
    engine: str
    sections: tuple[ExportSection, ...]
    lines: tuple[Mapping[str, Any], ...]  # the numbered lines the claims cite: {"n", "speaker", "role", "text"}
    cited: bool  # claims cite lines (a clinical note); False for an EMR record (structured without citations)
    transcript_uri: str | None  # where the lines (or the uploaded text) are stored
    entities: EntitySet | None
    entities_note: str | None = None  # why there are no entities, when `entities` is None
    summary: Mapping[str, Any] | None = None  # the after-visit summary (`AfterVisitSummary.to_dict()`), if any


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{quote(key, safe='/')}"


def resource_id(encounter_id: str, kind: str, index: int | str = 0) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{encounter_id}/{kind}/{index}"))


def _ref(resource: Mapping[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource['id']}"}


def _clean(text: str) -> str:
    return html.escape(_NOT_XML.sub(" ", text), quote=True)


def _div(body: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _cites(lines: Sequence[int]) -> str:
    return f" [line{'s' if len(lines) != 1 else ''} {', '.join(str(n) for n in lines)}]" if lines else ""


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _evidence(lines: Sequence[int], transcript: Mapping[str, Any], item: int | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "item", "valuePositiveInt": item}] if item is not None else []
    parts += [{"url": "line", "valuePositiveInt": n} for n in lines if n > 0]
    parts.append({"url": "source", "valueReference": _ref(transcript)})
    return {"url": EVIDENCE_URL, "extension": parts}


def _placeholder(resource_type: str, rid: str, narrative: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": resource_type, "id": rid,
            "meta": {"tag": [{"system": TAG_SYSTEM, "code": "placeholder", "display": "placeholder"}]},
            "text": _div(_clean(narrative)), **fields}


def _patient(source: ExportSource) -> dict[str, Any]:
    return _placeholder("Patient", resource_id(source.encounter.encounter_id, "Patient"),
                        "Patient placeholder: the recording or note carries no patient identity; link it to the "
                        "receiving system's patient.")


def _practitioner(source: ExportSource) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if source.author_id:
        fields["identifier"] = [{"system": ACTOR_SYSTEM, "value": source.author_id}]
    who = ("the clinician who " + ("signed" if source.signed else "edited") + " this version"
           if source.author_id else "no clinician has edited or signed this note")
    return _placeholder("Practitioner", resource_id(source.encounter.encounter_id, "Practitioner"),
                        f"Practitioner placeholder ({who}): a workspace user id only.", **fields)


def _device(source: ExportSource) -> dict[str, Any]:
    engine = source.engine or "unknown"
    return {"resourceType": "Device", "id": resource_id(source.encounter.encounter_id, "Device"),
            "text": _div(_clean(f"Note engine: {engine}")),
            "deviceName": [{"name": engine, "type": "model-name"}]}


def _encounter(source: ExportSource, patient: dict[str, Any], practitioner: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter", "id": resource_id(source.encounter.encounter_id, "Encounter"),
        "text": _div(_clean(f"Encounter {source.encounter.encounter_id}")),
        "identifier": [{"system": ENCOUNTER_SYSTEM, "value": source.encounter.encounter_id}],
        "status": "finished",
        "class": {"system": NULL_FLAVOR, "code": "UNK", "display": "unknown"},
        "subject": _ref(patient),
    }
    if source.author_id:
        resource["participant"] = [{"individual": _ref(practitioner)}]
    return resource


def _recording(source: ExportSource, patient: dict[str, Any], encounter: dict[str, Any]) -> dict[str, Any] | None:
    record = source.encounter
    if record.kind is not Kind.AUDIO:
        return None
    media = (record.media_format or record.source_key.rsplit(".", 1)[-1]).lower()
    attachment: dict[str, Any] = {"contentType": MEDIA_TYPES.get(media, "application/octet-stream"),
                                  "url": s3_uri(record.source_bucket, record.source_key), "title": "Recording"}
    if record.size:
        attachment["size"] = record.size
    rid = resource_id(record.encounter_id, "DocumentReference", "recording")
    return {"resourceType": "DocumentReference", "id": rid,
            "text": _div("Recording of the encounter"), "status": "current", "description": "Recording",
            "subject": _ref(patient), "content": [{"attachment": attachment}],
            "context": {"encounter": [_ref(encounter)]}}


def _transcript(source: ExportSource, patient: dict[str, Any], encounter: dict[str, Any],
                recording: dict[str, Any] | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"title": "Numbered transcript lines" if source.lines else "Uploaded note"}
    if source.lines:
        lines = [{key: line.get(key) for key in ("n", "speaker", "role", "text")} for line in source.lines]
        attachment.update(contentType="application/json", data=base64.b64encode(
            json.dumps({"lines": lines}, ensure_ascii=False, sort_keys=True).encode("utf-8")).decode("ascii"))
    else:
        attachment["contentType"] = "text/plain; charset=utf-8"
    if source.transcript_uri:
        attachment["url"] = source.transcript_uri
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id(source.encounter.encounter_id, "DocumentReference", "transcript"),
        "text": _div(_clean(f"{attachment['title']} ({len(source.lines)} lines)" if source.lines
                            else attachment["title"])),
        "status": "current", "description": attachment["title"], "subject": _ref(patient),
        "content": [{"attachment": attachment}], "context": {"encounter": [_ref(encounter)]}}
    if recording is not None:
        resource["relatesTo"] = [{"code": "transforms", "target": _ref(recording)}]
    return resource


def _note_section(section: ExportSection, transcript: dict[str, Any], cited: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"title": section.name}
    if not section.items:
        result.update(text=_div("Nothing documented in this section."),
                      emptyReason=_concept(EMPTY_REASON, "unavailable", "Unavailable"))
        return result
    result["text"] = _div(_list(_clean(claim.text) + _cites(claim.lines) for claim in section.items)
                          + ("" if cited else "<p>Structured from the uploaded note: no line citations.</p>"))
    if cited:
        result["extension"] = [_evidence(claim.lines, transcript, item)
                               for item, claim in enumerate(section.items, start=1)]
    result["entry"] = [_ref(transcript)]
    return result


def _summary(source: ExportSource, ids: Mapping[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The after-visit summary's DocumentReference and the Composition section that points at it."""
    summary = source.summary or {}
    sentences = [s for section in summary.get("sections") or [] for s in section.get("sentences") or []]
    rows = [_clean(str(s.get("text", ""))) + _cites([int(n) for n in s.get("lines") or []])
            + ("" if s.get("verified") else " (not supported by its cited lines)") for s in sentences]
    heading = f"{summary.get('title') or SUMMARY_SECTION} ({summary.get('status')}, engine {summary.get('engine')})"
    narrative = f"<p>{_clean(heading)}</p>" + (_list(rows) if rows else "<p>No sentences.</p>")
    data = json.dumps(summary, ensure_ascii=False, sort_keys=True).encode("utf-8")
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id(source.encounter.encounter_id, "DocumentReference", "summary"),
        "text": _div(narrative), "status": "current", "docStatus": "preliminary",
        "type": {"text": SUMMARY_SECTION}, "description": SUMMARY_SECTION, "subject": _ref(ids["patient"]),
        "relatesTo": [{"code": "transforms", "target": _ref(ids["transcript"])}],
        "content": [{"attachment": {"contentType": "application/json", "language": str(summary.get("language") or "en"),
                                    "title": str(summary.get("title") or SUMMARY_SECTION),
                                    "data": base64.b64encode(data).decode("ascii")}}],
        "context": {"encounter": [_ref(ids["encounter"])]}}
    evidence = [_evidence([int(n) for n in s.get("lines") or []], ids["transcript"], item)
                for item, s in enumerate(sentences, start=1)]
    if evidence:
        resource["extension"] = evidence
    return resource, {"title": SUMMARY_SECTION, "text": _div(narrative), "entry": [_ref(resource)]}


def _code(entity: Entity) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": entity.text}
    codings = [{"system": CODE_SYSTEMS[c.system], "code": c.code, "display": c.description}
               for c in entity.codes if c.system in CODE_SYSTEMS]
    if codings:
        concept["coding"] = codings
    return concept


def _kind(entity: Entity) -> str | None:
    """The resource type an entity becomes, or None when it becomes none."""
    if entity.category == "MEDICAL_CONDITION":
        return "AllergyIntolerance" if _ALLERGY.search(entity.text) else "Condition"
    if entity.category == "MEDICATION":
        return "MedicationStatement"
    if entity.category == "TEST_TREATMENT_PROCEDURE":
        return "Observation" if entity.type.startswith("TEST") else "Procedure"
    return None  # ANATOMY, TIME_EXPRESSION: attributes of other findings, not resources


def _not_asserted(entity: Entity, kind: str) -> str | None:
    """Why an entity is not asserted as a resource, or None when it is one."""
    for trait, why in _NOT_ASSERTED_TRAITS.items():
        if trait in entity.traits:
            return why
    if entity.negated and kind in ("Observation", "AllergyIntolerance"):
        return "negated"
    return None


def _clinical(entity: Entity, kind: str, encounter_id: str, ids: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    patient, encounter, transcript = ids["patient"], ids["encounter"], ids["transcript"]
    resource: dict[str, Any] = {"resourceType": kind, "id": resource_id(encounter_id, kind, entity.id),
                                "text": _div(_clean(entity.text) + _cites(entity.lines)),
                                "extension": [_evidence(entity.lines, transcript)]}
    code = _code(entity)
    if kind == "Condition":
        verification = ("refuted", "Refuted") if entity.negated else ("unconfirmed", "Unconfirmed")
        resource.update(verificationStatus=_concept(CONDITION_VERIFICATION, *verification),
                        category=[_concept(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
                        code=code, subject=_ref(patient), encounter=_ref(encounter),
                        evidence=[{"detail": [_ref(transcript)]}])
        if not entity.negated and "PAST_HISTORY" not in entity.traits:
            resource["clinicalStatus"] = _concept(CONDITION_CLINICAL, "active", "Active")
    elif kind == "AllergyIntolerance":
        resource.update(clinicalStatus=_concept(ALLERGY_CLINICAL, "active", "Active"),
                        verificationStatus=_concept(ALLERGY_VERIFICATION, "unconfirmed", "Unconfirmed"),
                        code=code, patient=_ref(patient), encounter=_ref(encounter))
    elif kind == "MedicationStatement":
        status = ("not-taken" if entity.negated else "intended" if "FUTURE" in entity.traits
                  else "completed" if "PAST_HISTORY" in entity.traits else "active")
        resource.update(status=status, medicationCodeableConcept=code, subject=_ref(patient),
                        context=_ref(encounter), derivedFrom=[_ref(transcript)])
        dosage = "; ".join(f"{a.type.lower()}: {a.text}" for a in entity.attributes)
        if dosage:
            resource["dosage"] = [{"text": dosage}]
    elif kind == "Procedure":
        status = ("not-done" if entity.negated else "preparation" if "FUTURE" in entity.traits else "completed")
        resource.update(status=status, code=code, subject=_ref(patient), encounter=_ref(encounter))
    else:  # Observation
        resource.update(status="preliminary", code=code, subject=_ref(patient), encounter=_ref(encounter),
                        derivedFrom=[_ref(transcript)])
        values = [a.text for a in entity.attributes if a.type in ("TEST_VALUE", "TEST_UNIT")]
        if values:
            resource["valueString"] = " ".join(values)
    return resource


def _entities(source: ExportSource, ids: Mapping[str, dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The entities section and its resources."""
    section: dict[str, Any] = {"title": ENTITIES_SECTION}
    if source.entities is None:
        section.update(text=_div(_clean(source.entities_note or "No coded entities for this encounter.")),
                       emptyReason=_concept(EMPTY_REASON, "notstarted", "Not Started"))
        return section, []
    resources: list[dict[str, Any]] = []
    rows: list[str] = []
    for entity in source.entities.entities:
        kind = _kind(entity)
        if kind is None:
            continue
        codes = (", ".join(f"{c.system} {c.code}" for c in entity.codes)
                 or f"not coded ({entity.not_coded or 'no reason given'})")
        why = _not_asserted(entity, kind)
        if why is not None:
            rows.append(_clean(f"{entity.text}: not asserted ({why}); {codes}") + _cites(entity.lines))
            continue
        resource = _clinical(entity, kind, source.encounter.encounter_id, ids)
        resources.append(resource)
        state = " (negated)" if entity.negated else ""
        rows.append(_clean(f"{kind}{state}: {entity.text}; {codes}") + _cites(entity.lines))
    notes = "".join(f"<p>{_clean(note)}</p>" for note in source.entities.notes)
    engine = _clean(f"Engine: {source.entities.engine}; machine-extracted, not reviewed.")
    section["text"] = _div(f"<p>{engine}</p>" + (_list(rows) if rows else "<p>No entities found.</p>") + notes)
    if resources:
        section["entry"] = [_ref(r) for r in resources]
    else:
        section["emptyReason"] = _concept(EMPTY_REASON, "nilknown", "Nil Known")
    return section, resources


def document_bundle(source: ExportSource) -> dict[str, Any]:
    """The FHIR R4 document Bundle of one note version (see the module docstring)."""
    encounter_id = source.encounter.encounter_id
    patient, practitioner, device = _patient(source), _practitioner(source), _device(source)
    encounter = _encounter(source, patient, practitioner)
    recording = _recording(source, patient, encounter)
    transcript = _transcript(source, patient, encounter, recording)
    ids = {"patient": patient, "encounter": encounter, "transcript": transcript}
    entities_section, clinical = _entities(source, ids)
    summary, summary_section = _summary(source, ids) if source.summary else (None, None)
    code, display = DOCUMENT_TYPES.get(source.template or "", DEFAULT_DOCUMENT_TYPE)
    state = "signed" if source.signed else "preliminary, not signed"
    composition: dict[str, Any] = {
        "resourceType": "Composition", "id": resource_id(encounter_id, "Composition", source.version),
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": f"urn:uuid:{resource_id(encounter_id, 'CompositionIdentifier', source.version)}"},
        "status": "final" if source.signed else "preliminary",
        "type": _concept(LOINC, code, display), "subject": _ref(patient), "encounter": _ref(encounter),
        "date": source.at, "author": [_ref(device)] + ([_ref(practitioner)] if source.author_id else []),
        "title": f"{display} (version {source.version}, {state})",
        "section": [*(_note_section(s, transcript, source.cited) for s in source.sections),
                    *([summary_section] if summary_section else []), entities_section],
    }
    if source.signed:
        composition["attester"] = [{"mode": "legal", "time": source.at, "party": _ref(practitioner)}]
    resources = [composition, patient, encounter, practitioner, device,
                 *([recording] if recording else []), transcript, *clinical, *([summary] if summary else [])]
    document = f"{source.version}-{composition['status']}"
    return {
        "resourceType": "Bundle", "id": resource_id(encounter_id, "Bundle", document),
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": f"urn:uuid:{resource_id(encounter_id, 'BundleIdentifier', document)}"},
        "type": "document", "timestamp": source.at,
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
