"""benchmarks/perf: the FLOP count against torch's counter, each script's main on tiny settings, the report."""

from __future__ import annotations

import cProfile
import importlib
import json
import sys
from pathlib import Path

import pytest
import torch


def perf(name: str):
    """``benchmarks.perf.<name>`` (conftest puts the repository root on ``sys.path``)."""
    return importlib.import_module(f"benchmarks.perf.{name}")


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("tiny", {}),
        ("small", {"depth": 2}),  # "block" modulation, width 512
        ("default", {"depth": 2, "per_modality_mlp": True}),  # "shared" modulation
    ],
)
def test_analytic_flops_equal_flop_counter(preset: str, overrides: dict) -> None:
    flops = perf("flops")
    from avgen.model.dit import JointDiT, dit_config

    cfg = dit_config(preset, **overrides)
    model = JointDiT(cfg).eval()
    batch, nv, na, nt = 2, 37, 11, 5  # odd sizes
    inputs = flops.example_inputs(model, batch, nv, na, nt)
    analytic = flops.jointdit_flops(cfg, batch, nv, na, nt)
    with torch.no_grad():
        counted, per_op = flops.counted_flops(lambda: model(**inputs))
        # an independent count: the math SDPA backend decomposes attention into bmm, which torch counts itself
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            math_counted, math_per_op = flops.counted_flops(lambda: model(**inputs))
    assert counted == analytic.total
    assert math_counted == analytic.total and "bmm" in math_per_op
    attention = analytic.self_attention_matmul + analytic.cross_attention_matmul
    assert per_op["_scaled_dot_product_flash_attention_for_cpu"] == attention
    # more text tokens add exactly the cross-attention terms
    more = flops.jointdit_flops(cfg, batch, nv, na, nt + 1)
    d, depth = cfg.width, cfg.depth
    assert (
        more.total - analytic.total
        == depth * (4 * batch * (nv + na) * d + 2 * batch * d * 2 * d) + 2 * batch * cfg.text_dim * d
    )


def test_flops_reject_impossible_sizes() -> None:
    flops = perf("flops")
    from avgen.model.dit import dit_config

    with pytest.raises(ValueError, match="batch"):
        flops.jointdit_flops(dit_config("tiny"), 0, 4, 4, 4)


def test_matmul_limit_and_child_memory(tmp_path: Path) -> None:
    matmul, machine = perf("matmul"), perf("machine")
    lim = matmul.measure_limit(matmul.linear_shapes(64, 32, 64), sizes=(64,), repeats=1, min_time=0.001)
    assert lim["peak_gflops"] == lim["square_gflops"]["64"] > 0
    assert set(lim["shape_gflops"]) == {"qkv", "out", "mlp_in", "mlp_out"} and lim["shape_mean_gflops"] > 0
    # a child's peak RSS is its own, not this (larger) process's: Linux would carry ours over the exec
    code = "import json; b = bytearray(64 * 2**20); print(json.dumps({'n': len(b)}))"
    r = machine.run_child([sys.executable, "-S", "-c", code])
    assert r["returncode"] == 0 and r["result"] == {"n": 64 * 2**20}
    assert 64 < r["peak_rss_mb"] < 64 + 60 < machine.peak_rss_mb()
    assert machine.run_child([sys.executable, "-c", "raise SystemExit(3)"])["returncode"] == 3
    slow = machine.run_child([sys.executable, "-S", "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert slow["timed_out"] and slow["wall_s"] < 10


def test_mfu_main_writes_json(tmp_path: Path) -> None:
    mfu = perf("mfu")
    out = tmp_path / "mfu.json"
    argv = ["--preset", "tiny", "--size", "32x48", "--seconds", "1", "--quick", "--threads", "1"]
    assert mfu.main([*argv, "--peer-python", str(tmp_path / "none"), "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["benchmark"] == "mfu" and r["command"].endswith(str(out))
    # 32x48, 1 s at 24 fps: 7 latent frames of 4x6 -> 7*2*3 video tokens; 50 audio latents / 2
    assert (r["clip"]["video_tokens"], r["clip"]["audio_tokens"]) == (42, 25)
    a = r["avgen"]
    assert a["flops_counted"] == a["flops"]["total"] > 0
    assert a["achieved_gflops"] == pytest.approx(a["flops"]["total"] / a["forward_s"] / 1e9)
    assert a["utilisation"] == pytest.approx(a["achieved_gflops"] / r["limit"]["peak_gflops"])
    assert a["memory"]["peak_rss_mb"] > a["memory"]["rss_after_import_mb"] > 0
    assert a["profile"] and a["profile"][0]["share"] > 0
    assert "not found" in r["peer"]["skipped"]
    assert r["machine"]["cores"] >= 1 and r["machine"]["torch"] == torch.__version__


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="diffusers lives in the peer venv")
def test_peer_runs_where_diffusers_imports() -> None:
    peer = perf("peer_ltx2")
    assert (
        peer.main(
            [
                "--width",
                "32",
                "--depth",
                "1",
                "--heads",
                "2",
                "--video-grid",
                "2",
                "2",
                "2",
                "--audio-tokens",
                "5",
                "--text-tokens",
                "3",
                "--repeats",
                "1",
                "--min-time",
                "0",
            ]
        )
        == 0
    )


def test_pipeline_speed_main_times_each_phase(tmp_path: Path) -> None:
    speed = perf("pipeline_speed")
    out = tmp_path / "speed.json"
    argv = [
        "--pipeline",
        "random:tiny",
        "--steps",
        "1",
        "2",
        "--quick",
        "--no-profile-process",
        "--out",
        str(out),
    ]
    assert speed.main(argv) == 0
    r = json.loads(out.read_text())
    assert r["benchmark"] == "pipeline_speed" and [s["steps"] for s in r["steps"]] == [1, 2]
    for row in r["steps"]:
        ph = row["phases_s"]
        assert min(ph["text"], ph["sampling"], ph["decode_video"], ph["decode_audio"], row["mux_s"]) > 0
        assert 0 < ph["dit"] <= ph["sampling"] and row["clip_s"] == 2.0
        assert row["realtime_factor"] == pytest.approx(2.0 / row["call_s"])
    # heun: 2 evaluations per step but one on the last step
    assert [s["nfe"] for s in r["steps"]] == [1, 3]
    p = r["process"]
    assert p["wall_s_best"] > 0 and p["peak_rss_mb"] > 100 and p["imports"]["total_s"] > 0
    assert any(
        i["module"].startswith("torch") or i["module"].startswith("avgen")
        for i in p["imports"]["top_cumulative"]
    )
    assert p["command"].startswith("avgen generate") and "random:tiny" in p["command"]
    # the wrapped methods are gone again: the pipeline module's function is the real one
    import avgen.diffusion.generate as gen

    assert gen.generate_tokens.__module__ == "avgen.diffusion.generate"
    assert gen.generate_tokens.__name__ == "generate_tokens"


def test_importtime_and_profile_parsers(tmp_path: Path) -> None:
    speed = perf("pipeline_speed")
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   _io",
            "import time:      2000 |       5000 | torch",
            "import time:       300 |        300 |     torch._C",
            "import time:        50 |       1200 | avgen",
            "noise",
        ]
    )
    got = speed.parse_importtime(text)
    assert got["total_s"] == pytest.approx((5000 + 1200) / 1e6)
    assert [i["module"] for i in got["top_cumulative"]] == ["torch", "avgen"]
    assert got["top_self"][0] == {"module": "torch", "s": 0.002}
    stats = tmp_path / "p.pstats"
    cProfile.runctx("sum(range(1000))", {}, {}, str(stats))
    summary = speed.profile_summary(stats)
    assert summary["total_s"] >= 0 and set(summary["parts_s"]) == {p for p, _, _ in speed.PROCESS_PARTS}
    assert all(v is None for v in summary["parts_s"].values())


def test_quality_steps_main_and_plateau(tmp_path: Path) -> None:
    quality = perf("quality_steps")
    out = tmp_path / "q.json"
    argv = [
        "--pipeline",
        "random:tiny",
        "--steps",
        "1",
        "2",
        "--per-family",
        "2",
        "--families",
        "talk",
        "bounce",
    ]
    argv += ["--size", "32x32", "--seconds", "1", "--batch", "4", "--out", str(out)]
    assert quality.main(argv) == 0
    r = json.loads(out.read_text())
    assert r["benchmark"] == "quality_steps" and [row["steps"] for row in r["rows"]] == [1, 2]
    cols = {c for c, _, _ in quality.METRICS}
    assert cols <= set(r["rows"][0]) and {"gen_s", "gen_s_per_clip"} <= set(r["rows"][0])
    assert r["ground_truth"]["within_one_frame"] == 1.0 and r["plateau_steps"] in (1, 2)
    assert out.with_suffix(".md").read_text().startswith("| steps |")
    rows = [
        {"steps": s, **dict.fromkeys(quality.PLATEAU_KEYS), "impact_f1": f, "color_keys": c}
        for s, f, c in ((4, 0.2, 0.9), (8, 0.58, 0.5), (16, 0.61, 0.95), (50, 0.62, 1.0))
    ]
    assert quality.plateau_steps(rows, 0.05) == 16
    assert quality.plateau_steps(rows, 0.5) == 4
    assert quality.plateau_steps([], 0.05) is None


def _fixtures() -> tuple[dict, dict, dict]:
    machine = {
        "cpu": "Test CPU",
        "cores": 2,
        "load_average": [0.1, 0.2, 0.3],
        "torch": "2.13.0",
        "torch_threads": 2,
    }
    limit = {
        "square_gflops": {"256": 100.0},
        "peak_gflops": 100.0,
        "shapes": {"qkv": [516, 256, 768]},
        "shape_gflops": {"qkv": 90.0},
    }
    mfu = {
        "benchmark": "mfu",
        "command": "python -m benchmarks.perf.mfu --out m.json",
        "machine": machine,
        "clip": {
            "size": [64, 64],
            "seconds": 2.0,
            "fps": 24,
            "video_tokens": 208,
            "audio_tokens": 50,
            "text_tokens": 16,
            "batch": 2,
        },
        "limit": {"before": limit, "after": limit, "peak_gflops": 120.0},
        "avgen": {
            "preset": "default",
            "parameters": 7_150_000,
            "width": 256,
            "depth": 6,
            "heads": 4,
            "flops": {"total": 6.6e9},
            "forward_s": 0.1,
            "achieved_gflops": 66.0,
            "utilisation": 0.55,
            "memory": {"peak_rss_mb": 300.0},
            "profile": [{"op": "aten::addmm", "self_ms": 50.0, "share": 0.5, "calls": 51}],
        },
        "peer": {
            "diffusers": "0.42.1",
            "parameters": 18_000_000,
            "flops": 8.3e9,
            "forward_s": 0.2,
            "achieved_gflops": 41.5,
            "utilisation": 0.346,
            "utilisation_own_limit": 0.35,
            "avgen_to_peer_utilisation": 1.59,
            "memory": {"peak_rss_mb": 400.0},
        },
    }
    step = {
        "nfe": 31,
        "phases_s": {
            "text": 0.01,
            "sampling": 3.0,
            "dit": 2.9,
            "decode_video": 0.2,
            "decode_audio": 0.05,
            "other": 0.01,
        },
        "call_s": 3.27,
        "mux_s": 0.1,
        "clip_s": 2.0,
        "realtime_factor": 2 / 3.27,
        "realtime_factor_with_mux": 2 / 3.37,
        "peak_rss_mb_so_far": 700.0,
    }
    speed = {
        "benchmark": "pipeline_speed",
        "command": "python -m benchmarks.perf.pipeline_speed",
        "machine": machine,
        "pipeline": "avgen-tiny",
        "sampler": "heun",
        "default_steps": 16,
        "clip": {"size": [64, 64], "seconds": 2.0, "fps": 24, "prompt": "p"},
        "steps": [{**step, "steps": 8, "realtime_factor": 1.25, "call_s": 1.6}, {**step, "steps": 16}],
        "process": {
            "command": "avgen generate p -o out.mp4",
            "runs": 3,
            "wall_s_best": 12.5,
            "wall_s_median": 13.0,
            "peak_rss_mb": 800.0,
            "help_wall_s": 0.1,
            "imports": {"total_s": 6.0, "top_cumulative": [{"module": "transformers", "s": 4.0}]},
            "profile": {"total_s": 14.0, "parts_s": {"load pipeline": 8.0}},
        },
    }
    row = {"steps": 8, "gen_s": 10.0, "gen_s_per_clip": 0.5, "impact_f1": 0.6, "color_keys": 0.9}
    quality = {
        "benchmark": "quality_steps",
        "command": "python -m benchmarks.perf.quality_steps",
        "machine": machine,
        "pipeline": "avgen-tiny",
        "sampler": "heun",
        "config": {
            "per_family": 16,
            "families": ["talk", "bounce", "keys"],
            "size": [64, 64],
            "seconds": 2.0,
            "fps": 24,
        },
        "rows": [row, {**row, "steps": 16}],
        "ground_truth": {"impact_f1": 0.9},
        "tolerance": 0.05,
        "plateau_steps": 8,
    }
    return mfu, speed, quality


def test_report_renders_tables_from_fixture_json(tmp_path: Path) -> None:
    report = perf("report")
    mfu, speed, quality = _fixtures()
    paths = {}
    for name, data in (("mfu", mfu), ("speed", speed), ("quality", quality)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    out = tmp_path / "RESULTS.md"
    argv = [
        "--mfu",
        str(paths["mfu"]),
        "--pipeline-speed",
        str(paths["speed"]),
        "--quality",
        str(paths["quality"]),
    ]
    assert report.main([*argv, "--out", str(out)]) == 0
    md = out.read_text()
    assert "python -m benchmarks.perf.mfu --out m.json" in md and "Test CPU, 2 logical cores" in md
    assert "| avgen JointDiT (default) | 7.15M | 256/6/4 | 6.6 | 100 | 66 | 55.0 % | 300 |" in md
    assert "avgen / peer utilisation: **1.59x**" in md
    # targets: the plateau (8 steps) is faster than real time; the process misses 10 s by 2.5 s
    assert (
        "| pipeline call faster than real time at 8 steps (plateau of the quality table) | RTF 1.25 | RTF > 1 | met |"
        in md
    )
    assert "missed by 2.5 s" in md and "| JointDiT forward utilisation | 55.0 % | >= 50.0 % | met |" in md
    assert "| 8 | 10 | 0.5 |" in md and "**8 steps**" in md
    # a missing peer is said, not hidden
    mfu["peer"] = {"skipped": "no venv"}
    paths["mfu"].write_text(json.dumps(mfu))
    assert report.main(["--mfu", str(paths["mfu"]), "--out", str(out)]) == 0
    assert "Peer not measured: no venv" in out.read_text()
    with pytest.raises(SystemExit):
        report.main(["--mfu", str(paths["speed"]), "--out", str(out)])  # the wrong kind of result
