"""Training: one loop (``loop.py``) for the codecs and the joint model, checkpoints, EMA, torch.distributed,
the joint-model task, LoRA, and the ``avgen train`` recipes. Modules are imported on use."""
