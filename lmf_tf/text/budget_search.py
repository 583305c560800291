"""Choose on dev the plan that ships most accurately within a byte budget (issue: ship under a byte budget).

The search, for one data set and budget: every architecture, rank, units and kernel rank gets the most words that
fit (`budget_plans.candidate_plans`, predicted bytes, no training); `budget_plans.choose_candidates` keeps one per
group (an LSTM, a bag without a hidden layer, with a small one, with a large one; on SST-2 also an LSTM and a bag
with factorized matrices); each is trained once (seed 1) and shipped; the one whose shipped file is most accurate
on dev is the plan, and its other seeds are trained. A plan's runs are shared by every budget that chooses it. Its
cost is up to six training runs of small models per budget, plus the chosen plan's other seeds; budgets that share
candidates share their runs.
"""

import dataclasses
import os
import re

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError
from lmf_tf.text import budget_plans

_PLAN_NAME = re.compile(r'^(bag|lstm)-w(\d+)-k(\d+)-u(\d+)(?:-r(\d+))?-(int8|float16|float32)$')


def plan_from_name(name, flag='--plan'):
  """The `BudgetPlan` of a name such as `bag-w1000-k8-u64-int8` or, with its dense and LSTM matrices at rank 16,
  `bag-w1000-k8-u64-r16-int8` (`BudgetPlan.name`)."""
  match = _PLAN_NAME.match(name or '')
  if not match:
    raise ConfigError(f'{flag}={name!r}: expected <bag|lstm>-w<words>-k<rank>-u<units>[-r<kernel rank>]-'
                      '<int8|float16|float32>, e.g. bag-w1000-k8-u64-int8')
  architecture, words, rank, units, kernel_rank, kind = match.groups()
  rank = None if int(rank) == budget_plans.FULL_WIDTH else int(rank)
  return budget_plans.BudgetPlan(architecture, int(words), rank, int(units), kind,
                                 int(kernel_rank) if kernel_rank else None)


@dataclasses.dataclass(frozen=True)
class Trial:
  """Settings of one plan's run that differ from the data set's (`budget_training.train_plan`): `epochs`,
  `dropout`, and `distill_alpha` (distillation from the model before the swap, `lmf_tf.Distillation(alpha, 2.0)`);
  None keeps the default. Trials are for docs/budget.md's measurements, the search uses none."""
  epochs: int | None = None
  dropout: float | None = None
  distill_alpha: float | None = None

  @property
  def suffix(self):
    """`_e<epochs>`, `_d<dropout>`, `_kd<alpha>` for the settings it sets."""
    return ''.join(f'_{tag}{value:g}' for tag, value in (('e', self.epochs), ('d', self.dropout),
                                                          ('kd', self.distill_alpha)) if value is not None)


def run_name(dataset, plan, seed, trial=Trial()):
  """`<data set>_<plan>_seed<s>`, with the trial's settings before the seed (`Trial.suffix`)."""
  return f'{dataset}_{plan.name}{trial.suffix}_seed{seed}'


def run_path(results_dir, dataset, plan, seed, trial=Trial()):
  return os.path.join(results_dir, run_name(dataset, plan, seed, trial) + '.json')


def read_run(results_dir, dataset, plan, seed, trial=Trial()):
  path = run_path(results_dir, dataset, plan, seed, trial)
  return io_utils.read_json(path, 'budget run') if os.path.exists(path) else None


def search_candidates(data, budget_bytes, name='--budget'):
  """The plans the search trains for `budget_bytes` on `data` (`budget_training.BudgetData`); a budget below
  the smallest plan is refused, naming the smallest reachable size."""
  budget_plans.check_budget(budget_bytes, data.num_classes, data.vocabulary_bytes, name)
  kernel_ranks = budget_plans.KERNEL_RANKS_BY_DATASET.get(data.name, budget_plans.KERNEL_RANKS)
  plans = budget_plans.candidate_plans(budget_bytes, data.num_classes, len(data.words_by_frequency),
                                       data.vocabulary_bytes, kernel_ranks)
  return budget_plans.choose_candidates(plans)


def chosen_plan(results_dir, dataset, candidates):
  """The candidate whose seed-1 shipped file is most accurate on dev, or None while one has not run."""
  runs = [read_run(results_dir, dataset, plan, 1) for plan in candidates]
  if any(run is None for run in runs):
    return None
  best = max(range(len(runs)), key=lambda i: (runs[i]['dev_accuracy'], -runs[i]['deployable_bytes']))
  return candidates[best]


def train_and_record(plan, data, seed, results_dir, workdir, trial=Trial()):
  """Trains one plan and seed (`budget_training.train_plan`, with the data set's settings but those `trial` sets)
  and writes its results JSON, unless it exists."""
  from lmf_tf.text import budget_training  # pylint: disable=g-import-not-at-top  (TensorFlow)
  existing = read_run(results_dir, data.name, plan, seed, trial)
  if existing is not None:
    return existing
  name = run_name(data.name, plan, seed, trial)
  result = budget_training.train_plan(plan, data, seed, os.path.join(workdir, name), trial.epochs, trial.dropout,
                                      trial.distill_alpha)
  io_utils.write_json_atomic(run_path(results_dir, data.name, plan, seed, trial), result)
  return result


@dataclasses.dataclass
class BudgetOutcome:
  """A budget search's result: the candidates' seed-1 runs, the plan chosen on dev and its runs."""
  budget_bytes: int
  candidates: list
  plan: object
  runs: list


def search(data, budget_bytes, seeds, results_dir, workdir, echo=print):
  """The whole budget run for one data set in this process: the candidates on seed 1, the choice on dev, the
  chosen plan's other `seeds`. Runs already in `results_dir` are reused."""
  candidates = search_candidates(data, budget_bytes)
  for plan in candidates:
    run = train_and_record(plan, data, 1, results_dir, workdir)
    echo(f'candidate {plan.name}: dev {run["dev_accuracy"]:.4f} (LiteRT), {run["deployable_bytes"]:,} bytes, '
         f'{run["seconds"]:.0f} s')
  plan = chosen_plan(results_dir, data.name, candidates)
  runs = [train_and_record(plan, data, seed, results_dir, workdir) for seed in seeds]
  return BudgetOutcome(budget_bytes, candidates, plan, runs)
