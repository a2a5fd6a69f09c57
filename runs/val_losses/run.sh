#!/usr/bin/env bash
# Validation losses of avgen-tiny's stages under the same fixed per-task flow settings (session 19):
# 256 val clips (4 batches of 64), the same timesteps and noise for every model (VALIDATION_SEED).
# `avgen eval loss` is in avgen/train/validate.py; the v6-v10 run folders are remade by their configs
# (runs/README.md).
set -euo pipefail
L="env OMP_NUM_THREADS=2 avgen eval loss configs/tiny_joint_v8.yaml --set joint.data.val_n=256"
$L --pipeline runs/avgen-tiny-v4 --out runs/val_losses/v4.json        # `make avgen-tiny-v4`
$L --pipeline runs/tiny_joint_v6/pipeline --out runs/val_losses/v6.json
$L --pipeline runs/tiny_joint_v7/pipeline --out runs/val_losses/v7.json
$L --pipeline runs/tiny_joint_v8/pipeline --out runs/val_losses/v8.json
$L --pipeline avgen-tiny --out runs/val_losses/avgen-tiny.json         # the shipped float16 export of v8
$L --pipeline runs/tiny_joint_v9/pipeline --out runs/val_losses/v9.json
$L --pipeline runs/tiny_joint_v10/pipeline --out runs/val_losses/v10.json     # session 20
$L --pipeline runs/tiny_joint_v11/pipeline --out runs/val_losses/v11.json     # session 21
$L --pipeline runs/tiny_joint_v12/pipeline --out runs/val_losses/v12.json     # session 22
