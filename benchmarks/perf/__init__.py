"""Performance benchmarks for issue 9 (run from the repository root as ``python -m benchmarks.perf.X``).

See ``benchmarks/perf/README.md``. Nothing here runs at import time; ``matmul.py``, ``machine.py`` and
``peer_ltx2.py`` import only torch (and diffusers), so the peer's separate venv can run them without avgen.
"""
