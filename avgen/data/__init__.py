"""Datasets: ``synth`` (procedural audio-visual scenes with ground truth) and real video folders.

Nothing heavy is imported here; import the submodule you need, e.g. ``avgen.data.synth``.
"""
