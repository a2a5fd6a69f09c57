"""benchmarks/guidance_variants.py: its plain variant is avgen's guidance, the interval and the projection do
what they say, and a scoring run on a tiny pipeline fills the table."""

from __future__ import annotations

import importlib

import torch

from avgen.diffusion import guided_velocity
from avgen.metrics.model_eval import ModelEvalConfig
from avgen.model import TextStates, tiny_dit
from avgen.pipeline import tiny_pipeline
from avgen.tokens import AUDIO, VIDEO, TokenSpec, latent_times, pack

SPEC = TokenSpec(video_channels=4, audio_channels=6)


def _bench():
    return importlib.import_module("benchmarks.guidance_variants")  # conftest puts the root on sys.path


def _setup():
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(2, 4, 3, 4, 6, generator=g), torch.randn(2, 6, 14, generator=g)
    p = pack(SPEC, video, audio, latent_times(3, 6.25), latent_times(14, 50.0))
    cond = TextStates(torch.randn(2, 5, 32, generator=g), torch.ones(2, 5, dtype=torch.bool))
    uncond = TextStates(torch.randn(1, 2, 32, generator=g), torch.ones(1, 2, dtype=torch.bool))
    x = torch.randn(p.tokens.shape, generator=g)
    t = torch.rand(2, p.layout.num_tokens, generator=g) * 0.9 + 0.05
    return tiny_dit(SPEC).eval(), p, cond, uncond, x, t


def test_plain_variant_is_avgens_guidance_and_an_empty_interval_is_the_conditional() -> None:
    bench = _bench()
    model, p, cond, uncond, x, t = _setup()
    with torch.no_grad():
        ours = guided_velocity(
            model, p.positions, p.modality, cond, uncond, video_guidance=5.0, audio_guidance=2.0
        )
        plain = bench.variant_velocity(
            model, p.positions, p.modality, cond, uncond, bench.Variant("p", 5.0, 2.0)
        )
        assert torch.allclose(plain(x, t), ours(x, t), atol=1e-6)
        off = bench.variant_velocity(
            model, p.positions, p.modality, cond, uncond, bench.Variant("off", 5.0, 2.0, lo=0.99)
        )
        v_c = model(x, t, p.positions, p.modality, cond.states, cond.mask)
        assert torch.allclose(off(x, t), v_c, atol=1e-6)


def test_projection_keeps_only_the_part_orthogonal_to_the_denoised_prediction() -> None:
    bench = _bench()
    model, p, cond, uncond, x, t = _setup()
    with torch.no_grad():
        v_c = model(x, t, p.positions, p.modality, cond.states, cond.mask)
        d_cond = x - t[..., None] * v_c
        for eta in (0.0, 0.5):
            fn = bench.variant_velocity(
                model, p.positions, p.modality, cond, uncond, bench.Variant("apg", 6.0, 3.0, eta=eta)
            )
            push = (x - t[..., None] * fn(x, t)) - d_cond  # what guidance added to D_cond
            for m in (VIDEO, AUDIO):
                sel = p.modality == m
                cos = torch.nn.functional.cosine_similarity(
                    push[:, sel].flatten(1), d_cond[:, sel].flatten(1), dim=1
                )
                assert (cos.abs() < 1e-4).all() if eta == 0.0 else (cos.abs() > 1e-3).all()
        given = t.clone()
        given[:, p.modality == AUDIO] = 0.0  # v2a: clean audio tokens come back as the conditional velocity
        out = fn(x, given)
        v_g = model(x, given, p.positions, p.modality, cond.states, cond.mask)
        assert torch.isfinite(out).all() and torch.equal(
            out[:, p.modality == AUDIO], v_g[:, p.modality == AUDIO]
        )


def test_scoring_a_tiny_pipeline_fills_the_table() -> None:
    bench = _bench()
    cfg = ModelEvalConfig(per_family=2, tasks=("t2av",), split="val", sampling={"steps": 2}, batch=6)
    variant = bench.Variant("interval", 3.0, 2.0, lo=0.2, hi=0.8, eta=0.0)
    summary = bench.score(tiny_pipeline(), variant, cfg)
    assert set(summary) == {"talk", "bounce", "keys"} and summary["bounce"]["clips"] == 2
    md = bench.markdown([(variant, summary)], "tiny")
    assert md.count("| interval |") == 1 and "(0.2, 0.8]" in md


def test_text_colour_probe_compares_every_colour_for_every_held_out_pair() -> None:
    probe = importlib.import_module("benchmarks.text_colour_probe")
    from avgen.data.synth.captions import COLORS, HELD_OUT
    from avgen.model.text import tiny_text_encoder

    encoder = tiny_text_encoder(max_length=64)
    with torch.no_grad():
        rows = probe.probe(encoder)
        state = probe.colour_state(encoder, "medium", "pink")
        states = encoder(["a medium pink ball bounces slowly"]).states[0]
    pieces = encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer("a medium pink ball")["input_ids"])
    index = pieces.index("p")  # the colour's first piece ("medium" and "a" have no "p")
    assert torch.equal(state, states[index])
    assert [r["pair"] for r in rows] == [f"{s} {c}" for s, c in sorted(HELD_OUT["bounce"])]
    for r in rows:
        sims = list(r["similarity"].values())
        assert set(r["similarity"]) == set(COLORS) and sims == sorted(sims, reverse=True)
        assert all(-1.0 <= x <= 1.0 + 1e-6 for x in sims)
    assert probe.markdown(rows, "tiny").count("\n| ") == len(rows) + 1
