"""Does writing the same frames to H.264 give the same file twice? (It does not, with PyAV's libx264 here.)

Renders one avgen-synth clip (bit-identical for a given seed) and encodes its frames ``--repeats`` times
per setting: the encoder's default threads, one thread, and one thread fed a freshly copied yuv420p frame.
Prints how many distinct files each setting gave. Why the video autoencoder trained on regenerated synth
MP4s differs slightly from the committed one (``runs/README.md``, repro), while the audio codec does not.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/h264_determinism.py --seed 7 --repeats 10
"""

from __future__ import annotations

import argparse
import hashlib
import io

import av
import numpy as np

from avgen.data.synth.generate import make_sample


def encode(frames: np.ndarray, threads: int, copy_yuv: bool) -> str:
    """sha256 of an in-memory MP4 of ``frames (T, H, W, 3)`` uint8, crf 18, preset medium (avgen's writer)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "medium"}
        if threads:
            stream.codec_context.thread_count = threads
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            if copy_yuv:
                vf = av.VideoFrame.from_ndarray(vf.reformat(format="yuv420p").to_ndarray(), format="yuv420p")
            vf.pts = i
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7, help="test-split sample")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    frames = make_sample(args.seed, "test").clip.video
    assert np.array_equal(frames, make_sample(args.seed, "test").clip.video)  # rendering is deterministic
    for name, threads, copy_yuv in (
        ("default threads", 0, False),
        ("1 thread", 1, False),
        ("1 thread, yuv copy", 1, True),
    ):
        distinct = {encode(frames, threads, copy_yuv) for _ in range(args.repeats)}
        print(f"{name}: {len(distinct)} distinct files of {args.repeats}")


if __name__ == "__main__":
    main()
