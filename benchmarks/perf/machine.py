"""What a result was measured on and with, and how to run a phase in a child process for its peak memory.

Imports only the standard library (torch lazily), so the peer's venv can use it without avgen.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository root: children run ``-m benchmarks.perf.X`` here


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, load average, torch version and threads, GPU name if CUDA is up."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def command_line(module: str, argv: list[str] | None = None) -> str:
    """``python -m MODULE ARGS`` as a user would type it from the repository root, with the environment
    that matters (``argv`` None: this process's own arguments)."""
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE") if k in os.environ)
    args = sys.argv[1:] if argv is None else argv
    return " ".join([env, "python", "-m", module, *map(shlex.quote, args)]).strip()


def emit_result(result: dict[str, Any], out: Path | None) -> None:
    """Print ``result`` as indented JSON and, with ``out``, write the same text there atomically."""
    text = json.dumps(result, indent=2)
    if out:
        from avgen.atomic import write_text

        write_text(out, text + "\n", mkdir_parents=True)
    print(text)


def _status_kb(field: str, pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set so far (MiB): ``VmHWM`` of /proc/self/status, which belongs to the
    process's own memory map. (``ru_maxrss`` is not used where VmHWM exists: Linux carries the parent's
    peak into a child across fork + exec, so a child of a big process reports at least the parent's size.)"""
    kb = _status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def current_rss_mb() -> float:
    """This process's resident set now (MiB), from /proc/self/status (0 where that is missing)."""
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024


def run_child(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    full_stderr: bool = False,
) -> dict[str, Any]:
    """Run ``cmd`` (from the repository root unless ``cwd``) to completion.

    Returns its exit code, wall seconds, peak RSS in MiB, the last JSON object line it printed on stdout
    (``result``, None if none) and the tail of its stderr (all of it as ``stderr`` with ``full_stderr``).
    Past ``timeout`` seconds its process group is killed (``timed_out`` True).

    The command runs under a small intermediate Python process (this file as a script) that starts it,
    times it and reads its ``os.wait4`` rusage: since Linux carries a parent's peak RSS into its children,
    a child started straight from a large benchmark process would report at least the benchmark's size.
    """
    import signal
    import tempfile

    with (
        tempfile.TemporaryFile() as outf,
        tempfile.TemporaryFile() as errf,
        tempfile.NamedTemporaryFile(suffix=".json") as usage_file,
    ):
        t0 = time.perf_counter()
        wrapper = [sys.executable, "-S", str(Path(__file__).resolve()), usage_file.name, "--", *cmd]
        proc = subprocess.Popen(
            wrapper,
            cwd=cwd or ROOT,
            env={**os.environ, **(env or {})},
            stdout=outf,
            stderr=errf,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.perf_counter() - t0
        outf.seek(0)
        errf.seek(0)
        out = outf.read().decode(errors="replace")
        err = errf.read().decode(errors="replace")
        try:
            usage = json.loads(Path(usage_file.name).read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            usage = {}
    result = None
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    extra = {"stderr": err} if full_stderr else {}
    return {
        **extra,
        "returncode": usage.get("returncode", proc.returncode),
        "timed_out": timed_out,
        "wall_s": usage.get("wall_s", wall),
        "peak_rss_mb": usage.get("maxrss_kb", 0) / 1024 or None,
        "result": result,
        "stdout_tail": "" if result is not None else out[-1500:],
        "stderr_tail": err[-1500:],
    }


def _wrap(argv: list[str]) -> int:
    """``machine.py USAGE_JSON -- CMD...``: run CMD, write its exit code, wall seconds and peak RSS."""
    usage_path, sep, *cmd = argv
    if sep != "--" or not cmd:
        print("usage: machine.py USAGE_JSON -- CMD...", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    Path(usage_path).write_text(
        json.dumps({"returncode": code, "wall_s": wall, "maxrss_kb": usage.ru_maxrss})
    )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(_wrap(sys.argv[1:]))
