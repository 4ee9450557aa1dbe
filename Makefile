# codeclab developer entry points. Quick start: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# torch first, pinned: on the project machines pip finds this CPU build on local disk;
# installing it before anything that depends on torch keeps pip from pulling a CUDA build.
TORCH_SPEC ?= torch==2.13.0

# Debian packages some features need: ffmpeg (libopus, libcodec2) for the classic baselines, libopus0
# for `bench loss` (opuslib loads it), and the
# demo corpus's sources. `make test` installs them when it can (root + apt-get); tests that need a
# missing one skip and say why.
CORPUS_DEPS := espeak-ng flite festival festvox-kallpc16k fluidsynth fluid-soundfont-gm sonic-pi-samples \
	klettres-data asterisk-core-sounds-en-wav
# Real human speech for training and held-out evaluation (codeclab corpus speech; see docs/training.md).
SPEECH_DEPS := asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 \
	asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 ktuberling-data klettres-data
# Chromium and its driver: the browser test of `bench recon --html`'s page.
BROWSER_DEPS := chromium chromium-driver
SYSDEPS ?= ffmpeg libopus0 $(CORPUS_DEPS) $(BROWSER_DEPS)

.PHONY: demo test test-slow test-all venv dev clean sysdeps corpus speech-corpus weights weights-12hz teacher v3-weights

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	touch $@

# torchcrepe (pitch metrics) goes in with --no-deps: its metadata pulls torchaudio, whose PyPI build does
# not import with the CPU torch here, and transformers imports any installed torchaudio (peer codecs then
# fail). A torchaudio that does not import is removed.
TORCHCREPE_SPEC ?= torchcrepe==0.0.24
# resemblyzer (speaker similarity) goes in with --no-deps too: its metadata pulls `webrtcvad`, whose module
# needs pkg_resources (setuptools < 81); the bench extra brings webrtcvad-wheels, the same module without it.
RESEMBLYZER_SPEC ?= resemblyzer==0.1.4

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps "$(TORCHCREPE_SPEC)" "$(RESEMBLYZER_SPEC)"
	$(PY) -c "import torchaudio" >/dev/null 2>&1 || $(PIP) uninstall -y -q torchaudio >/dev/null 2>&1 || true
	touch $@

venv: $(VENV)/.base
dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(VENV)/bin/codeclab demo --out demo-out

sysdeps:
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1) || \
		echo "warning: could not install$$missing; the tests that need them will skip"; \
	else echo "note: install$$missing (apt-get) for the tests that need them; they skip otherwise"; fi

test: sysdeps $(VENV)/.dev
	$(PY) -m mypy
	$(PY) -m pytest -q

corpus: sysdeps $(VENV)/.base
	$(PIP) install -q -e ".[corpus]"
	$(VENV)/bin/codeclab corpus demo --out demo-corpus

speech-corpus: $(VENV)/.base
	$(MAKE) sysdeps SYSDEPS="ffmpeg $(SPEECH_DEPS)"
	$(VENV)/bin/codeclab corpus speech --out speech-corpus

# The offline phone teacher of the bundled codec's recipe (recipes/codeclab-16k-speech.json):
# trained on 240 espeak-ng utterances with exact alignments, in 12 languages (about 7 minutes on 2 cores;
# docs/semantic.md).
teacher: sysdeps $(VENV)/.base
	$(PIP) install -q -e ".[corpus]"
	$(VENV)/bin/codeclab corpus demo --out teacher-corpus --espeak 240 --flite 0 --festival 0 --klettres 0 \
		--asterisk 0 --music 0 --samples 0
	$(VENV)/bin/codeclab teacher train --data teacher-corpus/manifest.jsonl --out teacher --steps 1500

# Reproduce the bundled codeclab-16k-speech weights (preset version 4) and their entropy model (at most
# 100 minutes of training on 2 CPU cores, after the teacher and the corpus; see the model card). The run
# is warm-started from the version-3 weights, taken from git history (commit V3_COMMIT).
WEIGHTS_RUN ?= runs/codeclab-16k-speech
WEIGHTS_DIR := codeclab/catalog/weights/codeclab-16k-speech
V3_COMMIT := a16f0eb
v3-weights:
	mkdir -p runs/v3-weights
	git archive $(V3_COMMIT) $(WEIGHTS_DIR) | tar -x -C runs/v3-weights
weights: speech-corpus teacher v3-weights $(VENV)/.dev
	$(VENV)/bin/codeclab train --recipe recipes/codeclab-16k-speech.json --out $(WEIGHTS_RUN)
	$(VENV)/bin/codeclab bundle $(WEIGHTS_RUN)/codec --preset codeclab-16k-speech
	$(PY) benchmarks/learning_curve.py $(WEIGHTS_RUN) --out docs/images/codeclab-16k-speech-curve.png
	rm -rf $(WEIGHTS_RUN)/tok-train $(WEIGHTS_RUN)/tok-heldout
	$(VENV)/bin/codeclab tokenize speech-corpus/train.jsonl --out $(WEIGHTS_RUN)/tok-train --codec codeclab-16k-speech
	$(VENV)/bin/codeclab tokenize speech-corpus/heldout.jsonl --out $(WEIGHTS_RUN)/tok-heldout --codec codeclab-16k-speech
	$(VENV)/bin/codeclab entropy $(WEIGHTS_RUN)/tok-train --weights $(WEIGHTS_DIR) --heldout $(WEIGHTS_RUN)/tok-heldout

# Reproduce the bundled codeclab-16k-12hz weights (the 12.5 Hz preset for LLMs; 92 minutes of training
# measured on 2 CPU cores, at most 110; see docs/models/codeclab-16k-12hz.md).
WEIGHTS_12HZ_RUN ?= runs/codeclab-16k-12hz
weights-12hz: speech-corpus $(VENV)/.dev
	$(VENV)/bin/codeclab train --recipe recipes/codeclab-16k-12hz.json --out $(WEIGHTS_12HZ_RUN)
	$(VENV)/bin/codeclab bundle $(WEIGHTS_12HZ_RUN)/codec --preset codeclab-16k-12hz
	$(PY) benchmarks/learning_curve.py $(WEIGHTS_12HZ_RUN) --out docs/images/codeclab-16k-12hz-curve.png \
		--title "codeclab-16k-12hz: held-out speech during training"

test-slow: $(VENV)/.dev
	$(PY) -m pytest -q -m slow

test-all: $(VENV)/.dev
	$(PY) -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) demo-out demo-corpus build *.egg-info .pytest_cache
