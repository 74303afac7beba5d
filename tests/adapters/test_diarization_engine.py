"""The real diarizer (Resemblyzer's packaged encoder, faster-whisper's VAD) on a mono downmix of a
sample recording whose two voices are on two channels: who speaks when must match the channels."""

from __future__ import annotations

import numpy as np

from medscribe.settings import project_root
from medscribe_local import diarization
from medscribe_local.media_decoding import SAMPLE_RATE, decode_media


def test_the_extra_is_installed() -> None:
    assert diarization.available(), "make install installs requirements-diarization.txt"


def test_a_downmixed_two_voice_recording_splits_into_its_two_channels_speakers() -> None:
    with (project_root() / "sample-data" / "audio" / "fareez" / "CAR0003.mp3").open("rb") as handle:
        audio = decode_media(handle, None, None)
    left, right = audio.channels
    turns = diarization.Diarizer().timeline(audio.mono, max_speakers=2)
    assert {speaker for _, _, speaker in turns} == {0, 1}
    assert turns[0][2] == 0  # the clinician (left) speaks first
    agree = total = 0.0
    for start, end, speaker in turns:
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        louder = 0 if np.square(left[a:b]).sum() >= np.square(right[a:b]).sum() else 1
        agree += (end - start) * (louder == speaker)
        total += end - start
    assert agree / total >= 0.9
