"""Which source files a dataset skips, and the report that names every one of them.

Nothing is dropped silently: each skipped file is recorded with its path, a reason from ``REASONS`` and a
detail, written to a JSON Lines report file, and summarised in one line.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

from avgen import atomic
from avgen.errors import ConfigError

# reason -> what it means (also the order of the summary line)
REASONS: dict[str, str] = {
    "empty": "the file has zero bytes",
    "unreadable": "the container or a stream cannot be decoded",
    "no_video": "the file has no video stream",
    "no_audio": "the file has no audio stream",
    "silent": "the audio track is below the silence threshold",
    "too_short": "shorter than the shortest window duration",
    "no_caption": "no caption in captions.jsonl or a .txt beside it (policy requires one)",
    "missing": "listed in captions.jsonl but not found on disk",
}


@dataclasses.dataclass(frozen=True)
class SkipPolicy:
    """What makes a source file unusable.

    require_audio: skip files with no audio stream (reason ``no_audio``); False keeps them with silence.
    silence_dbfs: skip files whose audio RMS over the whole track is below this (dB full scale);
        None disables the check.
    require_caption: skip files with no caption (reason ``no_caption``); False gives them caption "".
    """

    require_audio: bool = True
    silence_dbfs: float | None = -60.0
    require_caption: bool = False

    def __post_init__(self) -> None:
        if self.silence_dbfs is not None and not -200.0 <= float(self.silence_dbfs) <= 0.0:
            raise ConfigError(
                f"SkipPolicy.silence_dbfs must be in [-200, 0] dBFS or None, got {self.silence_dbfs}"
            )


@dataclasses.dataclass(frozen=True)
class Skip:
    """One skipped file: ``reason`` is a key of ``REASONS``; ``detail`` says what was found."""

    path: str
    reason: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown skip reason {self.reason!r}; known: {', '.join(REASONS)}")


class SkipReport:
    """Collects the skips of one dataset scan; ``write`` saves them, ``summary`` gives one line."""

    def __init__(self, root: str | Path, total: int = 0) -> None:
        self.root = str(root)
        self.total = total
        self.skips: list[Skip] = []

    def add(self, path: str | Path, reason: str, detail: str) -> None:
        self.skips.append(Skip(str(path), reason, detail))

    @property
    def kept(self) -> int:
        return self.total - sum(1 for s in self.skips if s.reason != "missing")

    def counts(self) -> dict[str, int]:
        """Skips per reason, in ``REASONS`` order, reasons with none left out."""
        c = Counter(s.reason for s in self.skips)
        return {r: c[r] for r in REASONS if c[r]}

    def summary(self) -> str:
        """One line, e.g. ``data: kept 5 of 9 files; skipped 4 (2 unreadable, 1 no_audio, 1 empty)``.

        Files named in captions.jsonl but absent are not among the total; they get their own clause.
        """
        counts = self.counts()
        missing = counts.pop("missing", 0)
        line = f"{self.root}: kept {self.kept} of {self.total} files"
        n = sum(counts.values())
        line += (
            f"; skipped {n} ({', '.join(f'{k} {r}' for r, k in counts.items())})" if n else "; skipped none"
        )
        if missing:
            line += f"; {missing} captioned file{'s' * (missing > 1)} missing"
        return line

    def to_records(self) -> list[dict[str, str]]:
        return [dataclasses.asdict(s) for s in self.skips]

    def write(self, path: str | Path) -> Path:
        """Write one JSON object per skip (path, reason, detail) to ``path`` atomically; returns it.

        The first line is a header ``{"summary": ..., "total": ..., "kept": ..., "counts": {...}}``.
        """
        path = Path(path)
        header = {"summary": self.summary(), "total": self.total, "kept": self.kept, "counts": self.counts()}
        lines = [json.dumps(header)] + [json.dumps(r) for r in self.to_records()]
        atomic.write_text(path, "\n".join(lines) + "\n", mkdir_parents=True)
        return path


def read_report(path: str | Path) -> tuple[dict, list[Skip]]:
    """Read a report written by ``SkipReport.write``: (header, skips)."""
    lines = Path(path).read_text().splitlines()
    header = json.loads(lines[0])
    return header, [Skip(**json.loads(line)) for line in lines[1:] if line.strip()]
