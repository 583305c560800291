# lmf_tf: every target creates the virtual environment on first use. `make` alone lists the targets.
# The README and docs/ spell out each command these targets run.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

# Run settings (override on the command line: make sst2-lstm R=90 SEED=2 ARGS="--batch_size=32 --epochs=10").
# Per-model defaults (epochs, learning rate, L2, word dropout) live in lmf_tf/text/config.py; with R the
# embedding is compressed after half of the epochs. Your runs write runs/ and checkpoints/, which git ignores;
# the reproduction targets write results/.
R ?=
SEED ?= 1
SEEDS ?= 1
VOCABULARY ?= file
BUDGET ?=
ARGS ?=
DATASET ?= clinc150
CONFIG ?= small
PTB_SEEDS ?= 1,2
FULL_SVD_UP_TO ?= 100000
TEST_WORKERS ?= 2
JOBS ?= $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),1)
compress_flags = $(if $(filter-out 0,$(1)),--reduction=$(1),)

.DEFAULT_GOAL := help
.PHONY: help venv test test-slow sst2-lstm sst2-dan intent-lstm intent-dan sst2-budget intent-budget budget-front budget-front-hashed example reproduce reproduce-quick tables \
	table-sst2 recovery recovery-tables frequency-ranks dan-tuning bench-pipeline bench-inference analysis bench-scale ptb-lm \
	ptb-table multi-worker-demo bench-callback clean-venv

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## (.*)/  make \1\t\2/' | expand -t 28

venv: $(STAMP) ## create .venv with the pinned packages (requirements.lock)

$(STAMP): requirements.lock setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -e '.[study,dev]'  # the library, the study and the tests
	touch $@

test: $(STAMP) ## the test suite without the tests marked slow, on TEST_WORKERS processes (docs/tests.md)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

test-slow: $(STAMP) ## the slow tests: training runs, killed and resumed runs, distributed training, the wheel (CI too)
	$(PY) -m pytest -q -m slow tests

sst2-lstm: $(STAMP) ## train the SST-2 LSTM; R=90 compresses its embedding online (SEED, ARGS)
	$(PY) scripts/train.py --dataset=sst2 --model=lstm --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

sst2-dan: $(STAMP) ## train the SST-2 DAN-RAND; R=90 compresses online (SEED, ARGS)
	$(PY) scripts/train.py --dataset=sst2 --model=dan --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

intent-lstm: $(STAMP) ## train the LSTM on DATASET=clinc150|snips|atis|banking77 (R, SEED, ARGS)
	$(PY) scripts/train.py --dataset=$(DATASET) --model=lstm --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

intent-dan: $(STAMP) ## train DAN-RAND on DATASET (R, SEED, ARGS)
	$(PY) scripts/train.py --dataset=$(DATASET) --model=dan --seed=$(SEED) $(call compress_flags,$(R)) $(ARGS)

sst2-budget: $(STAMP) ## the most accurate SST-2 model whose shipped files fit BUDGET (e.g. BUDGET=90KB; SEEDS; VOCABULARY=hashed: no file)
	$(PY) scripts/budget.py --dataset=sst2 --budget=$(BUDGET) --seeds=$(SEEDS) --vocabulary=$(VOCABULARY) $(ARGS)

intent-budget: $(STAMP) ## the same for DATASET=clinc150 within BUDGET (e.g. BUDGET=45KB)
	$(PY) scripts/budget.py --dataset=$(DATASET) --budget=$(BUDGET) --seeds=$(SEEDS) --vocabulary=$(VOCABULARY) $(ARGS)

budget-front: $(STAMP) ## SST-2 and CLINC150 at 20 KB .. 1 MB, 3 seeds (make -j2 budget-front; resumable)
	$(PY) scripts/budget_front.py --jobs=$(JOBS) $(ARGS)

budget-front-hashed: $(STAMP) ## the same, words hashed (no vocabulary file), at 20, 45, 90 KB (resumable)
	$(PY) scripts/budget_front.py --vocabulary=hashed --budgets=20KB,45KB,90KB --jobs=$(JOBS) $(ARGS)

example: $(STAMP) ## the library on your own Keras model: examples/own_model.py (about 25 s)
	$(PY) examples/own_model.py

reproduce: $(STAMP) ## the paper's Tables 1-3 and Figures 2-3, 3 seeds (make -j2: two runs at a time; hours)
	$(PY) scripts/reproduce.py --jobs=$(JOBS)
	$(MAKE) --no-print-directory tables

reproduce-quick: $(STAMP) ## Tables 1-2 with 1 seed and R in {50, 90} (under an hour)
	$(PY) scripts/reproduce.py --quick --jobs=$(JOBS)

tables: $(STAMP) ## rebuild Tables 1-3 and the figures from results/ (QUICK=1 for the quick plan)
	$(PY) scripts/deployable_sizes.py --results_dir=results --output=results/deployable_sizes.json
	$(PY) scripts/reproduce.py --tables_only $(if $(QUICK),--quick,)

table-sst2: $(STAMP) ## the per-R summary of the SST-2 runs in results/ (results/sst2_summary.md)
	$(PY) scripts/summarize.py --results_dir=results --pattern='sst2_*_R*_seed*.json' --output=results/sst2_summary

recovery: $(STAMP) ## the recovery ablation beyond the paper (make -j2 recovery; about 3 h on 2 cores)
	$(PY) scripts/recovery.py --jobs=$(JOBS)

recovery-tables: $(STAMP) ## rebuild results/recovery.{csv,md}, its figure, and Tables 2-3 with the chosen recipes
	$(PY) scripts/recovery.py --tables_only
	$(PY) scripts/reproduce.py --tables_only

frequency-ranks: $(STAMP) ## frequent words at higher rank against one rank: LSTM, R = 90, SST-2 and CLINC150 (make -j2)
	$(PY) scripts/frequency_ranks.py --jobs=$(JOBS) --results_dir=results/frequency_ranks \
	  --workdir=checkpoints/frequency_ranks --output=results/frequency_ranks.md

dan-tuning: $(STAMP) ## uncompressed DAN-RAND variants chosen on dev (make -j2 dan-tuning)
	$(PY) scripts/dan_tuning.py --jobs=$(JOBS)

bench-pipeline: $(STAMP) ## bucketed tf.data against padded arrays, one LSTM
	$(PY) scripts/bench_pipeline.py --model=lstm --epochs=4 --output=results/bench_pipeline.json $(ARGS)

bench-inference: $(STAMP) ## Table 4: TFLite size, accuracy and time (trains the missing seed-1 checkpoints first)
	$(PY) scripts/bench_inference.py --models=lstm,dan --repeats=7 --jobs=$(JOBS) --output=results/table4 $(BENCH_ARGS)
	$(MAKE) --no-print-directory analysis

bench-callback: $(STAMP) ## the cost of OnlineCompression in a user's fit, with and without it side by side (2 min)
	$(PY) scripts/bench_callback.py --rounds=10 --output=results/bench_callback.json

multi-worker-demo: $(STAMP) ## two workers of a multi-worker run on this machine against one process (3 runs, minutes)
	$(PY) scripts/multi_worker_demo.py $(ARGS)

analysis: $(STAMP) ## paper §4: parameters, bytes and FLOPs of the real models, beside Table 4
	$(PY) scripts/analyze.py --models=lstm,dan --table4=results/table4.json --output=results/analysis

ptb-lm: $(STAMP) ## the PTB LSTM language model, CONFIG=small|medium|large (SEED, ARGS)
	$(PY) scripts/train_lm.py --config=$(CONFIG) --seed=$(SEED) $(ARGS)

ptb-table: $(STAMP) ## PTB compression: low-rank, pruning, quantization, TT, PTB_SEEDS=1,2 (make -j2; hours)
	$(PY) scripts/ptb_table.py --config=$(CONFIG) --seeds=$(PTB_SEEDS) --jobs=$(JOBS)

bench-scale: $(STAMP) ## the swap at V = 100k and 1M words, d = 300 (needs about 10 GB up to FULL_SVD_UP_TO)
	$(PY) scripts/bench_scale.py --vocab_sizes=100000,1000000 --dim=300 --reduction=90 \
	  --full_svd_up_to=$(FULL_SVD_UP_TO) --output=results/bench_scale.json

clean-venv: ## delete .venv
	rm -rf $(VENV)
