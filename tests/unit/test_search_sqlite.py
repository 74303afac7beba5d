"""The local search index with English and Korean notes (fictional text from sample-data/text)."""

from pathlib import Path

from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.domain.search import SearchDocument

TEXT = Path(__file__).resolve().parents[2] / "sample-data" / "text"


def index() -> SqliteSearchIndex:
    idx = SqliteSearchIndex()
    idx.upsert(SearchDocument("enc-en", "DOCUMENTED", "text", "2026-10-14T10:00:00.000Z", "text",
                              note=(TEXT / "en-chest-pain-followup.txt").read_text()))
    idx.upsert(SearchDocument("enc-ko", "NEEDS_REVIEW", "text", "2026-10-21T10:00:00.000Z", "text",
                              note=(TEXT / "ko-diabetes-followup.txt").read_text()))
    idx.upsert(SearchDocument("enc-audio", "DOCUMENTED", "audio", "2026-11-01T10:00:00.000Z", "audio/fareez",
                              transcript="I've just been feeling breathless and it's getting worse."))
    return idx


def test_a_korean_query_finds_the_korean_note() -> None:
    hits = index().search("당뇨병성 말초신경병증")
    assert [h.encounter_id for h in hits] == ["enc-ko"]
    assert "[" in hits[0].snippet


def test_short_korean_terms_still_match() -> None:
    assert [h.encounter_id for h in index().search("저림")] == ["enc-ko"]


def test_english_phrase_and_filters() -> None:
    idx = index()
    assert [h.encounter_id for h in idx.search("atorvastatin")] == ["enc-en"]
    assert [h.encounter_id for h in idx.search("breathless")] == ["enc-audio"]
    assert idx.search("atorvastatin", status="NEEDS_REVIEW") == []
    assert idx.search("atorvastatin", since="2026-10-15") == []
    assert idx.search("   ") == []


def test_upsert_replaces_and_delete_removes() -> None:
    idx = index()
    idx.upsert(SearchDocument("enc-en", "DOCUMENTED", "text", "2026-10-14T10:00:00.000Z", "text", note="no drugs"))
    assert idx.search("atorvastatin") == []
    assert [h.encounter_id for h in idx.search("drugs")] == ["enc-en"]
    idx.delete("enc-en")
    assert idx.search("drugs") == []


def test_query_syntax_in_user_text_is_quoted_not_parsed() -> None:
    assert index().search('"atorvastatin" OR NEAR(') == []


def test_a_stale_copy_of_a_record_never_replaces_a_newer_one() -> None:
    """Two indexers racing: the one that read the record earlier (TRANSCRIBING, no text yet) writes last."""
    index = SqliteSearchIndex()
    newer = SearchDocument("enc-1", "DOCUMENTED", "audio", "2026-01-02T00:00:00.000Z", "audio", transcript="chest pain")
    older = SearchDocument("enc-1", "TRANSCRIBING", "audio", "2026-01-01T00:00:00.000Z", "audio")
    index.apply([newer], [])
    index.apply([older], [])
    assert index.versions() == {"enc-1": newer.updated_at}
    assert [hit.status for hit in index.search("chest pain")] == ["DOCUMENTED"]
    same_time = SearchDocument("enc-1", "DOCUMENTED", "audio", newer.updated_at, "audio", transcript="dyspnoea")
    index.apply([same_time], [])  # the same version again replaces it (idempotent re-index)
    assert [hit.encounter_id for hit in index.search("dyspnoea")] == ["enc-1"]


def test_like_wildcards_in_short_terms_match_only_themselves() -> None:
    idx = index()
    assert [h.encounter_id for h in idx.search("%")] == ["enc-ko"]  # the one note with a "%" (was: all three)
    assert idx.search("_") == []
    assert idx.search("%%") == []
    idx.upsert(SearchDocument("enc-pct", "DOCUMENTED", "text", "2026-11-02T10:00:00.000Z", "text",
                              note="SpO2 95% on room air; a_b"))
    assert [h.encounter_id for h in idx.search("5%")] == ["enc-pct"]
    assert [h.encounter_id for h in idx.search("a_")] == ["enc-pct"]


def test_a_query_with_too_many_words_is_refused_clearly() -> None:
    import pytest

    from medscribe.adapters.search_sqlite import MAX_QUERY_TERMS, QueryTooLong

    with pytest.raises(QueryTooLong, match="at most"):
        index().search(" ".join(f"w{n}" for n in range(1000)))  # was: sqlite3 "Expression tree is too large"
    assert index().search(" ".join(["pain"] * 1000)) != []  # repeats count once
    assert len(" ".join(f"w{n}" for n in range(MAX_QUERY_TERMS)).split()) == MAX_QUERY_TERMS
    index().search(" ".join(f"w{n}" for n in range(MAX_QUERY_TERMS)))  # the limit itself is accepted


def test_text_after_a_nul_character_is_indexed() -> None:
    idx = SqliteSearchIndex()
    idx.upsert(SearchDocument("enc-nul", "DOCUMENTED", "text", "2026-11-02T10:00:00.000Z", "text",
                              note="headache\x00 then vomiting since morning"))
    assert [h.encounter_id for h in idx.search("vomiting")] == ["enc-nul"]


def test_search_by_code_alone_or_with_words_and_codes_replaced_on_upsert(tmp_path: Path) -> None:
    """The entities stage's codes ("system:code") filter exactly; an upsert replaces them; a delete
    removes them; an index file made before the codes table gets it when opened."""
    idx = index()
    fever = SearchDocument("enc-fever", "DOCUMENTED", "audio", "2026-11-02T10:00:00.000Z", "audio",
                           transcript="I have had a fever and a cough.",
                           codes=("ICD-10-CM:R50.9", "SNOMED CT:386661006"))
    idx.upsert(fever)
    assert [h.encounter_id for h in idx.search("", code="ICD-10-CM:R50.9")] == ["enc-fever"]
    assert idx.search("", code="ICD-10-CM:R50.9")[0].snippet.strip() == "I have had a fever and a cough."
    assert [h.encounter_id for h in idx.search("cough", code="SNOMED CT:386661006")] == ["enc-fever"]
    assert idx.search("breathless", code="ICD-10-CM:R50.9") == []
    assert idx.search("", code="ICD-10-CM:R50") == []  # exact codes, not prefixes
    idx.upsert(SearchDocument(**{**fever.__dict__, "codes": ("ICD-10-CM:R05.9",)}))
    assert idx.search("", code="ICD-10-CM:R50.9") == []
    assert [h.encounter_id for h in idx.search("", code="ICD-10-CM:R05.9", status="DOCUMENTED")] == ["enc-fever"]
    idx.delete("enc-fever")
    assert idx.search("", code="ICD-10-CM:R05.9") == []

    import sqlite3

    old = tmp_path / "old.db"  # the schema before codes: the FTS table only
    with sqlite3.connect(old) as db:
        db.execute("CREATE VIRTUAL TABLE encounters USING fts5(encounter_id UNINDEXED, status UNINDEXED, "
                   "kind UNINDEXED, updated_at UNINDEXED, folder UNINDEXED, transcript, note, tokenize = 'trigram')")
    reopened = SqliteSearchIndex(old)
    reopened.upsert(fever)
    assert [h.encounter_id for h in reopened.search("", code="ICD-10-CM:R50.9")] == ["enc-fever"]
    reopened.close()
