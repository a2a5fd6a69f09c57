"""A BERT encoder (all-MiniLM-L6-v2 by default) in plain torch: token ids + padding mask -> token states.

The computation of ``transformers.BertModel``'s ``last_hidden_state`` without transformers: word + position
+ token-type (type 0) embeddings, then post-LayerNorm layers of attention (``scaled_dot_product_attention``,
padding keys masked out) and an erf-GELU MLP. Weights come from a Hugging Face BERT state dict, either a
folder's ``model.safetensors`` or an int8 pack (``avgen.model.text_pack``), both dequantized to float32.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from avgen.atomic import save_safetensors
from avgen.config import to_dict
from avgen.errors import CheckpointError, ConfigError, ShapeError
from avgen.weights import load_tensors, read_json, write_json

# Hugging Face BERT tensors that are not part of the encoder's states (pooler, heads, index buffers)
HF_IGNORED = re.compile(r"^(bert\.)?(pooler\.|embeddings\.position_ids$|embeddings\.token_type_ids$)|^cls\.")

# (Hugging Face BERT name prefix, this module's), {i} the layer index
_NAMES = (
    ("embeddings.word_embeddings.", "word_embeddings."),
    ("embeddings.position_embeddings.", "position_embeddings."),
    ("embeddings.token_type_embeddings.", "token_type_embeddings."),
    ("embeddings.LayerNorm.", "embed_norm."),
    ("encoder.layer.{i}.attention.self.query.", "layers.{i}.query."),
    ("encoder.layer.{i}.attention.self.key.", "layers.{i}.key."),
    ("encoder.layer.{i}.attention.self.value.", "layers.{i}.value."),
    ("encoder.layer.{i}.attention.output.dense.", "layers.{i}.attn_out."),
    ("encoder.layer.{i}.attention.output.LayerNorm.", "layers.{i}.attn_norm."),
    ("encoder.layer.{i}.intermediate.dense.", "layers.{i}.ffn_in."),
    ("encoder.layer.{i}.output.dense.", "layers.{i}.ffn_out."),
    ("encoder.layer.{i}.output.LayerNorm.", "layers.{i}.ffn_norm."),
)


def _prefix_regex(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix).replace(re.escape("{i}"), r"(?P<i>\d+)"))


_TO_OURS = [(_prefix_regex(hf), ours) for hf, ours in _NAMES]
_TO_HF = [(_prefix_regex(ours), hf) for hf, ours in _NAMES]


def _rename(name: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, prefix in table:
        if m := pattern.match(name):
            return prefix.format(i=m.groupdict().get("i")) + name[m.end() :]
    return name  # unknown: the strict load names it


def from_hf_name(name: str) -> str:
    """``encoder.layer.3.attention.self.query.weight`` -> ``layers.3.query.weight`` (a ``bert.`` prefix,
    as in BertForMaskedLM checkpoints, is dropped)."""
    return _rename(name.removeprefix("bert."), _TO_OURS)


def to_hf_name(name: str) -> str:
    """The inverse of ``from_hf_name``."""
    return _rename(name, _TO_HF)


@dataclasses.dataclass(frozen=True)
class MiniLMConfig:
    """BERT sizes under transformers' ``BertConfig`` names (all-MiniLM-L6-v2's values by default)."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        sizes = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        for name in sizes:
            if getattr(self, name) < 1:
                raise ConfigError(f"MiniLMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"MiniLMConfig.hidden_size {self.hidden_size} must be a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if not self.layer_norm_eps > 0:
            raise ConfigError(f"MiniLMConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps}")

    def to_hf(self) -> dict[str, Any]:
        """A transformers ``config.json`` of this encoder (a ``BertModel``)."""
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_act": "gelu",
            "position_embedding_type": "absolute",
            **to_dict(self),
        }


# transformers' BertConfig defaults, for keys a config.json leaves out
_HF_DEFAULTS = dataclasses.asdict(MiniLMConfig(hidden_size=768, num_hidden_layers=12, intermediate_size=3072))


def hf_config(data: dict[str, Any], where: str) -> MiniLMConfig:
    """The ``MiniLMConfig`` of a transformers BERT ``config.json``; any other architecture, activation or
    position embedding raises CheckpointError naming ``where``."""
    checks = {
        "model_type": ("bert",),
        "hidden_act": ("gelu",),
        "position_embedding_type": ("absolute", None),
        "is_decoder": (False, None),
    }
    for key, allowed in checks.items():
        if data.get(key) not in allowed:
            raise CheckpointError(
                f"{where}: {key} is {data.get(key)!r}; the plain-torch encoder runs BERT with "
                f"{key} {allowed[0]!r} (load other encoders with TextEncoder.from_pretrained)"
            )
    values = {k: data.get(k, default) for k, default in _HF_DEFAULTS.items()}
    try:
        return MiniLMConfig(**values)
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from e


class _Linear(nn.Linear):
    def reset_parameters(self) -> None:  # always loaded from a file: skip the random init
        pass


class _Embedding(nn.Embedding):
    def reset_parameters(self) -> None:  # always loaded from a file: skip the random init
        pass


class MiniLMLayer(nn.Module):
    """One post-LayerNorm BERT layer: ``x = norm(x + attn(x)); x = norm(x + mlp(x))``."""

    def __init__(self, config: MiniLMConfig) -> None:
        super().__init__()
        d, eps = config.hidden_size, config.layer_norm_eps
        self.heads = config.num_attention_heads
        self.query, self.key, self.value = _Linear(d, d), _Linear(d, d), _Linear(d, d)
        self.attn_out = _Linear(d, d)
        self.attn_norm = nn.LayerNorm(d, eps=eps)
        self.ffn_in = _Linear(d, config.intermediate_size)
        self.ffn_out = _Linear(config.intermediate_size, d)
        self.ffn_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """``x (B, L, D)``, ``keep (B, 1, 1, L)`` bool (True: a key to attend to) or None -> ``(B, L, D)``."""
        q, k, v = (
            rearrange(p(x), "b l (h d) -> b h l d", h=self.heads) for p in (self.query, self.key, self.value)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        x = self.attn_norm(x + self.attn_out(rearrange(a, "b h l d -> b l (h d)")))
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


class MiniLM(nn.Module):
    """BERT encoder: ``model(input_ids (B, L) int, attention_mask (B, L) bool/int, 1 = token)`` ->
    ``(B, L, hidden_size)`` float. States at padded positions are computed (they attend to the real tokens)
    and left for the caller to mask. ``name_or_path``: the folder it was loaded from ("" if built).
    Built with uninitialised weights: load them (``from_hf_state``, ``from_pretrained``)."""

    def __init__(self, config: MiniLMConfig) -> None:
        super().__init__()
        self.config = config
        self.name_or_path = ""
        d = config.hidden_size
        self.word_embeddings = _Embedding(config.vocab_size, d)
        self.position_embeddings = _Embedding(config.max_position_embeddings, d)
        self.token_type_embeddings = _Embedding(config.type_vocab_size, d)
        self.embed_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(MiniLMLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        length = input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ShapeError(
                f"{length} tokens; the encoder has {self.config.max_position_embeddings} positions"
            )
        positions = torch.arange(length, device=input_ids.device)
        # the order of transformers' BertEmbeddings: (word + token type) + position
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        x = self.embed_norm(x + self.position_embeddings(positions))  # (B, L, D)
        keep = None if attention_mask is None else rearrange(attention_mask.bool(), "b l -> b 1 1 l")
        for layer in self.layers:
            x = layer(x, keep)
        return x

    @classmethod
    def from_hf_state(
        cls, config: MiniLMConfig, state: dict[str, Tensor], *, where: str | Path, name_or_path: str = ""
    ) -> MiniLM:
        """A frozen float32 encoder holding the tensors of a Hugging Face BERT state dict (pooler and heads
        are dropped; values are not checked); a missing, unexpected or misshapen tensor raises
        CheckpointError naming ``where``."""
        model = cls(config)
        ours = {from_hf_name(k): v.float() for k, v in state.items() if not HF_IGNORED.match(k)}
        try:
            model.load_state_dict(ours, strict=True, assign=True)
        except RuntimeError as e:
            raise CheckpointError(
                f"{where}: not the BERT encoder its config describes ({e}); rebuild it from its source"
            ) from e
        model.name_or_path = str(name_or_path)
        return model.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> MiniLM:
        """Load a Hugging Face BERT folder (``config.json`` + ``model.safetensors``) in float32."""
        folder = Path(folder)
        config = hf_config(read_json(folder / "config.json"), where=str(folder / "config.json"))
        weights = folder / "model.safetensors"
        return cls.from_hf_state(config, load_tensors(weights), where=weights, name_or_path=str(folder))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write a Hugging Face BERT folder (``config.json`` + float32 ``model.safetensors``), which
        ``from_pretrained`` and transformers' ``BertModel`` both load."""
        target = Path(directory)
        state = {to_hf_name(k): v.detach().float().cpu() for k, v in self.state_dict().items()}
        save_safetensors(state, target / "model.safetensors", metadata={"format": "pt"}, mkdir_parents=True)
        write_json(target / "config.json", self.config.to_hf())
