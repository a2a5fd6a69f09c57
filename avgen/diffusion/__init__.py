"""Flow matching (path, target, loss, t-sampling), ODE samplers, guidance, and conditioning tasks."""

from avgen.diffusion.flow import (
    FlowConfig,
    FlowLoss,
    flow_loss,
    interpolate,
    per_sample_flow_loss,
    sample_timesteps,
    training_loss,
)
from avgen.diffusion.generate import generate_tokens
from avgen.diffusion.guidance import apply_guidance, guided_velocity, modality_scale
from avgen.diffusion.samplers import ORDERS, SAMPLERS, get_sampler, hold_given, ordered, schedule
from avgen.diffusion.tasks import TASKS, given_mask, initial_state

__all__ = [
    "ORDERS",
    "SAMPLERS",
    "TASKS",
    "FlowConfig",
    "FlowLoss",
    "apply_guidance",
    "flow_loss",
    "generate_tokens",
    "get_sampler",
    "given_mask",
    "guided_velocity",
    "hold_given",
    "initial_state",
    "interpolate",
    "modality_scale",
    "ordered",
    "per_sample_flow_loss",
    "sample_timesteps",
    "schedule",
    "training_loss",
]
