#!/usr/bin/env bash
# Evaluations of tiny_joint_v10 quoted in runs/README.md (session 20, 2-core CPU): the test split and val at
# guidance 4, and runs/val_losses/v10.json (runs/evaluate_candidate.sh, steps 1-3).
set -euo pipefail
bash runs/evaluate_candidate.sh tiny_joint_v10
