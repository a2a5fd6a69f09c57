"""``avgen data``: dataset tools. Each subcommand lives in its own module and is imported only when run."""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("avgen.data.synth.cli:main", "write procedural audio-visual clips with ground-truth events"),
    "scan": (
        "avgen.data.folder:main",
        "check a folder of real videos; report every file it would skip and why",
    ),
}


def main(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[argv[0]][0].split(":")
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    listing = "\n".join(f"  {name:<8} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="avgen data",
        description="Dataset tools.",
        epilog=f"subcommands:\n{listing}\n\nRun 'avgen data SUBCOMMAND -h' for its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("subcommand", choices=list(SUBCOMMANDS), metavar="SUBCOMMAND")
    parser.parse_args(argv[:1])
    return 2
