"""The keys colour check against the ground-truth clips themselves (session 11): how many of the 32 test /
val keys clips pass their own caption with the old scoring (every foreground pixel, 12 frames) and with
``lit=True`` (the pixels that light up, at their lit frame), and how many pass the next clip's caption
when it asks for a different colour (which they should not).

    OMP_NUM_THREADS=1 python runs/keys_colour_metric/check.py > runs/keys_colour_metric/check.txt
"""

from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.metrics.synth import parse_caption, prompt_adherence

for split in ("test", "val"):
    samples = test_samples(ModelEvalConfig(per_family=32, families=("keys",), split=split), 16000)
    old = sum(prompt_adherence(s.clip.video, s.caption, count=False)["color_ok"] for s in samples)
    new = sum(prompt_adherence(s.clip.video, s.caption, count=False, lit=True)["color_ok"] for s in samples)
    wrong = pairs = 0
    for i, s in enumerate(samples):
        other = samples[(i + 1) % len(samples)]
        if parse_caption(other.caption)["colors"] != parse_caption(s.caption)["colors"]:
            pairs += 1
            wrong += prompt_adherence(s.clip.video, other.caption, count=False, lit=True)["color_ok"]
    print(
        f"{split}: own caption passes {old}/{len(samples)} before, {new}/{len(samples)} with lit=True; "
        f"another colour's caption passes {wrong}/{pairs} with lit=True"
    )
