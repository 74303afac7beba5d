"""The note template an upload asks for. Pure: the caller reads the key and the object's tags.

Two ways, the tag first:
- the S3 object tag `medscribe-template` = <NAME>;
- a folder segment `template=<NAME>` anywhere below the kind prefix of the key, e.g.
  `audio/clinic-a/template=SOAP/visit.wav` (the innermost such segment wins; the file name is never
  read). Segments are `key=value` so that other per-upload choices (a `language=` segment, say) can
  sit beside it in any order, and a plain folder name never selects anything by accident.
Neither: the deployment's `note_template` applies (the encounter records no template).

<NAME> is a catalogue name in any letter case or an alias (recorded as the catalogue name), or the
name of a custom template `config/templates/<NAME>.json` in the artifacts bucket (recorded as
given; whether it exists is known only when the documentation stage reads it). A name outside
`TEMPLATE_NAME_PATTERN` cannot be a file name there: the upload is rejected with a reason that does
not repeat it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from medscribe.domain.encounter import Kind
from medscribe.domain.notes import TEMPLATE_NAME_PATTERN, catalogue_name

TEMPLATE_TAG = "medscribe-template"
TEMPLATE_SEGMENT = "template"
# Uploads that become notes and so may choose a template (ground truth and keywords never do).
TEMPLATE_KINDS = (Kind.AUDIO, Kind.TEXT)


class TemplateSource(StrEnum):
    TAG = "tag"
    KEY = "key"
    SETTING = "setting"  # neither: the deployment's note_template


class TemplateChoiceError(ValueError):
    """The key or tag names a template in a form no template can have (the message does not repeat it)."""


@dataclass(frozen=True)
class TemplateChoice:
    name: str | None  # None: the deployment's note_template
    source: TemplateSource


def key_segment(key: str, name: str) -> str | None:
    """The value of the innermost `<name>=<value>` folder segment of `key` (after its kind prefix; the
    file name is never read), e.g. `template` or `language`; None when there is none."""
    found = None
    for segment in key.split("/")[1:-1]:
        label, equals, value = segment.partition("=")
        if equals and label.strip().lower() == name:
            found = value.strip()
    return found


def template_in_key(key: str) -> str | None:
    """The value of the innermost `template=<NAME>` folder segment of `key` (after its kind prefix)."""
    return key_segment(key, TEMPLATE_SEGMENT)


def choose_template(key: str, tags: Mapping[str, str]) -> TemplateChoice:
    """The template an upload asks for by its tag, else by its key; raises TemplateChoiceError."""
    tagged = tags.get(TEMPLATE_TAG)
    name, source = (tagged.strip(), TemplateSource.TAG) if tagged is not None else (
        template_in_key(key), TemplateSource.KEY)
    if name is None:
        return TemplateChoice(None, TemplateSource.SETTING)
    if not TEMPLATE_NAME_PATTERN.fullmatch(name):
        raise TemplateChoiceError(f"the {source.value} names a note template in a form no template can have "
                                  "(1-64 letters, digits, '_' or '-', starting with a letter or digit)")
    return TemplateChoice(catalogue_name(name) or name, source)
