"""Speech with exact phoneme timing from espeak-ng, driven through ctypes (PyPI ``espeakng-loader``).

espeak-ng keeps state between utterances in static variables (pitch flutter phase, gain control, libc
``rand()`` for breathy voices), so the same text would not give the same samples twice in one process.
Each utterance therefore loads the library afresh, synthesizes, and unloads it (about 5 ms), and seeds
``rand()`` from the sample's RNG: the result is a pure function of the arguments.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
from typing import Any

import numpy as np

from avgen.errors import AVGenError

ESPEAK_RATE = 22_050  # espeak-ng always synthesizes at this rate
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_EVENT_WORD, _EVENT_PHONEME = 1, 7
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_LOCK = threading.Lock()  # the library is process-global


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at 22050 Hz
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclasses.dataclass(frozen=True)
class Speech:
    """One utterance at 22050 Hz.

    audio: float32 (N,) in [-1, 1].
    phonemes: (sample, mnemonic) in time order; sample indexes ``audio``; "_" / "_:" are pauses.
    words: (sample, word) for each word of the text.
    """

    audio: np.ndarray
    phonemes: tuple[tuple[int, str], ...]
    words: tuple[tuple[int, str], ...]
    sample_rate: int = ESPEAK_RATE

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def _paths() -> tuple[str, bytes]:
    try:
        import espeakng_loader
    except ImportError as e:
        raise AVGenError(
            "the talk family needs espeak-ng from the PyPI package espeakng-loader: pip install 'avgen[speech]' "
            "(or disable it: families={talk: 0})"
        ) from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path().encode()


def _still_mapped(lib_path: str) -> bool:
    try:
        with open("/proc/self/maps") as f:
            return lib_path in f.read()
    except OSError:  # not Linux: nothing to check
        return False


def synthesize(
    text: str, *, voice: str, rate: int, pitch: int, pitch_range: int = 50, noise_seed: int = 0
) -> Speech:
    """Speak ``text`` with espeak-ng voice ``voice`` (e.g. "en-us+f3").

    rate: words per minute in [80, 450]; pitch, pitch_range: 0-100; noise_seed seeds libc ``rand()``,
    which espeak-ng uses for breath noise. Bitwise deterministic for equal arguments, except for variants
    with breath noise (f2, f3, f5, whisper, ...): those read uninitialised memory inside espeak-ng and differ
    between processes, so the talk family does not use them.
    """
    import _ctypes

    if not text.strip():
        raise AVGenError("synthesize: text is empty")
    if not 80 <= rate <= 450 or not 0 <= pitch <= 100 or not 0 <= pitch_range <= 100:
        raise AVGenError(
            f"synthesize: rate {rate} must be in [80, 450], pitch/range {pitch}/{pitch_range} in [0, 100]"
        )
    lib_path, data_path = _paths()
    chunks: list[np.ndarray] = []
    phonemes: list[tuple[int, str]] = []
    word_pos: list[tuple[int, int, int]] = []
    encoded = text.encode()

    def on_audio(wav: Any, n: int, events: Any) -> int:
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                phonemes.append((int(ev.sample), ev.id.string.decode("ascii", "replace")))
            elif ev.type == _EVENT_WORD:
                word_pos.append((int(ev.sample), int(ev.text_position), int(ev.length)))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    with _LOCK:
        lib = ctypes.CDLL(lib_path)
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            rate_hz = lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
            )
            if rate_hz != ESPEAK_RATE:
                raise AVGenError(
                    f"espeak-ng failed to start (returned {rate_hz}); data folder {data_path.decode()}"
                )
            lib.espeak_SetSynthCallback(callback)
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise AVGenError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                lib.espeak_SetParameter(param, value, 0)
            ctypes.CDLL(None).srand(ctypes.c_uint(noise_seed & 0xFFFFFFFF))
            lib.espeak_Synth.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            err = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            lib.espeak_Terminate()
        finally:
            handle = lib._handle
            del lib
            _ctypes.dlclose(handle)
        if _still_mapped(lib_path):
            raise AVGenError(
                "libespeak-ng stays loaded (another package in this process holds it), so espeak-ng's state "
                "would leak between utterances and speech would not be deterministic; generate in a process "
                "that does not import other espeak bindings"
            )
    if err != 0 or not chunks:
        raise AVGenError(f"espeak-ng could not speak {text!r} (error {err})")
    audio = np.concatenate(chunks).astype(np.float32) / 32768.0
    words = tuple((s, encoded[p - 1 : p - 1 + n].decode("utf-8", "replace")) for s, p, n in word_pos)
    return Speech(audio=audio, phonemes=tuple(phonemes), words=words)
