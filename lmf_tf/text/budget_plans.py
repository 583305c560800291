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
from lmf_tf.errors import ConfigError

ARCHITECTURES = ('bag', 'lstm')
FULL_WIDTH = 50  # the vendored GloVe 6B 50d
RANKS = (8, 10, 12, 16, 24, 32, None)  # None: the full width, no swap; rank 4 lost half of CLINC150's accuracy
UNITS = {'bag': (0, 16, 32, 64, 128, 256), 'lstm': (32, 64, 150)}
WORDS_STEP = 250


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
  """One way to ship a classifier: `words` kept, embedding rank `rank` (None: 50), `units`, TFLite `kind`."""
  architecture: str
  words: int
  rank: int | None
  units: int
  kind: str = 'int8'

  @property
  def width(self):
    """The embedding width shipped: the rank after the swap (folded), or the full width."""
    return self.rank or FULL_WIDTH

  @property
  def name(self):
    return f'{self.architecture}-w{self.words}-k{self.rank or FULL_WIDTH}-u{self.units}-{self.kind}'


def build_classifier(plan, num_classes, width=None, l2=1e-5, dropout=0.3):
  """The plan's plain Keras classifier, `int32[batch, T]` ids (0 = padding) -> `float32[batch, classes]`.

  bag: Embedding(words + 2, width) -> masked average -> [Dense(units, relu)] -> softmax (a DAN, Iyyer et al.
  2015, with one hidden layer or none); lstm: Embedding -> LSTM(units) -> softmax. `width` defaults to the
  plan's shipped width; training builds it at the full width and swaps to the rank.
  """
  import keras  # pylint: disable=g-import-not-at-top  (plans are made without TensorFlow)
  regularizer = keras.regularizers.L2(l2) if l2 else None
  ids = keras.Input((None,), dtype='int32', name='token_ids')
  x = keras.layers.Embedding(plan.words + 2, width or plan.width, mask_zero=True, name='words')(ids)
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
  """{part: [weight shapes]} of the plan's shipped classifier (`build_classifier` at the plan's width)."""
  width, units = plan.width, plan.units
  shapes = {'embedding': [(plan.words + 2, width)], 'recurrent': [], 'hidden': []}
  if plan.architecture == 'lstm':
    shapes['recurrent'] = [(width, 4 * units), (units, 4 * units), (4 * units,)]
  elif units:
    shapes['hidden'] = [(width, units), (units,)]
  shapes['output'] = [(units or width, num_classes), (num_classes,)]
  return shapes


def predicted_bytes(plan, num_classes, vocabulary_bytes):
  """`lmf_tf.compression.sizes.predict_parts` of the plan as shipped (rank folded), computed from its weights'
  shapes without building it (`tests/test_budget.py` checks the two agree); `vocabulary_bytes(words)` gives the
  compressed vocabulary file's bytes."""
  shapes = weight_shapes(plan, num_classes)
  parts = {part: sum(budget.weight_bytes(s, plan.kind) for s in shapes.get(part, [])) for part in budget.PARTS}
  layers = (budget.OVERHEAD_BYTES['base'] + budget.OVERHEAD_BYTES['embedding'] +
            budget.OVERHEAD_BYTES['dense'] * (1 + bool(plan.architecture == 'bag' and plan.units)) +
            budget.OVERHEAD_BYTES['lstm'] * (plan.architecture == 'lstm'))
  parts['overhead'] = layers + sum(budget.quantization_bytes(s, plan.kind) for group in shapes.values() for s in group)
  parts['vocabulary'] = int(vocabulary_bytes(plan.words))
  parts['total'] = sum(parts[p] for p in budget.PARTS)
  return parts


def candidate_plans(budget_bytes, num_classes, max_words, vocabulary_bytes):
  """For each architecture, rank and units: the plan with the most words (a multiple of `WORDS_STEP`, at most
  `max_words`) whose predicted deployable bytes fit `budget_bytes`. Sorted by architecture, rank, units."""
  plans = []
  for architecture in ARCHITECTURES:
    for rank in RANKS:
      for units in UNITS[architecture]:
        plan = _most_words(BudgetPlan(architecture, 0, rank, units), budget_bytes, num_classes, max_words,
                           vocabulary_bytes)
        if plan is not None:
          plans.append(plan)
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


def smallest_plan_bytes(num_classes, vocabulary_bytes):
  """The smallest deployable bytes any plan reaches: a bag of the fewest words at the smallest rank, no hidden
  layer."""
  plan = BudgetPlan('bag', WORDS_STEP, min(r for r in RANKS if r), 0)
  return predicted_bytes(plan, num_classes, vocabulary_bytes)['total']


def check_budget(budget_bytes, num_classes, vocabulary_bytes, name='--budget_bytes'):
  """Refuses a budget below the smallest plan, naming the smallest reachable size."""
  smallest = smallest_plan_bytes(num_classes, vocabulary_bytes)
  if budget_bytes < smallest:
    raise ConfigError(f'{name}={budget_bytes:,} bytes is below the smallest plan ({smallest:,} bytes: a bag of '
                      f'{WORDS_STEP} words at rank {min(r for r in RANKS if r)}, int8, with its vocabulary)')
  return smallest


# The search's candidates: the best plan of each group by `_capacity` (the prior; dev decides among them).
CANDIDATE_GROUPS = (('lstm', lambda units: True), ('bag', lambda units: units == 0),
                    ('bag', lambda units: 0 < units <= 32), ('bag', lambda units: units >= 64))


def _capacity(plan):
  """The prior: words kept, times the width up to 16 (a word beyond rank 16 gains little), then width, units."""
  return plan.words * (min(plan.width, 16) + 1), plan.width, plan.units


def choose_candidates(plans):
  """The plans the search trains: for each of `CANDIDATE_GROUPS` (an LSTM; a bag without a hidden layer, with a
  small one, with a large one) its plan of the largest `_capacity`; groups without a plan that keeps at least
  half the words of the broadest plan are left out (an LSTM's fixed overhead leaves it few words at 20 KB)."""
  if not plans:
    return []
  most_words = max(p.words for p in plans)
  chosen = []
  for architecture, units_fit in CANDIDATE_GROUPS:
    pool = [p for p in plans if p.architecture == architecture and units_fit(p.units) and 2 * p.words >= most_words]
    if pool:
      chosen.append(max(pool, key=_capacity))
  return chosen


def words_by_frequency(counts):
  """Words ordered by training frequency, then alphabetically (`np.ndarray` of str)."""
  return np.asarray(sorted(counts, key=lambda w: (-counts[w], w)))
