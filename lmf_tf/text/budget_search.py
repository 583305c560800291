"""Choose on dev the plan that ships most accurately within a byte budget (issue: ship under a byte budget).

The search, for one data set and budget: every architecture, rank, units and kernel rank gets the most words that
fit (`budget_plans.candidate_plans`, predicted bytes, no training); `budget_plans.choose_candidates` keeps one per
group (an LSTM, a bag without a hidden layer, with a small one, with a large one; on SST-2 also an LSTM and a bag
with factorized matrices); each is trained once (seed 1) and shipped. The best of them on dev is then trained as
its int4 twin (`budget_plans.int4_twin`: the table in 4 bits, the bytes freed spent on rank), and at the small end
(below `DISTILL_BELOW_BYTES`) once more with distillation from the data set's teacher (`TEACHERS`, a large plan's
shipped files, Hinton et al. 2015). The candidate whose shipped file is most accurate on dev is the plan, and its
other seeds are trained. A plan's runs are shared by every budget that chooses it. Its cost is up to six training
runs of small models per budget, one more for the int4 twin (at the small end, up to four, the twin, the distilled
one and the teacher's, shared by the budgets), plus the chosen plan's other seeds; budgets that share candidates
share their runs.
"""

import dataclasses
import os
import re

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError
from lmf_tf.text import budget_plans

# The small end (docs/budget.md): below this budget the search adds one candidate, the candidate most accurate on
# dev trained again with distillation from the data set's teacher (`Trial.teacher`), with this weight of the labels
# (chosen on dev: CLINC150's 45 KB plan, 3 seeds, dev 85.90 at 0.5 against 85.76 at 0.2).
DISTILL_BELOW_BYTES = 50_000
DISTILL_ALPHA = 0.5
# The teacher of each data set: its most accurate plan on dev among the front's seed-1 candidates (results/budget_runs).
TEACHERS = {'sst2': 'lstm-w13825-k50-u150-int8', 'clinc150': 'bag-w5863-k32-u0-int8'}

_PLAN_NAME = re.compile(r'^(bag|lstm)-(w|h)(\d+)(?:o(\d+))?-k(\d+)-u(\d+)(?:-r(\d+))?-'
                        r'(int8|int4_embeddings|float16|float32)$')


def plan_from_name(name, flag='--plan'):
  """The `BudgetPlan` of a name such as `bag-w1000-k8-u64-int8`, with its dense and LSTM matrices at rank 16
  `bag-w1000-k8-u64-r16-int8`, with its words hashed into 1,000 buckets `bag-h1000-k8-u64-int8`, or with the
  words it does not keep hashed into 64 out-of-vocabulary buckets `bag-w1000o64-k8-u64-int8` (`BudgetPlan.name`)."""
  match = _PLAN_NAME.match(name or '')
  if not match:
    raise ConfigError(f'{flag}={name!r}: expected <bag|lstm>-<w<words>[o<oov buckets>]|h<hash buckets>>-k<rank>-'
                      'u<units>[-r<kernel rank>]-<int8|int4_embeddings|float16|float32>, e.g. bag-w1000-k8-u64-int8')
  architecture, hashed, words, oov_buckets, rank, units, kernel_rank, kind = match.groups()
  if hashed == 'h' and oov_buckets:
    raise ConfigError(f'{flag}={name!r}: a plan whose words are all hashed (h<buckets>) has no out-of-vocabulary '
                      'buckets (o<buckets>)')
  if int(words) == 0 or oov_buckets == '0' or int(rank) == 0:
    raise ConfigError(f'{flag}={name!r}: words, hash buckets, out-of-vocabulary buckets and rank are at least 1')
  rank = None if int(rank) == budget_plans.FULL_WIDTH else int(rank)
  return budget_plans.BudgetPlan(architecture, int(words), rank, int(units), kind,
                                 int(kernel_rank) if kernel_rank else None, hashed == 'h', int(oov_buckets or 0))


@dataclasses.dataclass(frozen=True)
class Trial:
  """Settings of one plan's run that differ from the data set's (`budget_training.train_plan`): `epochs`,
  `dropout`, and `distill_alpha`: distillation from the model before the swap (`lmf_tf.Distillation(alpha, 2.0)`),
  or with `teacher` (the name of a plan, e.g. a larger budget's) from the shipped files of that plan's seed-1 run,
  all through training (`budget_training.teacher_targets`): one teacher for every seed, as a user has one large
  model. None keeps the default. The search sets a teacher at the small end (`distilled_candidate`)."""
  epochs: int | None = None
  dropout: float | None = None
  distill_alpha: float | None = None
  teacher: str | None = None

  def __post_init__(self):
    if self.teacher is not None and self.distill_alpha is None:
      raise ConfigError(f'a teacher ({self.teacher}) needs distill_alpha, the weight of the labels')
    teacher = None if self.teacher is None else plan_from_name(self.teacher, '--teacher')
    if teacher is not None and (teacher.hashed or teacher.oov_buckets):
      raise ConfigError(f'--teacher={self.teacher}: a teacher ships a vocabulary file (a w<words> plan without '
                        'o<buckets>), which its soft targets are read through; hashed words or buckets are not '
                        'supported')

  @property
  def suffix(self):
    """`_e<epochs>`, `_d<dropout>`, `_kd<alpha>`, `_from-<teacher>` for the settings it sets."""
    values = ''.join(f'_{tag}{value:g}' for tag, value in (('e', self.epochs), ('d', self.dropout),
                                                            ('kd', self.distill_alpha)) if value is not None)
    return values + (f'_from-{self.teacher}' if self.teacher else '')

  def teacher_dir(self, workdir, dataset):
    """Where the teacher's shipped files are (its seed-1 run's folder under `workdir`), or None."""
    if self.teacher is None:
      return None
    return os.path.join(workdir, run_name(dataset, plan_from_name(self.teacher, '--teacher'), 1))


def run_name(dataset, plan, seed, trial=Trial()):
  """`<data set>_<plan>_seed<s>`, with the trial's settings before the seed (`Trial.suffix`)."""
  return f'{dataset}_{plan.name}{trial.suffix}_seed{seed}'


def run_path(results_dir, dataset, plan, seed, trial=Trial()):
  return os.path.join(results_dir, run_name(dataset, plan, seed, trial) + '.json')


def read_run(results_dir, dataset, plan, seed, trial=Trial()):
  path = run_path(results_dir, dataset, plan, seed, trial)
  return io_utils.read_json(path, 'budget run') if os.path.exists(path) else None


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A plan the search trains, with the settings of its `trial` (none for most; distillation at the small end)."""
  plan: budget_plans.BudgetPlan
  trial: Trial = Trial()

  @property
  def name(self):
    """The plan's name, then what the trial sets: `bag-w2000-k10-u64-int8_kd0.5_from-bag-w5863-k32-u0-int8`."""
    return self.plan.name + self.trial.suffix

  def read_run(self, results_dir, dataset, seed):
    return read_run(results_dir, dataset, self.plan, seed, self.trial)

  def teacher(self):
    """The teacher's plan, or None."""
    return None if self.trial.teacher is None else plan_from_name(self.trial.teacher)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """A budget's candidate plans (trained first, on seed 1) and the int4 twin of each (`budget_plans.int4_twin`,
  None where no larger rank fits), of which the search trains the one of the best plan on dev."""
  plans: tuple
  int4_twins: dict  # plan name -> BudgetPlan or None


def search_candidates(data, budget_bytes, name='--budget', hashed=False):
  """The `SearchSpace` of `budget_bytes` on `data` (`budget_training.BudgetData`), of plans whose words are
  `hashed` into buckets (no vocabulary file) or kept in a vocabulary file; a budget below the smallest plan is
  refused, naming the smallest reachable size."""
  budget_plans.check_budget(budget_bytes, data.num_classes, data.vocabulary_bytes, name, hashed)
  kernel_ranks = budget_plans.KERNEL_RANKS_BY_DATASET.get(data.name, budget_plans.KERNEL_RANKS)
  plans = budget_plans.candidate_plans(budget_bytes, data.num_classes, len(data.words_by_frequency),
                                       data.vocabulary_bytes, kernel_ranks, hashed)
  chosen = tuple(budget_plans.choose_candidates(plans))
  return SearchSpace(chosen, {p.name: budget_plans.int4_twin(p, budget_bytes, data.num_classes, data.vocabulary_bytes)
                              for p in chosen})


def teacher_plan(dataset):
  """The data set's teacher (`TEACHERS`), or None."""
  return plan_from_name(TEACHERS[dataset]) if dataset in TEACHERS else None


def distils(dataset, budget_bytes):
  """Whether the search of `budget_bytes` adds a distilled candidate: below `DISTILL_BELOW_BYTES`, with a teacher."""
  return budget_bytes < DISTILL_BELOW_BYTES and dataset in TEACHERS


def distilled_candidate(results_dir, dataset, budget_bytes, plans):
  """Where the search `distils`, the plan of `plans` most accurate on dev with distillation from the data set's
  teacher; else None, and None while a plan's seed-1 run is missing."""
  if not distils(dataset, budget_bytes):
    return None
  best = chosen_plan(results_dir, dataset, [Candidate(plan) for plan in plans])
  return None if best is None else Candidate(best.plan, Trial(distill_alpha=DISTILL_ALPHA, teacher=TEACHERS[dataset]))


def int4_candidate(results_dir, dataset, space):
  """The int4 twin of the plan of `space` most accurate on dev (`SearchSpace`), or None: while a plan's seed-1 run
  is missing, or where that plan has no twin."""
  best = chosen_plan(results_dir, dataset, [Candidate(plan) for plan in space.plans])
  twin = None if best is None else space.int4_twins.get(best.plan.name)
  return None if twin is None else Candidate(twin)


def derived_candidates(results_dir, dataset, budget_bytes, space):
  """The candidates made from the best plan on dev once the plans have run: its int4 twin, and where the budget
  `distils` the plan distilled from the teacher."""
  derived = (int4_candidate(results_dir, dataset, space),
             distilled_candidate(results_dir, dataset, budget_bytes, space.plans))
  return [c for c in derived if c is not None]


def budget_candidates(results_dir, dataset, budget_bytes, space):
  """The `Candidate`s a budget chooses among: the plans of `space`, and those derived from the best of them."""
  return [Candidate(plan) for plan in space.plans] + derived_candidates(results_dir, dataset, budget_bytes, space)


def chosen_plan(results_dir, dataset, candidates):
  """The `Candidate` whose seed-1 shipped file is most accurate on dev (fewer bytes break a tie), or None while one
  has not run."""
  runs = [candidate.read_run(results_dir, dataset, 1) for candidate in candidates]
  if any(run is None for run in runs):
    return None
  best = max(range(len(runs)), key=lambda i: (runs[i]['dev_accuracy'], -runs[i]['deployable_bytes']))
  return candidates[best]


def train_and_record(plan, data, seed, results_dir, workdir, trial=Trial()):
  """Trains one plan and seed (`budget_training.train_plan`, with the data set's settings but those `trial` sets)
  and writes its results JSON, unless it exists. A trial's teacher whose JSON is there but whose shipped files are
  not (a fresh clone has `results/` but not the workdir) is trained again first (`ensure_teacher_files`)."""
  from lmf_tf.text import budget_training  # pylint: disable=g-import-not-at-top  (TensorFlow)
  existing = read_run(results_dir, data.name, plan, seed, trial)
  if existing is not None:
    return existing
  ensure_teacher_files(data, trial, results_dir, workdir)
  name = run_name(data.name, plan, seed, trial)
  result = budget_training.train_plan(plan, data, seed, os.path.join(workdir, name), trial.epochs, trial.dropout,
                                      trial.distill_alpha, trial.teacher_dir(workdir, data.name))
  io_utils.write_json_atomic(run_path(results_dir, data.name, plan, seed, trial), result)
  return result


def ensure_teacher_files(data, trial, results_dir, workdir):
  """The shipped files of `trial`'s teacher (its seed-1 run under `workdir`), trained when missing; its results
  JSON is written only where there is none."""
  from lmf_tf.text import budget_training  # pylint: disable=g-import-not-at-top  (TensorFlow)
  teacher_dir = trial.teacher_dir(workdir, data.name)
  if teacher_dir is None or all(os.path.exists(os.path.join(teacher_dir, name)) for name in budget_training.SHIPPED):
    return
  teacher = plan_from_name(trial.teacher, '--teacher')
  result = budget_training.train_plan(teacher, data, 1, teacher_dir)
  if read_run(results_dir, data.name, teacher, 1) is None:
    io_utils.write_json_atomic(run_path(results_dir, data.name, teacher, 1), result)


@dataclasses.dataclass
class BudgetOutcome:
  """A budget search's result: the `Candidate`s, the one chosen on dev (`plan`) and its runs."""
  budget_bytes: int
  candidates: list
  plan: object
  runs: list


def search(data, budget_bytes, seeds, results_dir, workdir, echo=print, hashed=False):
  """The whole budget run for one data set in this process: the candidates on seed 1 (below `DISTILL_BELOW_BYTES`,
  then the best of them distilled from the teacher, whose seed-1 run is trained first if missing), the choice on
  dev, the chosen candidate's other `seeds`. Runs already in `results_dir` are reused. With `hashed`, every
  candidate hashes its words into buckets and ships no vocabulary file (`search_candidates`)."""
  def record(candidate, seed):
    if candidate.teacher() is not None:
      train_and_record(candidate.teacher(), data, 1, results_dir, workdir)
    return train_and_record(candidate.plan, data, seed, results_dir, workdir, candidate.trial)

  def weigh(candidate):  # its seed 1, said once
    run = record(candidate, 1)
    echo(f'candidate {candidate.name}: dev {run["dev_accuracy"]:.4f} (LiteRT), {run["deployable_bytes"]:,} bytes, '
         f'{run["seconds"]:.0f} s')

  space = search_candidates(data, budget_bytes, hashed=hashed)
  for plan in space.plans:
    weigh(Candidate(plan))
  candidates = budget_candidates(results_dir, data.name, budget_bytes, space)
  for derived in candidates[len(space.plans):]:
    weigh(derived)
  choice = chosen_plan(results_dir, data.name, candidates)
  return BudgetOutcome(budget_bytes, candidates, choice, [record(choice, seed) for seed in seeds])
