"""Training: one loop (``loop.py``, settings in ``loop_config.py``) for the codecs and the joint model, with
checkpoints, EMA, torch.distributed and the run log beside it; codec training (``codec*.py``, the
discriminator), the joint-model task (``joint*.py``, its latents in ``latents.py``), LoRA, and the
``avgen train`` recipes. Modules are imported on use."""
