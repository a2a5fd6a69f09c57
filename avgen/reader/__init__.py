"""Reading media into AVClip with exact timing (frame count, sample count and A/V start all preserved) and
bounded cost: a window of a long file, frames shrunk as they decode, and limits checked before decoding.

``core``: read_av / read_video_timed; ``video`` / ``audio``: one window of a stream each; ``audiofile``:
WAV, FLAC and Ogg through libsndfile; ``limits``: ReadLimits and the byte budget; ``probe``: facts
without decoding.
"""

from avgen.reader.audiofile import SOUNDFILE_SUFFIXES
from avgen.reader.base import Streams
from avgen.reader.core import read_av, read_video_timed
from avgen.reader.limits import ReadLimits
from avgen.reader.probe import probe

__all__ = ["SOUNDFILE_SUFFIXES", "ReadLimits", "Streams", "probe", "read_av", "read_video_timed"]
