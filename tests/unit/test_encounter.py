from medscribe.domain.encounter import Kind, ObjectRef, kind_of, normalise_sequencer


def ref(key: str = "audio/a.wav", **kw: object) -> ObjectRef:
    args = {"bucket": "in", "raw_key": key, "size": 10, "etag": "e1", "version_id": "v1", "sequencer": "0A"}
    args.update(kw)
    return ObjectRef.from_event(**args)  # type: ignore[arg-type]


def test_key_is_decoded_with_unquote_plus() -> None:
    assert ref("audio/dr+visit%2B1+%ED%95%9C.wav").key == "audio/dr visit+1 한.wav"
    assert ref("test%2Fkey").key == "test/key"


def test_encounter_id_is_deterministic_and_free_of_the_key() -> None:
    first, again = ref("audio/Jane+Doe.wav"), ref("audio/Jane+Doe.wav")
    assert first.encounter_id == again.encounter_id
    assert first.encounter_id.startswith("enc-")
    assert len(first.encounter_id) == 36
    assert "Jane" not in first.encounter_id
    assert "Doe" not in first.source_id


def test_a_new_version_is_a_new_encounter_of_the_same_source() -> None:
    v1, v2 = ref(version_id="v1"), ref(version_id="v2")
    assert v1.encounter_id != v2.encounter_id
    assert v1.source_id == v2.source_id


def test_revision_falls_back_to_etag_without_versioning() -> None:
    assert ref(version_id=None).revision == "e1"
    assert ref(version_id=None, etag="e2").encounter_id != ref(version_id=None).encounter_id


def test_sequencers_compare_after_left_padding() -> None:
    short, long = normalise_sequencer("FF"), normalise_sequencer("0100")
    assert short is not None
    assert long is not None
    assert short < long  # 0xFF < 0x100, which plain text comparison gets wrong
    assert normalise_sequencer("Happy Sequencer") is None
    assert normalise_sequencer(None) is None


def test_kind_from_prefix() -> None:
    assert kind_of("audio/x.wav") is Kind.AUDIO
    assert kind_of("ground-truth/x.txt") is Kind.GROUND_TRUTH
    assert kind_of("keywords/keywords.txt") is Kind.KEYWORDS
    assert kind_of("text/n.txt") is Kind.TEXT
    assert kind_of("audiox/x.wav") is None


def test_folder_marker_and_extension() -> None:
    assert ref("audio/visits/").is_folder_marker
    assert ref("audio/a.b/C.MP3").extension == "mp3"
    assert ref("audio/noext").extension == ""
