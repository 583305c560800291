# lmf_tf: every target creates the virtual environment on first use.
# The README spells out each command these targets run.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONPATH := $(CURDIR)

# Run settings (override on the command line: make sst2-lstm R=90 SEED=2 ARGS="--batch_size=32 --epochs=10").
# Per-model defaults (epochs, learning rate, L2, word dropout) live in lmf_tf/config.py; with R the embedding is
# compressed after half of the epochs.
R ?=
SEED ?= 1
ARGS ?=
SEEDS ?= 1 2 3
MEASURE_R ?= 0 50 90
SST2_RUNS := $(foreach m,lstm dan,$(foreach r,$(MEASURE_R),$(foreach s,$(SEEDS),results/sst2_$(m)_R$(r)_seed$(s).json)))
run_r = $(word 1,$(subst _seed, ,$(1)))
run_seed = $(word 2,$(subst _seed, ,$(1)))

compress_flags = $(if $(filter-out 0,$(1)),--reduction=$(1),)

.PHONY: venv test sst2-lstm sst2-dan intent-lstm intent-dan measure-sst2 table-sst2 reproduce reproduce-quick tables bench-pipeline \
	bench-inference analysis bench-scale ptb-lm ptb-table clean-venv

venv: $(STAMP)

$(STAMP): requirements.lock setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q tests

sst2-lstm: $(STAMP)
	$(PY) scripts/train.py --dataset=sst2 --model=lstm --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

sst2-dan: $(STAMP)
	$(PY) scripts/train.py --dataset=sst2 --model=dan --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

# Intent classification (issue 5): DATASET is clinc150 (default), snips, atis or banking77.
DATASET ?= clinc150

intent-lstm: $(STAMP)
	$(PY) scripts/train.py --dataset=$(DATASET) --model=lstm --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

intent-dan: $(STAMP)
	$(PY) scripts/train.py --dataset=$(DATASET) --model=dan --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

# The SST-2 measurement: LSTM and DAN-RAND, R in MEASURE_R, seeds in SEEDS. Each run is a file target, so
# finished runs are skipped and `make -j2 measure-sst2` runs two at a time.
measure-sst2: $(SST2_RUNS)
	$(MAKE) --no-print-directory table-sst2

# Dev accuracy every 100 steps as well, for the recovery curves after the swap (Figure 3).
results/sst2_lstm_R%.json: | $(STAMP)
	$(MAKE) --no-print-directory sst2-lstm R=$(call run_r,$*) SEED=$(call run_seed,$*) \
	  ARGS="--tensorboard=false --eval_every_steps=100 $(ARGS)"

results/sst2_dan_R%.json: | $(STAMP)
	$(MAKE) --no-print-directory sst2-dan R=$(call run_r,$*) SEED=$(call run_seed,$*) \
	  ARGS="--tensorboard=false --eval_every_steps=100 $(ARGS)"

table-sst2: $(STAMP)
	$(PY) scripts/summarize.py --results_dir=results --pattern='sst2_*_R*_seed*.json' \
	  --output=results/sst2_summary

# The paper's Tables 1-2 and Figures 2-3 (issue 4). `make -j2 reproduce` runs two experiments at a time (each its
# own process; make's -j is passed on as --jobs). Finished runs are skipped, so an interrupted run continues.
JOBS ?= $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),1)

reproduce: $(STAMP)
	$(PY) scripts/reproduce.py --jobs=$(JOBS)

reproduce-quick: $(STAMP)
	$(PY) scripts/reproduce.py --quick --jobs=$(JOBS)

tables: $(STAMP)
	$(PY) scripts/reproduce.py --tables_only $(if $(QUICK),--quick,)

bench-pipeline: $(STAMP)
	$(PY) scripts/bench_pipeline.py --model=lstm --epochs=4 --tensorboard=false --output=results/bench_pipeline.json $(ARGS)

# Table 4 (issue 6): TFLite size, accuracy and time of seed 1's uncompressed, online R=50/75/90, float16, int8 and
# online R=90 + int8 models; trains the missing runs first. Then the §4 analysis next to the measured numbers.
TABLE4_RUNS := $(foreach m,lstm dan,$(foreach r,0 50 75 90,results/sst2_$(m)_R$(r)_seed1.json))

bench-inference: $(TABLE4_RUNS)
	$(PY) scripts/bench_inference.py --models=lstm,dan --repeats=5 --output=results/table4 $(BENCH_ARGS)
	$(MAKE) --no-print-directory analysis

analysis: $(STAMP)
	$(PY) scripts/analyze.py --models=lstm,dan --table4=results/table4.json --output=results/analysis

# Penn Treebank language model (issue 7): CONFIG is small, medium or large.
CONFIG ?= small

ptb-lm: $(STAMP)
	$(PY) scripts/train_lm.py --config=$(CONFIG) --seed=$(SEED) $(ARGS)

# The LM compression table: the CONFIG baseline, then low-rank, pruning, quantization and TT, each fine-tuned;
# words/s timed side by side at the end. Each of PTB_SEEDS has its own baseline. Finished runs are skipped.
PTB_SEEDS ?= 1,2
ptb-table: $(STAMP)
	$(PY) scripts/ptb_table.py --config=$(CONFIG) --seeds=$(PTB_SEEDS) --jobs=$(JOBS)

# The compression step at the paper's vocabulary sizes (issue 8): V = 100k and 1M, d = 300, R = 90. The plain
# float64 SVD is timed too up to FULL_SVD_UP_TO words (at 1M it needs about 10 GB of memory).
FULL_SVD_UP_TO ?= 100000
bench-scale: $(STAMP)
	$(PY) scripts/bench_scale.py --vocab_sizes=100000,1000000 --dim=300 --reduction=90 \
	  --full_svd_up_to=$(FULL_SVD_UP_TO) --output=results/bench_scale.json

clean-venv:
	rm -rf $(VENV)
