"""Media I/O: the public face of avgen's reader and writer.

``read_av`` / ``write_av`` move an :class:`AVClip` to and from MP4 (H.264 + AAC), MKV (FFV1/H.264 + FLAC)
and WAV/FLAC with exact frame and sample counts; ``AVWriter`` streams long clips; ``probe`` describes a
file without decoding it.
"""

from avgen.checks import as_fps
from avgen.clip import AVClip
from avgen.reader import probe, read_av, read_video_timed
from avgen.writer import AVWriter, write_av

__all__ = ["AVClip", "AVWriter", "as_fps", "probe", "read_av", "read_video_timed", "write_av"]
