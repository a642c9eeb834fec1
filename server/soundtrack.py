"""What the walker hears, as samples: the same tones as the web client (web_client/audio.js) and spoken
phrases from espeak-ng. Replay mixes them into the annotated video's audio track."""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
import wave
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

SAMPLE_RATE = 22050
PAN = {"left": -0.8, "centre": 0.0, "right": 0.8}
Stereo = npt.NDArray[np.float32]  # (n, 2) in [-1, 1]


def _tone(
    freq_hz: float, dur_s: float, wave_kind: str = "sine", gain: float = 0.6
) -> npt.NDArray[np.float32]:
    t = np.arange(int(dur_s * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
    phase = 2 * np.pi * freq_hz * t
    sig = np.sign(np.sin(phase)) if wave_kind == "square" else np.sin(phase)
    ramp = min(len(t) // 2, int(0.01 * SAMPLE_RATE))
    env = np.ones_like(t)
    if ramp:
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
    out: npt.NDArray[np.float32] = (gain * sig * env).astype(np.float32)
    return out


def _place(out: npt.NDArray[np.float32], sig: npt.NDArray[np.float32], start_s: float) -> None:
    i = int(start_s * SAMPLE_RATE)
    n = min(len(sig), len(out) - i)
    if n > 0:
        out[i : i + n] += sig[:n]


def tier_tones(tier: str) -> npt.NDArray[np.float32]:
    """The tone pattern of a tier, mono, exactly as audio.js plays it."""
    out = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    if tier == "stop":  # a fast high-low siren, three times: used for nothing else
        for i in range(3):
            _place(out, _tone(1200, 0.11, "square", 0.5), i * 0.24)
            _place(out, _tone(600, 0.11, "square", 0.5), i * 0.24 + 0.12)
    elif tier == "urgent":
        _place(out, _tone(1000, 0.08), 0.0)
        _place(out, _tone(1000, 0.08), 0.12)
    else:
        _place(out, _tone(660, 0.12, "sine", 0.4), 0.0)
    nz = np.flatnonzero(out)
    return out[: nz[-1] + 1] if nz.size else out[:0]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=256)
def phrase(text: str, rate_wpm: int = 190) -> npt.NDArray[np.float32]:
    """`text` spoken by espeak-ng, mono at SAMPLE_RATE; empty when espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None or not text.strip():
        return np.zeros(0, np.float32)
    wav = subprocess.run(
        [exe, "-v", "en", "-s", str(rate_wpm), "--stdout", text], capture_output=True, check=True, timeout=30
    ).stdout
    return decode_wav_mono(wav)


def decode_wav_mono(data: bytes) -> npt.NDArray[np.float32]:
    with wave.open(io.BytesIO(data)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit audio, got {8 * width}-bit")
    pcm = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and pcm.size:
        x = np.linspace(0, pcm.size - 1, int(pcm.size * SAMPLE_RATE / rate))
        pcm = np.interp(x, np.arange(pcm.size), pcm).astype(np.float32)
    out: npt.NDArray[np.float32] = pcm.astype(np.float32)
    return out


@functools.lru_cache(maxsize=256)
def phrase_wav(text: str) -> bytes:
    """`text` spoken, as a mono 16-bit WAV file for the walker page to cache and play."""
    return to_wav_bytes(phrase(text))


def pan_stereo(mono: npt.NDArray[np.float32], pan: float) -> Stereo:
    """Equal-power panning, as the Web Audio StereoPannerNode does for a mono input."""
    x = (pan + 1) / 2 * np.pi / 2
    out: Stereo = np.stack([mono * np.cos(x), mono * np.sin(x)], axis=1).astype(np.float32)
    return out


def cue_sound(tier: str, side: str, text: str) -> Stereo:
    """Tones panned to the hazard's side, then the phrase, as the walker's phone plays one cue."""
    tones = tier_tones(tier)
    speech = phrase(text)
    mono = np.zeros(len(tones) + int(0.05 * SAMPLE_RATE) + len(speech), np.float32)
    stereo = pan_stereo(mono, 0.0)
    stereo[: len(tones)] += pan_stereo(tones, PAN.get(side, 0.0))
    if speech.size:
        stereo[len(tones) + int(0.05 * SAMPLE_RATE) :] += pan_stereo(speech * 0.9, PAN.get(side, 0.0) / 2)
    return stereo


def mix_cues(events: Iterable[dict[str, Any]], duration_s: float) -> Stereo:
    """A stereo track of `duration_s` with every event's sound at its time `t` (seconds). A cue that starts
    while an earlier one still plays cuts it, as the phone does (a new cue cancels stale speech)."""
    n = round(duration_s * SAMPLE_RATE)
    track = np.zeros((n, 2), np.float32)
    ordered = sorted(events, key=lambda e: float(e["t"]))
    for k, ev in enumerate(ordered):
        start = int(float(ev["t"]) * SAMPLE_RATE)
        if start >= n:
            break
        sound = cue_sound(str(ev["tier"]), str(ev.get("side") or "centre"), str(ev.get("text") or ""))
        end = min(n, start + len(sound))
        if k + 1 < len(ordered):
            end = min(end, max(start, int(float(ordered[k + 1]["t"]) * SAMPLE_RATE)))
        track[start:end] = sound[: end - start]
    return np.clip(track, -1.0, 1.0)


def to_wav_bytes(samples: npt.NDArray[np.float32]) -> bytes:
    """16-bit WAV of mono (n,) or stereo (n, 2) samples in [-1, 1] at SAMPLE_RATE."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
