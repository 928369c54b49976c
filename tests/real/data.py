"""Real, sized test data for the public models: speech synthesised with espeak-ng, text lines rendered with Pillow.

Both generators are deterministic (seeded) and write `.npz` files in the SDK's multi-input format: one array per
model input with a leading sample axis, plus `y` (labels) or `sequence` (which utterance a chunk belongs to).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

SAMPLE_RATE = 16000
CHUNK = 512  # silero-vad at 16 kHz: 512 new samples per step ...
CONTEXT = 64  # ... after the last 64 samples of the previous step: 576 in all
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PHRASES = (
    "the quick brown fox jumps over the lazy dog",
    "edge devices measure latency and memory",
    "please convert the model before the meeting",
    "seven silent owls watched the harbour lights",
    "a cold wind blew across the empty platform",
    "numbers and letters travel through the network",
)
WORDS = ("model", "tensor", "edge", "runtime", "latency", "OCR", "2026", "Berlin", "quantize", "float", "int8", "speech",
         "vision", "detector", "label", "invoice", "total", "EUR", "12.50", "street", "phone", "+49", "data", "river")


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: install it with tools/setup_test_env.sh)")
    pytest.skip(f"not run here: {reason}")


def synthesise(text: str, workdir: Path, voice: str = "en") -> np.ndarray:
    """`text` spoken by espeak-ng, as float32 samples at 16 kHz."""
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        _missing("espeak-ng is not installed (Debian package espeak-ng)")
    path = workdir / "phrase.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, capture_output=True, timeout=60)
    with wave.open(str(path)) as handle:
        rate, frames = handle.getframerate(), handle.readframes(handle.getnframes())
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
    return resample_poly(samples, SAMPLE_RATE, rate).astype(np.float32)


def utterances(workdir: Path, count: int = 3, seed: int = 0) -> list[np.ndarray]:
    """`count` recordings, each: silence, phrase, silence, phrase, silence (0.4-1.2 s pauses, faint noise)."""
    rng = np.random.default_rng(seed)
    recordings = []
    for index in range(count):
        parts = []
        for phrase in (PHRASES[(2 * index) % len(PHRASES)], PHRASES[(2 * index + 1) % len(PHRASES)]):
            parts.append(np.zeros(int(SAMPLE_RATE * rng.uniform(0.4, 1.2)), np.float32))
            parts.append(0.8 * synthesise(phrase, workdir))
        parts.append(np.zeros(int(SAMPLE_RATE * rng.uniform(0.4, 1.2)), np.float32))
        audio = np.concatenate(parts)
        recordings.append((audio + rng.normal(0, 0.002, audio.shape)).astype(np.float32))
    return recordings


def chunks_with_context(audio: np.ndarray) -> np.ndarray:
    """(steps, 576): each 512-sample step after the previous step's last 64 samples, as silero's wrapper feeds it."""
    steps = len(audio) // CHUNK
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio[: steps * CHUNK]])
    return np.stack([padded[i * CHUNK : i * CHUNK + CONTEXT + CHUNK] for i in range(steps)]).astype(np.float32)


def speech_chunks(workdir: Path, count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(chunks (N, 576), sequence (N,)): every recording's steps in order, numbered by recording."""
    recordings = [chunks_with_context(audio) for audio in utterances(workdir, count)]
    sequence = np.concatenate([np.full(len(chunks), index, np.int64) for index, chunks in enumerate(recordings)])
    return np.concatenate(recordings), sequence


def text_line(text: str, flipped: bool, height: int = 48, width: int = 192) -> np.ndarray:
    """One text line rendered in DejaVu Sans and preprocessed as PP-OCR's classifier wants: CHW, (x/255-0.5)/0.5,
    resized to `height` keeping the aspect ratio, right-padded with zeros to `width` (rapidocr's resize_norm_img)."""
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        _missing(f"font {FONT} is not installed (Debian package fonts-dejavu-core)")
    font = ImageFont.truetype(str(FONT), 32)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 16, bottom - top + 16), "white")
    ImageDraw.Draw(image).text((8 - left, 8 - top), text, font=font, fill="black")
    if flipped:
        image = image.rotate(180)
    resized_width = min(width, int(np.ceil(height * image.width / image.height)))
    array = np.asarray(image.resize((resized_width, height), Image.BILINEAR), np.float32).transpose(2, 0, 1)
    array = (array / 255.0 - 0.5) / 0.5
    padded = np.zeros((3, height, width), np.float32)
    padded[:, :, :resized_width] = array
    return padded


def text_lines(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x (count, 3, 48, 192), y (count,)): random 1-4 word lines, half upright (label 0), half upside down (1)."""
    rng = np.random.default_rng(seed)
    lines, labels = [], []
    for index in range(count):
        words = rng.choice(WORDS, size=int(rng.integers(1, 5)))
        flipped = index % 2 == 1
        lines.append(text_line(" ".join(words), flipped))
        labels.append(int(flipped))
    return np.stack(lines), np.asarray(labels, np.int64)


def text_page(seed: int, size: int = 320) -> np.ndarray:
    """A white page (size x size) with 3-5 lines of black text, normalised as PP-OCR's detector wants:
    CHW, (x/255 - ImageNet mean) / ImageNet std."""
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        _missing(f"font {FONT} is not installed (Debian package fonts-dejavu-core)")
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    top = int(rng.integers(10, 40))
    for _ in range(int(rng.integers(3, 6))):
        font = ImageFont.truetype(str(FONT), int(rng.integers(18, 30)))
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        draw.text((int(rng.integers(5, 60)), top), text, font=font, fill="black")
        top += int(rng.integers(40, 70))
        if top > size - 30:
            break
    array = np.asarray(image, np.float32) / 255.0
    array = (array - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return array.transpose(2, 0, 1).astype(np.float32)


def text_pages(count: int, seed: int = 0, size: int = 320) -> np.ndarray:
    """(count, 3, size, size) pages for the detector."""
    return np.stack([text_page(seed * 1000 + index, size) for index in range(count)])
