"""FAD and FVD of a set of clips against a folder of real clips, with networks from local weights only.

:class:`DistributionScorer` loads VGGish and/or I3D once (:func:`avgen.metrics.weights.load_network`),
embeds each generated clip as it is scored (:meth:`DistributionScorer.add`) and the reference folder once
(:meth:`DistributionScorer.add_reference`), then compares the two embedding sets
(:meth:`DistributionScorer.results`): Fréchet distance of Gaussian fits plus KID as a bonus (named KAD / KVD).

FAD pools every 0.96 s VGGish example of every clip (as the FAD reference does); FVD takes one 400-d I3D
logits vector per clip (its first 16 frames). A clip too short for a network is skipped for that metric and
counted; a clip without audio (or video) is skipped for FAD (or FVD).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avgen.errors import AVGenError, ClipError, MediaError
from avgen.io import read_av
from avgen.metrics.distribution import FeatureStats, frechet_distance_stats, kernel_distance
from avgen.metrics.i3d import embed_video
from avgen.metrics.vggish import embed_audio, pca_postprocess
from avgen.metrics.weights import load_network, load_pca

REFERENCE_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".wav", ".flac", ".ogg")
DEFINITIONS = {
    "fad": "Fréchet distance between Gaussian fits of VGGish embeddings (128-d, no PCA, no final ReLU; one "
    "per 0.96 s of 16 kHz mono audio) of the clips and of --reference",
    "fvd": "Fréchet distance between Gaussian fits of I3D Kinetics-400 logits (400-d; first 16 frames of each "
    "clip resized to 224x224, scaled to [-1, 1]) of the clips and of --reference",
}


def find_reference(folder: Path) -> list[Path]:
    """Media files (video or audio) in ``folder`` and its subfolders, sorted; MediaError when there are none."""
    if not folder.is_dir():
        raise MediaError(
            folder, "is not a folder; --reference takes a folder of real clips to compare against"
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in REFERENCE_SUFFIXES)
    if not files:
        raise MediaError(folder, f"holds no media files ({', '.join(REFERENCE_SUFFIXES)}) to compare against")
    return files


class _EmbeddingSet:
    """Embeddings of one side (generated or reference) for one metric."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.clips = 0
        self.skipped: dict[str, int] = {}

    def add(self, rows: np.ndarray) -> None:
        self.rows.append(rows)
        self.clips += 1

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def matrix(self, dim: int) -> np.ndarray:
        return np.concatenate(self.rows) if self.rows else np.zeros((0, dim))  # (N, D)


class DistributionScorer:
    """Embeds clips with the networks whose local weights were given and scores FAD / FVD.

    fad_weights / fvd_weights: local VGGish / I3D weight files (None leaves that metric out).
    fad_pca: optional VGGish PCA parameters; FAD then uses the PCA'd, un-quantised embeddings.
    """

    def __init__(
        self,
        *,
        fad_weights: str | Path | None = None,
        fvd_weights: str | Path | None = None,
        fad_pca: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        if fad_weights is None and fvd_weights is None:
            raise ClipError("DistributionScorer: give fad_weights and/or fvd_weights (local files)")
        self.networks: dict[str, Any] = {}
        self.weights: dict[str, str] = {}
        if fad_weights is not None:
            self.networks["fad"] = load_network(fad_weights, "vggish", device=device)
            self.weights["fad"] = str(fad_weights)
        if fvd_weights is not None:
            self.networks["fvd"] = load_network(fvd_weights, "i3d", device=device)
            self.weights["fvd"] = str(fvd_weights)
        self.pca = load_pca(fad_pca) if fad_pca is not None and fad_weights is not None else None
        self.sets = {m: {"generated": _EmbeddingSet(), "reference": _EmbeddingSet()} for m in self.networks}

    @property
    def metrics(self) -> list[str]:
        return list(self.networks)

    def _dim(self, metric: str) -> int:
        net = self.networks[metric]
        return net.config.embedding_dim if metric == "fad" else net.config.num_classes

    def embed(self, clip: Any) -> dict[str, np.ndarray | str]:
        """Per metric: (N, D) float32 embeddings of ``clip`` (an AVClip), or the reason it was skipped."""
        out: dict[str, np.ndarray | str] = {}
        for metric, net in self.networks.items():
            try:
                if metric == "fad":
                    if clip.audio is None:
                        raise ClipError("no audio")
                    rows = embed_audio(net, clip.audio, clip.sample_rate)
                    if rows.shape[0] == 0:
                        raise ClipError("audio shorter than one 0.96 s VGGish example")
                    if self.pca is not None:
                        rows = pca_postprocess(rows, *self.pca, quantize=False)
                else:
                    if clip.video is None:
                        raise ClipError("no video")
                    rows = embed_video(net, clip.video)
                out[metric] = rows
            except ClipError as e:
                out[metric] = str(e)
        return out

    def _record(self, side: str, embedded: dict[str, np.ndarray | str]) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for metric, rows in embedded.items():
            target = self.sets[metric][side]
            if isinstance(rows, str):
                target.skip(rows)
                info[metric] = {"skipped": rows}
            else:
                target.add(rows)
                info[metric] = {"embeddings": int(rows.shape[0])}
        return info

    def add(self, clip: Any) -> dict[str, Any]:
        """Embed one generated clip; returns what was embedded or why not, per metric (for the report)."""
        return self._record("generated", self.embed(clip))

    def add_reference(self, files: list[Path]) -> list[dict[str, Any]]:
        """Read and embed every reference file; unreadable files are recorded, not raised."""
        entries = []
        for path in files:
            entry: dict[str, Any] = {"file": str(path)}
            try:
                entry.update(self._record("reference", self.embed(read_av(path, streams="any"))))
            except AVGenError as e:
                for sides in self.sets.values():
                    sides["reference"].skip("unreadable")
                entry["error"] = str(e)
            entries.append(entry)
        return entries

    def results(self, *, kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict[str, dict[str, Any]]:
        """Per metric: the Fréchet distance (None with fewer than 2 embeddings a side), KID and counts."""
        out: dict[str, dict[str, Any]] = {}
        for metric, sides in self.sets.items():
            dim = self._dim(metric)
            gen, ref = sides["generated"].matrix(dim), sides["reference"].matrix(dim)
            config = self.networks[metric].config
            entry: dict[str, Any] = {
                "value": None,
                "weights": self.weights[metric],
                "standard_network": config.is_standard,
                "dims": dim,
                "generated": {
                    "clips": sides["generated"].clips,
                    "embeddings": int(gen.shape[0]),
                    "skipped": sides["generated"].skipped,
                },
                "reference": {
                    "clips": sides["reference"].clips,
                    "embeddings": int(ref.shape[0]),
                    "skipped": sides["reference"].skipped,
                },
            }
            if metric == "fad":
                entry["pca"] = self.pca is not None
            if min(gen.shape[0], ref.shape[0]) < 2:
                entry["note"] = "needs at least 2 embeddings on each side"
            else:
                entry["value"] = frechet_distance_stats(FeatureStats.of(gen), FeatureStats.of(ref))
                kid_mean, kid_std = kernel_distance(
                    gen, ref, subsets=kid_subsets, subset_size=kid_subset_size
                )
                entry["kid"] = {"mean": kid_mean, "std": kid_std, "name": "KAD" if metric == "fad" else "KVD"}
                if min(gen.shape[0], ref.shape[0]) <= dim:
                    entry["note"] = (
                        f"fewer embeddings than dimensions ({dim}): the covariance is singular and the "
                        "value is biased upward; compare only numbers computed with the same counts"
                    )
            out[metric] = entry
        return out
