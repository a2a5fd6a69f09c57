"""Media I/O: the public face of avgen's reader and writer.

``read_av`` / ``write_av`` move an :class:`AVClip` to and from MP4 (H.264 + AAC), MKV (FFV1/H.264 + FLAC)
and WAV/FLAC with exact frame and sample counts; ``read_av`` also reads WebM, Ogg and other FFmpeg
containers, a window of a long file (``start``, ``duration``, ``max_size``) and refuses a file that would
need more than its :class:`ReadLimits`; ``AVWriter`` streams long clips; ``probe`` describes a file without
decoding it.
"""

from avgen.checks import as_fps
from avgen.clip import AVClip
from avgen.reader import ReadLimits, probe, read_av, read_video_timed
from avgen.writer import AVWriter, write_av

__all__ = [
    "AVClip",
    "AVWriter",
    "ReadLimits",
    "as_fps",
    "probe",
    "read_av",
    "read_video_timed",
    "write_av",
]
