"""The ``avgen`` command: subcommands are imported only when run, so ``avgen -h`` stays instant."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import json
import signal
import sys
from collections.abc import Callable, Iterator

# name -> ("module:function", one-line help). Each function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("avgen.generate:main", 'generate a clip: avgen generate "PROMPT" -o out.mp4'),
    "info": ("avgen.cli:info_main", "describe a media file: streams, codecs, sizes, durations, tags"),
    "demo": ("avgen.demo:main", "write a demo clip (MP4) and a PNG of its frames and waveform"),
    "data": ("avgen.data.cli:main", "make datasets: avgen data synth --out DIR --n N --split train"),
    "codec": ("avgen.train.codec_cli:main", "train, evaluate and describe latent codecs: avgen codec -h"),
    "train": ("avgen.train.recipe:main", "train from a recipe: avgen train configs/X.yaml [--resume]"),
    "model": ("avgen.model_cli:main", "list model presets with their sizes: avgen model presets"),
    "eval": ("avgen.metrics.cli:main", "score A/V sync of clips: avgen eval files DIR [--out DIR]"),
}

# (COMMAND, SUBCOMMAND) served by another module than COMMAND's own, where the layers demand it: validation
# losses need the trainer, and learning curves read training runs, both above the metrics; packing a run's
# resume state is not a recipe.
SUBCOMMANDS: dict[tuple[str, str], str] = {
    ("eval", "loss"): "avgen.train.validate:main",
    ("eval", "curve"): "avgen.train.curve:main",
    ("train", "pack"): "avgen.train.pack:main",
    ("codec", "stats"): "avgen.codecs.stats_cli:main",
}


def _load(target: str) -> Callable[[list[str]], int]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def printable(value: object) -> str:
    """``str(value)`` safe to print on a terminal: control characters (escape sequences, newlines, bidi
    overrides, C1 codes) are shown as ``\\x1b``-style escapes instead of acting on the terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _format_info(info: dict) -> str:
    """``probe``'s dict as text; every value that comes from the file (codec names, tags, the path) is
    passed through ``printable``, so a crafted file cannot drive the terminal."""
    p = printable
    lines = [
        f"{p(info['path'])}",
        f"  format: {p(info['format'])}, {info['size_bytes']} bytes, duration {info['duration_s']} s",
    ]
    for s in info["streams"]:
        if s["type"] == "video":
            desc = (
                f"{p(s['codec'])} {s['width']}x{s['height']} {p(s.get('pix_fmt'))} @ {p(s['fps'])} fps, "
                f"{s['frames']} frames"
            )
        else:
            layout = p(s.get("layout", s["channels"]))
            desc = f"{p(s['codec'])} {s['sample_rate']} Hz {layout}, {s['samples']} samples"
        lines.append(f"  {p(s['type'])}: {desc}, duration {s['duration_s']} s, start {s['start_s']} s")
    if info["av_start_offset_s"] is not None:
        lines.append(f"  A/V start offset: {info['av_start_offset_s'] * 1000:.3f} ms (audio minus video)")
    for k, v in info["metadata"].items():
        lines.append(f"  tag {p(k)}: {p(v)}")
    return "\n".join(lines)


def info_main(argv: list[str]) -> int:
    """``avgen info FILE...``: each file's info, or its error on stderr; exit 1 if any file failed."""
    parser = argparse.ArgumentParser(prog="avgen info", description=COMMANDS["info"][1])
    parser.add_argument("files", nargs="+", help="media files (mp4, mkv, mov, webm, wav, flac, ...)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    from avgen.errors import AVGenError
    from avgen.io import probe

    infos, failed = [], 0
    for f in args.files:
        try:
            info = probe(f)
        except AVGenError as e:  # one bad file must not hide the others
            failed += 1
            print(f"avgen info: error: {printable(e)}", file=sys.stderr)
            info = {"path": str(f), "error": str(e)}
        infos.append(info)
        if not args.json and "error" not in info:
            print(_format_info(info))
    if args.json:  # ensure_ascii escapes C1 controls and bidi marks; DEL is escaped by hand
        text = json.dumps(infos if len(infos) > 1 else infos[0], indent=2, ensure_ascii=True)
        print(text.replace("\x7f", "\\u007f"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    width = max(len(n) for n in COMMANDS)
    usage = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="avgen",
        description="avgen: joint audio-video generation.",
        epilog=f"commands:\n{usage}\n\nRun 'avgen COMMAND -h' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv[:1] if argv and argv[0] in COMMANDS else argv)
    if args.version:
        from avgen import __version__

        print(f"avgen {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    from avgen.errors import AVGenError

    target, rest = COMMANDS[args.command][0], argv[1:]
    if rest and (args.command, rest[0]) in SUBCOMMANDS:
        target, rest = SUBCOMMANDS[args.command, rest[0]], rest[1:]
    try:
        with _terminate_cleanly():
            return int(_load(target)(rest) or 0)
    except AVGenError as e:
        print(f"avgen {args.command}: error: {printable(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avgen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"avgen {args.command}: terminated", file=sys.stderr)
        return 143
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS:
            raise
        where = f"{printable(e.filename)}: " if e.filename else ""
        print(f"avgen {args.command}: error: {where}{e.strerror}", file=sys.stderr)
        return 2


class Terminated(BaseException):
    """SIGTERM arrived: unwinds the command like KeyboardInterrupt, so ``finally`` blocks and ``with`` exits
    remove their temp files (``.part``); a BaseException, so no ``except Exception`` swallows it."""


# File-system answers worth one line, not a traceback: the file or folder named is the whole story.
_OUTPUT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENAMETOOLONG,
    errno.EISDIR,
    errno.ENOTDIR,
}


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM raises ``Terminated`` while a command runs (the default action would kill the process on the
    spot, leaving half-written temp files). A command that handles SIGTERM itself (``avgen train`` checkpoints
    and stops) installs its own handler inside and puts this one back after."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
