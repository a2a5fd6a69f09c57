"""Render the JSON of ``mfu.py``, ``pipeline_speed.py`` and ``quality_steps.py`` as ``benchmarks/RESULTS.md``.

Every table carries the exact command that produced it and the machine it ran on (CPU model, cores,
load average, torch version and threads), and the issue's targets are checked with the margin by which
each is met or missed. Sections whose JSON is not given are left out.

    python -m benchmarks.perf.report --mfu R/mfu.json --pipeline-speed R/pipeline_speed.json \\
        --quality R/quality_steps.json --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TARGET_MFU = 0.5
TARGET_PROCESS_S = 10.0


def fmt(v: Any, digits: int = 3) -> str:
    """Numbers to ``digits`` significant figures, None as "-"."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 10**digits else f"{v:.0f}"
    return str(v)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(result: dict[str, Any]) -> str:
    """The command block and machine line every section starts with."""
    m = result.get("machine", {})
    load = ", ".join(fmt(x) for x in m.get("load_average", []))
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    return (
        f"```\n{result.get('command', '(command not recorded)')}\n```\n\n"
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} logical cores{gpu}; torch {m.get('torch', '?')} "
        f"with {m.get('torch_threads', '?')} threads (OMP_NUM_THREADS={m.get('omp_num_threads')}); "
        f"load average at the end {load}."
    )


def mfu_section(r: dict[str, Any]) -> str:
    clip, a, peer = r["clip"], r["avgen"], r.get("peer")
    peak = r["limit"]["peak_gflops"]
    out = [
        "## Transformer forward: model FLOP utilisation",
        provenance(r),
        f"Clip {clip['size'][0]}x{clip['size'][1]}, {fmt(clip['seconds'])} s at {clip['fps']} fps: "
        f"{clip['video_tokens']} video + {clip['audio_tokens']} audio tokens, {clip['text_tokens']} text "
        f"tokens, batch {clip['batch']} (guidance batched). FLOPs: every matmul of the forward "
        "(element-wise work excluded; `benchmarks/perf/flops.py`), counted by `FlopCounterMode` for both "
        "models. Utilisation = achieved GFLOP/s / the best square fp32 matmul of the same run "
        f"({fmt(peak)} GFLOP/s).",
    ]
    rows = [
        [
            f"avgen JointDiT ({a['preset']})",
            f"{a['parameters'] / 1e6:.2f}M",
            f"{a['width']}/{a['depth']}/{a['heads']}",
            a["flops"]["total"] / 1e9,
            a["forward_s"] * 1e3,
            a["achieved_gflops"],
            pct(a["utilisation"]),
            (a.get("memory") or {}).get("peak_rss_mb"),
        ]
    ]
    if peer and "achieved_gflops" in peer:
        rows.append(
            [
                f"diffusers LTX2VideoTransformer3DModel ({peer.get('diffusers', '?')})",
                f"{peer['parameters'] / 1e6:.2f}M",
                f"{a['width']}/{a['depth']}/{a['heads']}",
                peer["flops"] / 1e9,
                peer["forward_s"] * 1e3,
                peer["achieved_gflops"],
                pct(peer["utilisation"]),
                (peer.get("memory") or {}).get("peak_rss_mb"),
            ]
        )
    header = [
        "model",
        "params",
        "width/depth/heads",
        "GFLOP/forward",
        "ms/forward",
        "GFLOP/s",
        "utilisation",
        "peak RSS (MiB)",
    ]
    out.append(table(header, rows))
    if peer and "achieved_gflops" in peer:
        out.append(
            f"avgen / peer utilisation: **{fmt(peer['avgen_to_peer_utilisation'])}x**; forward time ratio "
            f"(peer / avgen, same tokens): {fmt(peer['forward_s'] / a['forward_s'])}x. The peer measured "
            f"its own matmul limit in its process too: utilisation against it {pct(peer.get('utilisation_own_limit'))}."
        )
    elif peer:
        out.append(f"Peer not measured: {peer.get('skipped') or peer.get('error', '')[-300:]}")
    lim = r["limit"]
    sq = [
        [f"{n}^3", lim["before"]["square_gflops"][n], lim["after"]["square_gflops"].get(n)]
        for n in lim["before"]["square_gflops"]
    ]
    sh = [
        [
            f"{name} {'x'.join(map(str, lim['before']['shapes'][name]))}",
            g,
            lim["after"]["shape_gflops"].get(name),
        ]
        for name, g in lim["before"].get("shape_gflops", {}).items()
    ]
    out.append("Matmul limit (fp32 GFLOP/s, best of N; measured before and after the model):")
    out.append(table(["matmul", "before", "after"], sq + sh))
    if a.get("profile"):
        prof = [[p["op"], p["self_ms"], pct(p["share"]), p["calls"]] for p in a["profile"]]
        out.append("Where the JointDiT forward's time goes (torch profiler, self CPU time, one forward):")
        out.append(table(["op", "ms", "share", "calls"], prof))
    return "\n\n".join(out)


def pipeline_section(r: dict[str, Any]) -> str:
    clip = r["clip"]
    out = [
        "## Pipeline: realtime factor and phases",
        provenance(r),
        f"Pipeline {r['pipeline']}, sampler {r['sampler']} (default {r['default_steps']} steps); clip "
        f"{clip['size'][0]}x{clip['size'][1]}, {fmt(clip['seconds'])} s at {clip['fps']} fps. Seconds per "
        "phase (median call of the repeats); realtime factor = clip seconds / wall seconds (> 1: faster "
        "than real time). Sampling includes the DiT forwards (`dit`, `nfe` calls at batch 2).",
    ]
    header = [
        "steps",
        "nfe",
        "text",
        "sampling",
        "dit",
        "decode video",
        "decode audio",
        "other",
        "call",
        "mux",
        "RTF",
        "RTF + mux",
        "peak RSS (MiB)",
    ]
    rows = []
    for s in r["steps"]:
        ph = s["phases_s"]
        rows.append(
            [
                s["steps"],
                s["nfe"],
                ph["text"],
                ph["sampling"],
                ph["dit"],
                ph["decode_video"],
                ph["decode_audio"],
                ph["other"],
                s["call_s"],
                s["mux_s"],
                s["realtime_factor"],
                s["realtime_factor_with_mux"],
                s["peak_rss_mb_so_far"],
            ]
        )
    out.append(table(header, rows))
    p = r.get("process")
    if p and "error" not in p:
        out.append(
            f"Whole process `{p['command']}` ({p['runs']} runs, pipeline's default steps): best "
            f"**{fmt(p['wall_s_best'])} s**, median {fmt(p['wall_s_median'])} s, peak RSS {fmt(p['peak_rss_mb'])} MiB; "
            f"`avgen generate --help` {fmt(p['help_wall_s'])} s. Imports (`-X importtime`, top level): "
            f"{fmt(p['imports']['total_s'])} s."
        )
        imp = [[i["module"], i["s"]] for i in p["imports"]["top_cumulative"]]
        out.append(table(["slowest top-level imports", "s (cumulative)"], imp))
        prof = p.get("profile")
        if prof and "error" not in prof:
            parts = [[k, v] for k, v in prof["parts_s"].items()]
            out.append(f"cProfile of one run (overhead included; total {fmt(prof['total_s'])} s):")
            out.append(table(["part", "s"], parts))
    elif p:
        out.append(f"Whole process failed: {p['error'][-300:]}")
    return "\n\n".join(out)


def quality_section(r: dict[str, Any]) -> str:
    from benchmarks.perf.quality_steps import to_markdown

    c = r["config"]
    return "\n\n".join(
        [
            "## Quality against steps (text-to-audio-video)",
            provenance(r),
            f"Pipeline {r['pipeline']}, sampler {r['sampler']}; {c['per_family']} held-out prompts per family "
            f"({', '.join(c['families'])}), {c['size'][0]}x{c['size'][1]}, {fmt(c['seconds'])} s at {c['fps']} fps. "
            "lag_ms: median lip-sync lag (positive = audio late); within_one_frame, lip_corr (shuffled_corr: "
            "the no-sync floor); impact_f1, av_align and av_align_vs_gt (ratio to the ground-truth clips) on "
            "bounce; color_*: share of clips with the caption's colour. Ground truth is the ceiling.",
            to_markdown(r),
            f"Plateau (every score within {r['tolerance']} of the {r['rows'][-1]['steps'] if r['rows'] else '-'}-step "
            f"score): **{r['plateau_steps']} steps**.",
        ]
    )


def targets(mfu: dict | None, speed: dict | None, quality: dict | None) -> str:
    """The issue's targets: measured, target, met or missed and by how much."""
    rows = []
    if speed:
        steps = (quality or {}).get("plateau_steps") or speed["default_steps"]
        why = (
            "plateau of the quality table" if quality and quality.get("plateau_steps") else "pipeline default"
        )
        row = min(speed["steps"], key=lambda s: abs(s["steps"] - steps))
        rtf = row["realtime_factor"]
        rows.append(
            [
                f"pipeline call faster than real time at {row['steps']} steps ({why})",
                f"RTF {fmt(rtf)}",
                "RTF > 1",
                "met"
                if rtf > 1
                else f"missed: {fmt(row['call_s'] - row['clip_s'])} s too slow ({fmt(1 / rtf)}x real time)",
            ]
        )
        p = speed.get("process")
        if p and "error" not in p:
            wall = p["wall_s_best"]
            rows.append(
                [
                    "`avgen generate` whole process",
                    f"{fmt(wall)} s",
                    f"< {fmt(TARGET_PROCESS_S)} s",
                    "met" if wall < TARGET_PROCESS_S else f"missed by {fmt(wall - TARGET_PROCESS_S)} s",
                ]
            )
    if mfu:
        u = mfu["avgen"]["utilisation"]
        rows.append(
            [
                "JointDiT forward utilisation",
                pct(u),
                f">= {pct(TARGET_MFU)}",
                "met" if u >= TARGET_MFU else f"missed by {100 * (TARGET_MFU - u):.1f} points",
            ]
        )
        peer = mfu.get("peer") or {}
        if "utilisation" in peer:
            ratio = peer["avgen_to_peer_utilisation"]
            rows.append(
                [
                    "ahead of the diffusers peer's utilisation",
                    f"{pct(u)} vs {pct(peer['utilisation'])}",
                    "avgen > peer",
                    "met" if ratio > 1 else f"missed: avgen at {fmt(ratio)}x the peer",
                ]
            )
    return "## Targets (issue 9)\n\n" + table(["target", "measured", "wanted", "status"], rows)


def render(mfu: dict | None, speed: dict | None, quality: dict | None, command: str) -> str:
    parts = [
        "# Benchmark results",
        "Generated by `benchmarks/perf/report.py`; do not edit by hand: rerun the benchmarks (see "
        "`benchmarks/perf/README.md`) and then\n\n```\n" + command + "\n```",
        targets(mfu, speed, quality),
    ]
    parts += [mfu_section(mfu)] if mfu else []
    parts += [pipeline_section(speed)] if speed else []
    parts += [quality_section(quality)] if quality else []
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mfu", type=Path, help="JSON from mfu.py")
    p.add_argument("--pipeline-speed", type=Path, help="JSON from pipeline_speed.py")
    p.add_argument("--quality", type=Path, help="JSON from quality_steps.py")
    p.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = p.parse_args(argv)
    loaded = []
    for path, kind in (
        (args.mfu, "mfu"),
        (args.pipeline_speed, "pipeline_speed"),
        (args.quality, "quality_steps"),
    ):
        if path is None:
            loaded.append(None)
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            p.error(f"{path}: cannot read JSON ({e})")
        if data.get("benchmark") != kind:
            p.error(f"{path}: is a {data.get('benchmark')!r} result, expected {kind!r}")
        loaded.append(data)
    if not any(loaded):
        p.error("give at least one of --mfu, --pipeline-speed, --quality")
    from benchmarks.perf.machine import command_line

    text = render(*loaded, command=command_line("benchmarks.perf.report", argv))
    from avgen.atomic import write_text

    write_text(args.out, text, mkdir_parents=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
