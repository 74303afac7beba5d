"""Estimated AWS cost of one audio encounter (default 15 minutes), from a price table you can edit.

Prices come from bench/prices.json (or --prices FILE): USD list prices with the source page of each.
Prices change; the file says when they were taken. Workload guesses are that file's "assumptions".
Settings (Medical or standard Transcribe, the Bedrock model id, the note template, OpenSearch instance
type/count/volume) come from cdk.json; memory sizes from routes.ROUTES.

How each line is estimated:
- Transcribe: billed seconds (per-second billing, 15 s minimum) x the per-minute price; standard and
  Medical are both shown, the configured one counts in the total.
- Bedrock: the documentation stage's real request. Words per minute are derived from the sample-data
  ground truth (words / audio duration) and from PriMock57's timed consultations
  (tests/fixtures/dialogues); the higher rate is used. PriMock57 turns are repeated to that many
  words, and `write_note` renders the request through a recording model: system prompt, user
  prompt with the numbered transcript, tool schema. Tokens ~ words x 1.3 for text, characters / 4
  for JSON, plus Anthropic's tool-use system prompt. Output: a note of (ACI-BENCH reference note
  words per dialogue word) x transcript words, as claims of the reference notes' sentence length,
  in the template's JSON; `repair_rate` of notes pay one repair call (prompt + previous answer).
  The optional claim judge (`claim_judge`): the judge requests `judge_note` renders for that note
  (each claim with its cited lines, batches of 40), answered with one verdict per claim; in the
  total when the setting is on, else listed under alternatives.
- Lambda: invocations per encounter (FLOW) x billed ms (assumptions; document adds the model wait)
  x memory from ROUTES, plus requests, logs and X-Ray traces.
- SQS, EventBridge (custom events, Pipes), DynamoDB (WRU/RRU from the repository's writes: every
  encounter-record write also writes its three GSIs, transactions cost double), S3 (requests and
  one month of storage): counted per encounter in FLOW below, from the pipeline's code path
  (audio, first try, no ground truth).
- Comprehend Medical, entities stage (`entity_engine` comprehend-medical): the transcript's characters
  (words x `chars_per_word`) sent to DetectEntitiesV2 in pieces of fewer than 20,000 bytes and to each
  of InferICD10CM, InferRxNorm and InferSNOMEDCT in pieces of 10,000; each request is billed in units of
  100 characters with a 1-unit minimum (medscribe.adapters.comprehend_medical), at each API's price;
  DetectPHI (redacted copies) on the lines and the note's claims. Korean is not sent (not counted).
- Comprehend Medical (self-heal, DetectEntitiesV2): missed words of the `scored_share` of encounters.
- The clinician workspace (`workspace_enabled`): each review of an encounter makes
  `workspace_requests_per_encounter` HTTP API requests, each of which invokes the Lambda authorizer (no
  result caching) and the workspace function (billed ms from `lambda_ms`, memory from routes.WORKSPACE and
  WORKSPACE_AUTHORIZER), with their logs and traces; the Cognito user pool is billed per monthly active
  user on its feature plan (Plus: threat protection; stacks/workspace.py), a fixed monthly cost below, and
  the Essentials plan (no threat protection) is listed under alternatives.
- Fixed monthly costs shared by --encounters-per-month: the OpenSearch domain, the KMS key, the DLQ
  alarms and the alarms on the pipeline's metrics (stacks/alarms.py; a metric math alarm is billed
  per metric it reads), the schedules (reconcile, self-heal) and Lambda's idle polling of the queues.

Reproduce: .venv/bin/python bench/cost.py [--minutes 15] [--prices bench/prices.json]
                                          [--encounters-per-month 1000]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medscribe.adapters.comprehend_medical import DETECT_TEXT_BYTES, INFER_TEXT_BYTES
from medscribe.domain.claim_judge import JUDGE_SCHEMA, JUDGE_TOOL, judge_note
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.llm import Generation
from medscribe.domain.note_writing import DEFAULT_MAX_TOKENS, write_note
from medscribe.domain.notes import Claim, Note, Section
from medscribe.domain.transcript_lines import Line
from medscribe.routes import ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER, route
from medscribe.settings import PipelineSettings, load_settings, project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT))  # stacks/: the alarms the stack creates are priced from its own definitions
from stacks.alarms import METRIC_ALARMS, alarm_series  # noqa: E402

DIALOGUES = ROOT / "tests" / "fixtures" / "dialogues"
SAMPLE_AUDIO = ROOT / "sample-data" / "audio" / "fareez"
SAMPLE_TRUTH = ROOT / "sample-data" / "ground-truth" / "fareez"
DEFAULT_PRICES = Path(__file__).resolve().parent / "prices.json"
COMMAND = ".venv/bin/python bench/cost.py"
_SENTENCE = re.compile(r"[.!?]+\s+|\n+")

# What one audio encounter (first try, no ground truth, no redelivery) causes, from the code path:
# ingest (validate, create the record, take a slot, start the job) -> Transcribe -> transcript stage
# (lines, CSV, DOCX, TRANSCRIBED, two events) -> document (note, review page, DOCUMENTED) and score
# (no ground truth: nothing to do) -> entities (entities JSON, the encounter's codes) -> index (one
# message per encounter-record change).
ENCOUNTER_RECORD_CHANGES = 5  # created RECEIVED, TRANSCRIBING, TRANSCRIBED, DOCUMENTED, entities recorded
INVOCATIONS = {"ingest": 1, "transcript": 1, "document": 1, "entities": 1, "score": 1,
               "index": ENCOUNTER_RECORD_CHANGES}
FLOW: dict[str, float] = {
    # every queue message is sent, received and deleted (3 requests); one message per invocation above
    "sqs_requests": 3 * sum(INVOCATIONS.values()),
    # Encounter Ready For Documentation / For Scoring / For Entities (the job event is free)
    "eventbridge_custom_events": 3,
    "pipes_requests": ENCOUNTER_RECORD_CHANGES,  # the stream filter passes encounter items only
    # source order 1; create 1 + 3 GSIs; take and give back a slot: transactions of 2 items (2x) + 3 GSIs
    # (the status index changes key: 2); DOCUMENTED 1 + 3 GSIs (status 2); entities 1 + 3 GSIs (unchanged keys)
    "dynamodb_wru": 1 + 4 + (2 * 2 + 4) * 2 + 5 + 4,
    # consistent gets: transcript 2 + waiting-work query 1, document 1, entities 1, score 2, index 1 per change
    "dynamodb_rru": 2 + 1 + 1 + 1 + 2 + ENCOUNTER_RECORD_CHANGES,
    "dynamodb_stream_reads": ENCOUNTER_RECORD_CHANGES + 1,  # the source-order item streams too (filtered)
    # upload, Transcribe output, lines JSON, CSV, DOCX, note JSON, review page, entities JSON
    "s3_puts": 8,
    # ingest header, Transcribe media, Transcribe output, 6 prompt/template override lookups + lines,
    # entities: lines, score 1, index: lines and note for the later changes
    "s3_gets": 1 + 1 + 1 + 6 + 1 + 1 + 1 + 4,
}
SCHEDULED = {"reconcile": 30 * 24 * 12, "selfheal": 30 * 24}  # runs a month: every 5 min, hourly (cdk.json)


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    source: str
    words_per_minute: float
    lines_per_minute: float | None


def sample_data_rate() -> Rate | None:
    """Words per minute of the sample recordings' ground truth (container durations via PyAV)."""
    try:
        import av
    except ImportError:
        return None
    words = seconds = 0.0
    for audio in sorted(SAMPLE_AUDIO.glob("*.mp3")):
        truth = SAMPLE_TRUTH / f"{audio.stem}.txt"
        if truth.exists():
            with av.open(str(audio)) as container:
                seconds += float(container.duration or 0) / 1_000_000
            words += len(truth.read_text(encoding="utf-8").split())
    return Rate(f"sample-data ground truth ({SAMPLE_TRUTH.relative_to(ROOT)})", 60 * words / seconds, None) \
        if seconds else None


def primock_consultations() -> list[list[Line]]:
    return [dialogue_lines(path.read_text(encoding="utf-8"))
            for path in sorted((DIALOGUES / "primock57" / "derived_dialogues").glob("*.txt"))]


def primock_rate(consultations: Sequence[Sequence[Line]]) -> Rate | None:
    words = lines = seconds = 0.0
    for consultation in consultations:
        timed = [line for line in consultation if line.end > 0]
        if timed:
            seconds += max(line.end for line in timed) - min(line.start for line in timed)
            words += sum(len(line.text.split()) for line in consultation)
            lines += len(consultation)
    return Rate("PriMock57 timed consultations", 60 * words / seconds, 60 * lines / seconds) if seconds else None


@dataclass(frozen=True)
class NoteShape:
    words_per_dialogue_word: float
    words_per_claim: float
    encounters: int


def aci_note_shape() -> NoteShape:
    """Reference note size relative to its dialogue, and sentence length, over the ACI-BENCH subset."""
    ratios, sentence_words = [], []
    for path in sorted((DIALOGUES / "aci-bench").glob("*.subset.csv")):
        if "metadata" in path.name:
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                ratios.append(len(row["note"].split()) / max(1, len(row["dialogue"].split())))
                sentence_words += [len(s.split()) for s in _SENTENCE.split(row["note"]) if s.split()]
    return NoteShape(statistics.fmean(ratios), statistics.fmean(sentence_words), len(ratios))


def transcript_of(words: int, consultations: Sequence[Sequence[Line]]) -> list[Line]:
    """Real turns repeated, renumbered, until they hold `words` words."""
    turns = [line for consultation in consultations for line in consultation]
    lines: list[Line] = []
    total = 0
    while total < words:
        turn = turns[len(lines) % len(turns)]
        lines.append(Line(len(lines) + 1, turn.speaker, 0.0, 0.0, turn.text, None))
        total += len(turn.text.split())
    return lines


# -- the model request --------------------------------------------------------------------------


@dataclass
class RecordingModel:
    """A LanguageModel that records each request and answers a valid note of the expected shape."""

    claims: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def engine(self) -> str:
        return "bench:recording"

    def generate_json(self, *, system: str, prompt: str, schema: dict[str, Any], tool_name: str,
                      max_tokens: int = 4096) -> Generation:
        self.requests.append({"system": system, "prompt": prompt, "schema": schema, "tool_name": tool_name})
        cited = [int(n) for n in re.findall(r"^(\d+) \[", prompt, flags=re.MULTILINE)]
        names = schema["properties"]["sections"]["items"]["properties"]["name"]["enum"]
        per_section = -(-self.claims // len(names))
        sections = [{"name": name, "items": [{"text": "x", "lines": [cited[0], cited[-1]]}] * per_section}
                    for name in names]
        answer = {"sections": sections}
        self.answers.append(answer)
        return Generation(self.engine, answer, json.dumps(answer), "tool_use")

    def generate_text(self, *, system: str, prompt: str, max_tokens: int = 1024) -> Generation:
        raise NotImplementedError


@dataclass(frozen=True)
class Tokens:
    calls: int
    input: float
    output: float
    transcript_words: int
    lines: int
    note_words: float
    capped: bool  # an answer would pass max_tokens: the estimate counts the cap (the note is cut short)
    judge_calls: int = 0  # the optional claim judge (claim_judge)
    judge_input: float = 0.0
    judge_output: float = 0.0


@dataclass
class RecordingJudge:
    """Records each claim-judge request and answers every claim supported."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    engine: str = "bench:judge"

    def generate_json(self, *, system: str, prompt: str, schema: dict[str, Any], tool_name: str,
                      max_tokens: int = 4096) -> Generation:
        self.requests.append({"system": system, "prompt": prompt, "schema": schema, "tool_name": tool_name})
        count = len(re.findall(r"^C\d+: ", prompt, flags=re.MULTILINE))
        answer = {"verdicts": [{"claim": n, "verdict": "supported"} for n in range(1, count + 1)]}
        self.answers.append(answer)
        return Generation(self.engine, answer, json.dumps(answer), "tool_use")

    def generate_text(self, *, system: str, prompt: str, max_tokens: int = 1024) -> Generation:
        raise NotImplementedError


def note_tokens(lines: Sequence[Line], settings: PipelineSettings, shape: NoteShape,
                assumptions: dict[str, Any]) -> Tokens:
    per_word, per_char = float(assumptions["tokens_per_word"]), 1 / float(assumptions["json_chars_per_token"])
    ratio = assumptions["note_words_per_transcript_word"] or shape.words_per_dialogue_word
    words = sum(len(line.text.split()) for line in lines)
    note_words = ratio * words
    model = RecordingModel(claims=max(1, round(note_words / shape.words_per_claim)))
    note = write_note(lines, template=settings.note_template, engine=model)
    input_tokens = output_tokens = 0.0
    capped = False
    for request, answer in zip(model.requests, model.answers, strict=True):
        tool = {"name": request["tool_name"], "inputSchema": request["schema"],
                "description": "Record the structured answer. Call this tool exactly once with the complete answer."}
        input_tokens += per_word * len((request["system"] + "\n" + request["prompt"]).split())
        input_tokens += per_char * len(json.dumps(tool)) + float(assumptions["tool_use_system_tokens"])
        # the answer's JSON skeleton as characters, its statements as words; the stage caps each answer
        answer_tokens = per_char * len(json.dumps(answer)) + per_word * note_words / len(model.requests)
        capped = capped or answer_tokens > DEFAULT_MAX_TOKENS
        output_tokens += min(answer_tokens, DEFAULT_MAX_TOKENS)
    # the claim judge sees each claim (as long as the reference notes' sentences) with its cited lines
    claim_text = " ".join(["word"] * round(shape.words_per_claim))
    judged = Note(note.template, note.engine, note.lines,
                  tuple(Section(s.name, tuple(Claim(claim_text, c.lines) for c in s.items)) for s in note.sections))
    judge = RecordingJudge()
    judge_note(judged, judge)
    tool = {"name": JUDGE_TOOL, "inputSchema": JUDGE_SCHEMA, "description": "Record the structured answer."}
    judge_input = sum(per_word * len((r["system"] + "\n" + r["prompt"]).split()) + per_char * len(json.dumps(tool))
                      + float(assumptions["tool_use_system_tokens"]) for r in judge.requests)
    judge_output = sum(per_char * len(json.dumps(answer)) for answer in judge.answers)
    return Tokens(len(model.requests), input_tokens, output_tokens, words, len(lines), note_words, capped,
                  len(judge.requests), judge_input, judge_output)


def bedrock_price(model_id: str, prices: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """(price key and tier, USD per million tokens) for a model id or inference profile id."""
    parts = model_id.split(".")
    tier = "global" if parts[0] == "global" else "geo"
    base = ".".join(parts[1:] if parts[0] in {"global", "us", "eu", "apac", "jp", "au", "ca"} else parts)
    for key, entry in prices["bedrock_models"].items():
        if not key.startswith("_") and base.startswith(key):
            return f"{key} ({tier})", entry[tier]
    raise SystemExit(f"no Bedrock price for {model_id!r}: add it to bedrock_models in the price file")


# -- the estimate -------------------------------------------------------------------------------


@dataclass
class Estimate:
    lines: list[tuple[str, float, str]] = field(default_factory=list)  # (service, USD, how)
    fixed: list[tuple[str, float, str]] = field(default_factory=list)  # (item, USD a month, how)
    alternatives: list[tuple[str, float, str]] = field(default_factory=list)

    def add(self, service: str, usd: float, how: str) -> None:
        self.lines.append((service, usd, how))


def billed_units(chars: float, limit: int, unit: int) -> tuple[int, int]:
    """(requests, billed units) for `chars` characters sent in pieces of at most `limit` (ASCII-sized
    text: bytes = characters), each request billed per `unit` characters, at least one unit."""
    whole = math.ceil(chars)
    sizes = [limit] * (whole // limit) + ([whole % limit] if whole % limit else [])
    return len(sizes), sum(max(1, math.ceil(size / unit)) for size in sizes)


def estimate(minutes: float, prices: dict[str, Any], settings: PipelineSettings, tokens: Tokens,
             encounters_per_month: float) -> Estimate:
    p = {name: float(entry["usd"]) for name, entry in prices["prices"].items()}
    rules, a = prices["billing_rules"], prices["assumptions"]
    out = Estimate()

    seconds = max(float(rules["transcribe_minimum_seconds"]), 60 * minutes)
    standard = seconds / 60 * p["transcribe_standard_per_minute"]
    medical = seconds / 60 * p["transcribe_medical_per_minute"]
    chosen, other = (medical, standard) if settings.transcribe_medical else (standard, medical)
    kind = "Medical" if settings.transcribe_medical else "standard"
    out.add(f"Transcribe ({kind})", chosen, f"{seconds:.0f} s billed")
    out.alternatives.append((f"Transcribe ({'standard' if settings.transcribe_medical else 'Medical'})", other,
                             f"{seconds:.0f} s billed; instead of the line above"))

    repair = float(a["repair_rate"])
    in_tokens = tokens.input * (1 + repair) + repair * tokens.output  # the repair resends prompt + answer
    out_tokens = tokens.output * (1 + repair)
    key, per_million = bedrock_price(settings.bedrock_model_id, prices)
    out.add("Bedrock", (in_tokens * per_million["input"] + out_tokens * per_million["output"]) / 1e6,
            f"{key}: {in_tokens:,.0f} in + {out_tokens:,.0f} out tokens")
    judge_usd = (tokens.judge_input * per_million["input"] + tokens.judge_output * per_million["output"]) / 1e6
    judge_how = (f"{key}: {tokens.judge_calls} request(s), {tokens.judge_input:,.0f} in + "
                 f"{tokens.judge_output:,.0f} out tokens")
    if settings.claim_judge:
        out.add("Bedrock (claim judge)", judge_usd, judge_how)
    else:
        out.alternatives.append(("Bedrock claim judge", judge_usd, judge_how + "; with claim_judge on, in addition"))
    long_key, long_price = bedrock_price(settings.bedrock_long_model_id, prices)
    out.alternatives.append(("Bedrock (long model)", (in_tokens * long_price["input"]
                                                      + out_tokens * long_price["output"]) / 1e6,
                             f"{long_key}, same tokens"))

    model_wait_ms = 1000 * (float(a["bedrock_first_token_seconds"])
                            + out_tokens / float(a["bedrock_output_tokens_per_second"]))
    gb_seconds = 0.0
    for name, count in INVOCATIONS.items():
        ms = float(a["lambda_ms"][name]) + (model_wait_ms if name == "document" else 0.0)
        gb_seconds += count * ms / 1000 * route(name).memory_mb / 1024
    invocations = sum(INVOCATIONS.values())
    out.add("Lambda", gb_seconds * p["lambda_arm64_gb_second"] + invocations * p["lambda_request"],
            f"{invocations} invocations, {gb_seconds:.1f} GB-s (document waits {model_wait_ms / 1000:.0f} s)")
    log_gb = invocations * float(a["log_kb_per_invocation"]) / 1024 / 1024
    out.add("CloudWatch Logs + X-Ray", log_gb * p["cloudwatch_logs_ingest_gb"] + invocations * p["xray_trace"],
            f"{invocations} traces, {invocations * float(a['log_kb_per_invocation']):.0f} KB of logs")
    out.add("SQS", FLOW["sqs_requests"] * p["sqs_request"], f"{FLOW['sqs_requests']:.0f} requests")
    out.add("EventBridge", FLOW["eventbridge_custom_events"] * p["eventbridge_custom_event"]
            + FLOW["pipes_requests"] * p["eventbridge_pipes_request"],
            f"{FLOW['eventbridge_custom_events']:.0f} custom events, {FLOW['pipes_requests']:.0f} Pipes requests")
    out.add("DynamoDB", FLOW["dynamodb_wru"] * p["dynamodb_write_request_unit"]
            + FLOW["dynamodb_rru"] * p["dynamodb_read_request_unit"]
            + FLOW["dynamodb_stream_reads"] * p["dynamodb_stream_read_request"],
            f"{FLOW['dynamodb_wru']:.0f} WRU, {FLOW['dynamodb_rru']:.0f} RRU, "
            f"{FLOW['dynamodb_stream_reads']:.0f} stream reads")
    stored_gb = (minutes * float(a["audio_mb_per_minute"]) + float(a["artifact_mb"])) / 1024
    out.add("S3", FLOW["s3_puts"] * p["s3_put_request"] + FLOW["s3_gets"] * p["s3_get_request"]
            + stored_gb * float(a["storage_months"]) * p["s3_storage_gb_month"],
            f"{FLOW['s3_puts']:.0f} PUT, {FLOW['s3_gets']:.0f} GET, {1024 * stored_gb:.1f} MB x "
            f"{a['storage_months']} month(s)")

    if settings.workspace_enabled:
        _workspace(out, p, a)

    if settings.entity_engine == "comprehend-medical":
        text_chars = tokens.transcript_words * float(a["chars_per_word"])
        unit = int(rules["comprehend_medical_unit_characters"])
        apis = (("DetectEntitiesV2", "comprehend_medical_unit", DETECT_TEXT_BYTES, text_chars),
                ("InferICD10CM", "comprehend_medical_icd10cm_unit", INFER_TEXT_BYTES, text_chars),
                ("InferRxNorm", "comprehend_medical_rxnorm_unit", INFER_TEXT_BYTES, text_chars),
                ("InferSNOMEDCT", "comprehend_medical_snomedct_unit", INFER_TEXT_BYTES, text_chars),
                ("DetectPHI", "comprehend_medical_phi_unit", DETECT_TEXT_BYTES,  # the lines, the note's claims
                 text_chars + tokens.note_words * float(a["chars_per_word"])))
        for api, price, limit, chars in apis:
            requests, units = billed_units(chars, limit, unit)
            out.add(f"CompMed {api}", units * p[price],
                    f"entities stage: {requests} request(s), {units} units of {unit} characters")
    missed_chars = float(a["scored_share"]) * tokens.transcript_words * float(a["missed_word_rate"]) \
        * float(a["chars_per_word"])
    # self-heal sends the missed words of many encounters together: the per-document minimum does not bind
    units = missed_chars / float(rules["comprehend_medical_unit_characters"])
    out.add("Comprehend Medical", units * p["comprehend_medical_unit"],
            f"{a['scored_share']:.0%} scored x {a['missed_word_rate']:.0%} missed words")

    instance_prices = prices["opensearch_instance_hour"]
    if settings.search_instance_type not in instance_prices:
        raise SystemExit(f"no OpenSearch price for {settings.search_instance_type!r}: add it to the price file")
    search = 730 * settings.search_instance_count * float(instance_prices[settings.search_instance_type]) \
        + settings.search_volume_gb * settings.search_instance_count * p["opensearch_gp3_gb_month"]
    out.fixed.append(("OpenSearch domain", search, f"{settings.search_instance_count} x "
                      f"{settings.search_instance_type}, {settings.search_volume_gb} GB gp3, 730 h"))
    out.fixed.append(("KMS key", p["kms_key_month"], "one customer managed key"))
    out.fixed.append(("DLQ alarms", len(ROUTES) * p["cloudwatch_alarm_month"], f"{len(ROUTES)} alarms"))
    series = sum(len(alarm_series(alarm, [r.name for r in ROUTES])) for alarm in METRIC_ALARMS)
    out.fixed.append(("Metric alarms", series * p["cloudwatch_alarm_month"],
                      f"{len(METRIC_ALARMS)} metric math alarms reading {series} metrics, billed per metric"))
    idle = len(ROUTES) * float(a["idle_receives_per_queue_month"])
    out.fixed.append(("SQS idle polling", idle * p["sqs_request"], f"{len(ROUTES)} queues, {idle:,.0f} receives"))
    runs = sum(SCHEDULED.values())
    schedule_gb_s = sum(count * float(a["schedule_ms"][name]) / 1000 * route(name).memory_mb / 1024
                        for name, count in SCHEDULED.items())
    out.fixed.append(("Schedules", runs * (p["eventbridge_scheduler_invocation"] + 3 * p["sqs_request"]
                                           + p["lambda_request"]) + schedule_gb_s * p["lambda_arm64_gb_second"],
                      f"{runs:,} runs (reconcile every 5 min, self-heal hourly)"))
    share = sum(usd for _, usd, _ in out.fixed) / encounters_per_month
    out.add("Fixed monthly, shared", share, f"{sum(u for _, u, _ in out.fixed):.2f} USD/month "
            f"/ {encounters_per_month:,.0f} encounters")
    return out


def _workspace(out: Estimate, p: dict[str, float], a: dict[str, Any]) -> None:
    """The clinician workspace: one review's requests (per encounter) and the user pool (fixed monthly)."""
    requests = float(a["workspace_requests_per_encounter"])
    gb_seconds = requests * sum(float(a["lambda_ms"][endpoint.name]) / 1000 * endpoint.memory_mb / 1024
                                for endpoint in (WORKSPACE, WORKSPACE_AUTHORIZER))
    invocations = 2 * requests  # the authorizer's and the workspace function's
    log_gb = invocations * float(a["log_kb_per_invocation"]) / 1024 / 1024
    out.add("Workspace (HTTP API)", requests * p["http_api_request"], f"{requests:.0f} requests for one review")
    out.add("Workspace (Lambda)", gb_seconds * p["lambda_arm64_gb_second"] + invocations * p["lambda_request"]
            + log_gb * p["cloudwatch_logs_ingest_gb"] + invocations * p["xray_trace"],
            f"{invocations:.0f} invocations (authorizer + app), {gb_seconds:.2f} GB-s, logs and traces")
    users = float(a["workspace_monthly_active_users"])
    out.fixed.append(("Cognito (Plus)", users * p["cognito_plus_mau"],
                      f"{users:.0f} monthly active users, threat protection on, no free tier"))
    out.alternatives.append(("Cognito (Essentials)", max(0.0, users - 10_000) * p["cognito_essentials_mau"],
                             f"USD/month for {users:.0f} users without threat protection (10,000 MAUs free); "
                             "instead of Cognito (Plus)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="recording length")
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES, help="price table (JSON)")
    parser.add_argument("--encounters-per-month", type=float, default=None,
                        help="share of fixed monthly costs (default: the price file's assumption)")
    args = parser.parse_args()
    prices = json.loads(args.prices.read_text(encoding="utf-8"))
    assumptions = prices["assumptions"]
    per_month = args.encounters_per_month or float(assumptions["encounters_per_month"])
    settings = load_settings()

    consultations = primock_consultations()
    rates = [rate for rate in (sample_data_rate(), primock_rate(consultations)) if rate is not None]
    words_per_minute = assumptions["words_per_minute"] or max(rate.words_per_minute for rate in rates)
    shape = aci_note_shape()
    lines = transcript_of(math.ceil(words_per_minute * args.minutes), consultations)
    tokens = note_tokens(lines, settings, shape, assumptions)
    result = estimate(args.minutes, prices, settings, tokens, per_month)
    cap = f" (capped at max_tokens {DEFAULT_MAX_TOKENS} per call)" if tokens.capped else ""

    print(f"estimated AWS cost of one {args.minutes:g}-minute audio encounter ({prices['region']}, prices "
          f"{prices['as_of']}, from {_shown(args.prices)}): list prices change, check the sources in the file")
    for rate in rates:
        extra = f", {rate.lines_per_minute:.1f} turns/min" if rate.lines_per_minute else ""
        print(f"  speech rate: {rate.words_per_minute:.0f} words/min from {rate.source}{extra}")
    print(f"  transcript: {tokens.transcript_words:,} words in {tokens.lines} turns at {words_per_minute:.0f} "
          f"words/min; note: {tokens.note_words:,.0f} words ({shape.words_per_dialogue_word:.2f} x the transcript, "
          f"ACI-BENCH reference notes, {shape.encounters} encounters) in claims of "
          f"{shape.words_per_claim:.0f} words; {tokens.calls} model call(s) of {tokens.input:,.0f} input and "
          f"{tokens.output:,.0f} output tokens{cap}, {assumptions['repair_rate']:.0%} repaired")
    total = sum(usd for _, usd, _ in result.lines)
    print(f"  {'service':<24} {'USD':>9} {'share':>6}  basis")
    for service, usd, how in result.lines:
        print(f"  {service:<24} {usd:>9.5f} {usd / total:>6.1%}  {how}")
    print(f"  {'total':<24} {total:>9.4f}")
    print("  fixed monthly costs (included above as 'Fixed monthly, shared'):")
    for item, usd, how in result.fixed:
        print(f"    {item:<22} {usd:>9.2f} USD/month  {how}")
    print("  alternatives (not in the total):")
    for item, usd, how in result.alternatives:
        print(f"    {item:<22} {usd:>9.5f}  {how}")
    print("  not included: self-heal re-transcription of the evaluation set per candidate model, custom "
          "language model training, Lambda INIT on cold starts, data transfer, free tiers")
    print(f"reproduce: {COMMAND} --minutes {args.minutes:g} --prices {_shown(args.prices)} "
          f"--encounters-per-month {per_month:g}")
    return 0


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    raise SystemExit(main())
