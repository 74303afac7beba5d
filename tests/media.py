"""Tiny, real media headers for tests (no binary fixtures in the repo)."""

from __future__ import annotations

from medscribe_local.sample_audio import silence_wav


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A canonical PCM 16-bit mono WAV of silence."""
    return silence_wav(seconds, rate)


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 16
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 40
OGG = b"OggS\x00\x02" + b"\x00" * 40
AMR = b"#!AMR\n" + b"\x00" * 40
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 40
MP4 = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 40
M4A = b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 40


def video_only_mp4(frames: int = 10) -> bytes:
    """A real mp4 holding one short video track and no sound (moov after mdat, as FFmpeg writes it)."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), n * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def aac_mp4(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real mp4 holding one AAC sound track of a 440 Hz tone."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(seconds * rate), dtype=np.float32) / rate
        frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).reshape(1, -1).astype(np.float32),
                                           format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
