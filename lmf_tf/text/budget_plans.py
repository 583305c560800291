"""Plans for a byte budget on the study's data sets: which parts are compressed, to what sizes (issue: ship under a
byte budget). A plan is an architecture (a bag of embeddings with an optional hidden layer, or an LSTM), the words
kept in the vocabulary (the rest map to `<unk>`), the embedding rank k reached by the online swap from the 50-d
GloVe vectors (Acharya et al. 2019, §3.1; folded into the next layer for export), the hidden or LSTM units, and the
TFLite kind. Its deployable bytes are predicted by `lmf_tf.budget.predict_parts` on the plan's architecture,
without training. No data is read here.
"""

import dataclasses

import numpy as np

from lmf_tf.compression import sizes as budget
from lmf_tf.compression.rank import max_useful_rank
from lmf_tf.errors import ConfigError

ARCHITECTURES = ('bag', 'lstm')
FULL_WIDTH = 50  # the vendored GloVe 6B 50d
RANKS = (8, 10, 12, 16, 24, 32, None)  # None: the full width, no swap; rank 4 lost half of CLINC150's accuracy
KERNEL_RANKS = (None, 16)  # the dense and LSTM matrices whole, or at rank 16 (`lmf_tf.LowRankKernels`)
# By data set, chosen on dev (docs/budget.md): on CLINC150 no plan with factorized matrices beat on dev, at any
# budget of the front, the plan of whole matrices chosen without them, and its two more candidates per budget cost
# more than 3 default training runs at 90 KB and above; the search there keeps the matrices whole.
KERNEL_RANKS_BY_DATASET = {'clinc150': (None,)}
UNITS = {'bag': (0, 16, 32, 64, 128, 256), 'lstm': (32, 64, 150)}
WORDS_STEP = 250


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
  """One way to ship a classifier: `words` kept, embedding rank `rank` (None: 50), `units`, TFLite `kind`, and the
  rank of its dense and LSTM matrices (`kernel_rank`; None: whole), swapped online with the embedding. With
  `hashed`, `words` counts hash buckets: every word is read as 2 + FarmHash(word) % words
  (`input_pipeline.HashedVocabulary`) and no vocabulary file ships. With `oov_buckets` b, the words not kept are
  hashed into b rows after the kept words' instead of all reading as `<unk>` (`input_pipeline.Vocabulary`)."""
  architecture: str
  words: int
  rank: int | None
  units: int
  kind: str = 'int8'
  kernel_rank: int | None = None
  hashed: bool = False
  oov_buckets: int = 0

  def __post_init__(self):
    if self.hashed and self.oov_buckets:
      raise ConfigError(f'a plan whose words are all hashed has no out-of-vocabulary buckets (oov_buckets='
                        f'{self.oov_buckets})')

  @property
  def rows(self):
    """The embedding's rows: padding, `<unk>`, the words (or hash buckets) and the out-of-vocabulary buckets."""
    return self.words + 2 + self.oov_buckets

  @property
  def width(self):
    """The embedding width shipped: the rank after the swap (folded), or the full width."""
    return self.rank or FULL_WIDTH

  @property
  def name(self):
    kernels = f'-r{self.kernel_rank}' if self.kernel_rank else ''
    words = f'h{self.words}' if self.hashed else f'w{self.words}' + (f'o{self.oov_buckets}' if self.oov_buckets else '')
    return f'{self.architecture}-{words}-k{self.rank or FULL_WIDTH}-u{self.units}{kernels}-{self.kind}'


def build_classifier(plan, num_classes, width=None, l2=1e-5, dropout=0.3):
  """The plan's plain Keras classifier, `int32[batch, T]` ids (0 = padding) -> `float32[batch, classes]`.

  bag: Embedding(rows, width) -> masked average -> [Dense(units, relu)] -> softmax (a DAN, Iyyer et al.
  2015, with one hidden layer or none); lstm: Embedding -> LSTM(units) -> softmax. `width` defaults to the
  plan's shipped width; training builds it at the full width and swaps to the rank.
  """
  import keras  # pylint: disable=g-import-not-at-top  (plans are made without TensorFlow)
  regularizer = keras.regularizers.L2(l2) if l2 else None
  ids = keras.Input((None,), dtype='int32', name='token_ids')
  x = keras.layers.Embedding(plan.rows, width or plan.width, mask_zero=True, name='words')(ids)
  x = keras.layers.Dropout(dropout, name='embedding_dropout')(x)
  if plan.architecture == 'lstm':
    x = keras.layers.LSTM(plan.units, kernel_regularizer=regularizer, name='lstm')(x)
  else:
    x = keras.layers.GlobalAveragePooling1D(name='average')(x)
    if plan.units:
      x = keras.layers.Dense(plan.units, activation='relu', kernel_regularizer=regularizer, name='hidden')(x)
  x = keras.layers.Dropout(dropout, name='sentence_dropout')(x)
  probs = keras.layers.Dense(num_classes, activation='softmax', kernel_regularizer=regularizer, name='classifier')(x)
  return keras.Model(ids, probs, name=f'{plan.architecture}_budget')


def weight_shapes(plan, num_classes):
  """{part: [weight shapes]} of the plan's shipped classifier: `build_classifier` trained at the full width, its
  embedding swapped to the plan's rank and folded into the next layer (`lmf_tf.fold_projection`), and with a
  `kernel_rank` each dense and LSTM matrix that rank shrinks factorized (`lmf_tf.LowRankKernels`' default)."""
  return _shipped(plan, num_classes)[0]


def _shipped(plan, num_classes):
  """(`weight_shapes`, {part: how many of its matrices ship factorized})."""
  k, units = plan.rank, plan.units
  shapes = {'embedding': [(plan.rows, plan.width)], 'recurrent': [], 'hidden': [], 'output': []}
  factored = dict.fromkeys(shapes, 0)

  def add(part, rows, columns, folded_to=None):
    matrix = _matrix_shapes(rows, columns, plan.kernel_rank, folded_to)
    shapes[part] += matrix
    factored[part] += len(matrix) == 2

  first = 'recurrent' if plan.architecture == 'lstm' else ('hidden' if units else 'output')
  add(first, FULL_WIDTH, {'recurrent': 4 * units, 'hidden': units, 'output': num_classes}[first], folded_to=k)
  if plan.architecture == 'lstm':
    add('recurrent', units, 4 * units)
    shapes['recurrent'].append((4 * units,))
  elif units:
    shapes['hidden'].append((units,))
  if first != 'output':
    add('output', units, num_classes)
  shapes['output'].append((num_classes,))
  return shapes, factored


def _matrix_shapes(rows, columns, kernel_rank, folded_to=None):
  """The shipped shapes of a rows x columns matrix: whole, or its factors where `kernel_rank` shrinks it; the
  embedding's projection (`folded_to` = k) folded into its rows, and the factors made whole again where k x columns
  is the smaller (`export._collapses`)."""
  factored = kernel_rank is not None and kernel_rank <= max_useful_rank(rows, columns)
  rows = folded_to or rows
  if factored and not (folded_to and folded_to * columns <= kernel_rank * (folded_to + columns)):
    return [(rows, kernel_rank), (kernel_rank, columns)]
  return [(rows, columns)]


def predicted_bytes(plan, num_classes, vocabulary_bytes):
  """`lmf_tf.compression.sizes.predict_parts` of the plan as shipped (rank folded), computed from its weights'
  shapes without building it (`tests/test_budget.py` checks the two agree); `vocabulary_bytes(words)` gives the
  compressed vocabulary file's bytes (none ships for a `hashed` plan)."""
  shapes, factored = _shipped(plan, num_classes)
  # The plan's table is a top-level Embedding: with kind 'int4_embeddings' it ships packed (`budget.packed_layers`).
  parts = {part: sum(budget.weight_bytes(s, plan.kind, part == 'embedding') for s in shapes.get(part, []))
           for part in budget.PARTS}
  is_lstm = plan.architecture == 'lstm'
  layers = (budget.OVERHEAD_BYTES['base'] + budget.OVERHEAD_BYTES['embedding'] +
            budget.OVERHEAD_BYTES['dense'] * (1 + bool(plan.architecture == 'bag' and plan.units)) +
            budget.OVERHEAD_BYTES['lstm'] * is_lstm + budget.OVERHEAD_BYTES['lstm_factors'] * factored['recurrent'] +
            budget.OVERHEAD_BYTES['factors'] * (factored['hidden'] + factored['output']))
  parts['overhead'] = layers + sum(budget.quantization_bytes(s, plan.kind, part == 'embedding')
                                   for part, group in shapes.items() for s in group)
  parts['vocabulary'] = 0 if plan.hashed else int(vocabulary_bytes(plan.words))
  parts['total'] = sum(parts[p] for p in budget.PARTS)
  return parts


def candidate_plans(budget_bytes, num_classes, max_words, vocabulary_bytes, kernel_ranks=KERNEL_RANKS, hashed=False):
  """For each architecture, rank, units and kernel rank: the plan with the most words (a multiple of `WORDS_STEP`,
  at most `max_words`; with `hashed`, hash buckets, at most as many as the training split has words) whose
  predicted deployable bytes fit `budget_bytes`, for each of `kernel_ranks`. Sorted by architecture, rank, units,
  kernel rank."""
  plans = []
  for architecture in ARCHITECTURES:
    for rank in RANKS:
      for units in UNITS[architecture]:
        for kernel_rank in kernel_ranks:
          empty = BudgetPlan(architecture, 0, rank, units, kernel_rank=kernel_rank, hashed=hashed)
          plan = _most_words(empty, budget_bytes, num_classes, max_words, vocabulary_bytes)
          if plan is not None and (not kernel_rank or any(_shipped(plan, num_classes)[1].values())):
            plans.append(plan)  # a kernel rank that leaves every matrix whole once shipped is no other plan
  return plans


def _most_words(plan, budget_bytes, num_classes, max_words, vocabulary_bytes):
  """The plan with the most words that fits (bytes grow with words: a bisection over multiples of the step)."""
  def fits(words):
    return predicted_bytes(dataclasses.replace(plan, words=words), num_classes, vocabulary_bytes)['total'] <= budget_bytes
  steps = [w for w in range(WORDS_STEP, max_words, WORDS_STEP)] + [max_words]
  if not fits(steps[0]):
    return None
  low, high = 0, len(steps) - 1
  while low < high:
    mid = (low + high + 1) // 2
    low, high = (mid, high) if fits(steps[mid]) else (low, mid - 1)
  return dataclasses.replace(plan, words=steps[low])


def int4_twin(plan, budget_bytes, num_classes, vocabulary_bytes):
  """`plan` with its table shipped as int4 (kind 'int4_embeddings': half its int8 bytes, `lmf_tf.quantization`)
  and the bytes that frees spent on rank: the same words, architecture, units and kernel rank at the largest rank of
  `RANKS` (or the full width) that fits `budget_bytes`; None where no rank above the plan's fits. Rank rather than
  words: on SST-2 at 180 KB rank 30 for 16 won on dev over 3 seeds, on CLINC150 at 45 KB 1,000 more words lost
  (docs/budget.md)."""
  def fits(rank):
    twin = dataclasses.replace(plan, rank=rank, kind='int4_embeddings')
    return predicted_bytes(twin, num_classes, vocabulary_bytes)['total'] <= budget_bytes
  wider = [r for r in RANKS if (r or FULL_WIDTH) > plan.width and fits(r)]
  if not wider:
    return None
  return dataclasses.replace(plan, rank=max(wider, key=lambda r: r or FULL_WIDTH), kind='int4_embeddings')


def smallest_plan_bytes(num_classes, vocabulary_bytes, hashed=False):
  """The smallest deployable bytes any plan reaches: a bag of the fewest words (or hash buckets) at the smallest
  rank, no hidden layer."""
  plan = BudgetPlan('bag', WORDS_STEP, min(r for r in RANKS if r), 0, hashed=hashed)
  return predicted_bytes(plan, num_classes, vocabulary_bytes)['total']


def check_budget(budget_bytes, num_classes, vocabulary_bytes, name='--budget_bytes', hashed=False):
  """Refuses a budget below the smallest plan, naming the smallest reachable size."""
  smallest = smallest_plan_bytes(num_classes, vocabulary_bytes, hashed)
  if budget_bytes < smallest:
    words = f'{WORDS_STEP} hash buckets' if hashed else f'{WORDS_STEP} words'
    raise ConfigError(f'{name}={budget_bytes:,} bytes is below the smallest plan ({smallest:,} bytes: a bag of '
                      f'{words} at rank {min(r for r in RANKS if r)}, int8'
                      f'{"" if hashed else ", with its vocabulary"})')
  return smallest


# The search's candidates: the best plan of each group by `_capacity` (the prior; dev decides among them). The
# first four keep their matrices whole; the last two factorize them (`kernel_rank`, `lmf_tf.LowRankKernels`).
CANDIDATE_GROUPS = (('lstm', lambda plan: not plan.kernel_rank),
                    ('bag', lambda plan: plan.units == 0 and not plan.kernel_rank),
                    ('bag', lambda plan: 0 < plan.units <= 32 and not plan.kernel_rank),
                    ('bag', lambda plan: plan.units >= 64 and not plan.kernel_rank),
                    ('lstm', lambda plan: bool(plan.kernel_rank)), ('bag', lambda plan: bool(plan.kernel_rank)))


def _capacity(plan):
  """The prior: words kept, times the width up to 16 (a word beyond rank 16 gains little), then width, units."""
  return plan.words * (min(plan.width, 16) + 1), plan.width, plan.units


def choose_candidates(plans):
  """The plans the search trains: for each of `CANDIDATE_GROUPS` (an LSTM; a bag without a hidden layer, with a
  small one, with a large one; an LSTM and a bag with factorized matrices) its plan of the largest `_capacity`;
  groups without a plan that keeps at least half the words of the broadest plan (for the groups of whole matrices,
  of the broadest of those) are left out (an LSTM's fixed overhead leaves it few words at 20 KB)."""
  if not plans:
    return []
  most_words = {False: max([p.words for p in plans if not p.kernel_rank], default=0),
                True: max(p.words for p in plans)}
  chosen = []
  for architecture, in_group in CANDIDATE_GROUPS:
    pool = [p for p in plans if p.architecture == architecture and in_group(p)
            and 2 * p.words >= most_words[bool(p.kernel_rank)]]
    if pool:
      chosen.append(max(pool, key=_capacity))
  return chosen


def words_by_frequency(counts):
  """Words ordered by training frequency, then alphabetically (`np.ndarray` of str)."""
  return np.asarray(sorted(counts, key=lambda w: (-counts[w], w)))
