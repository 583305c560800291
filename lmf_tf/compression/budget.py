"""Fit a user's Keras model into a byte budget: plan the embedding rank that fits, train with the online swap,
ship the int8 TFLite file, and check the shipped bytes (issue: ship under a byte budget).

    result = lmf_tf.fit_budget(model, train, budget_bytes='90KB', epochs=6, validation_data=dev,
                               vocabulary=words)       # the words your vocabulary file ships, or vocabulary_bytes=
    open('model.tflite', 'wb').write(result.flatbuffer)

The plan (`plan_for_budget`) is the largest embedding rank k whose shipped model, predicted by the size model
(`sizes.predict_parts`: the model compressed to rank k, its projection folded into the next layer, exported as
`kind`), fits the budget together with the vocabulary file; no swap when the uncompressed model fits. A budget
below the smallest plan (rank 1) is refused before any training, naming the smallest reachable size. The study's
search (`lmf_tf.text.budget_search`) also changes the vocabulary, the architecture and its widths, choosing on dev.
"""

import dataclasses

import keras
import numpy as np
from absl import logging

from lmf_tf.compression import export, sizes, swap
from lmf_tf.compression.online import OnlineCompression
from lmf_tf.errors import BudgetExceededError, ConfigError

CALLER = 'fit_budget'


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
  """What `plan_for_budget` chose: the rank of every compressed embedding (None: not compressed), the TFLite kind,
  and the predicted deployable bytes by part (`sizes.PARTS` and 'total')."""
  budget_bytes: int
  rank: int | None
  kind: str
  predicted: dict
  embeddings: tuple  # names of the embeddings compressed

  def describe(self):
    what = (f'embeddings {", ".join(self.embeddings)} at rank {self.rank}' if self.rank else 'no embedding compressed')
    return (f'plan for {self.budget_bytes:,} bytes: {what}, {self.kind} TFLite; predicted '
            f'{self.predicted["total"]:,} bytes')


def _shipped_copy(model, rank, layers):
  """A copy of `model` as it would ship at `rank` (compressed, projection folded where it folds)."""
  try:
    copy = keras.models.clone_model(model)
  except Exception as e:  # Keras raises ValueError / TypeError / NotImplementedError for models it cannot clone
    raise ConfigError(f'{CALLER}: cannot read model {model.name!r} to plan its size ({type(e).__name__}: '
                      f'{str(e).splitlines()[0] if str(e) else ""}); give a functional or Sequential model') from None
  if rank is None:
    return copy
  swap.compress_model(copy, rank=rank, layers=layers)
  try:
    return export.fold_projection(copy)
  except ConfigError:
    return copy  # the k x d projection ships as it is


def predicted_bytes(model, rank, kind, vocabulary_bytes, layers=None):
  """`sizes.predict_parts` of `model` shipped at `rank` (None: as it is) as `kind`, with the vocabulary file."""
  return sizes.predict_parts(_shipped_copy(model, rank, layers), kind, vocabulary_bytes)


def plan_for_budget(model, budget_bytes, vocabulary_bytes=0, kind='int8', layers=None):
  """The largest rank whose shipped model fits `budget_bytes` (module docstring); raises ConfigError naming the
  smallest reachable size when even rank 1 does not fit."""
  budget_bytes = sizes.parse_budget(budget_bytes, 'budget_bytes')
  embeddings = swap.find_embeddings(model, layers, CALLER)
  names = tuple(e.name for e in embeddings)
  whole = predicted_bytes(model, None, kind, vocabulary_bytes, layers)
  if whole['total'] <= budget_bytes:
    return BudgetPlan(budget_bytes, None, kind, whole, ())
  smallest = predicted_bytes(model, 1, kind, vocabulary_bytes, layers)
  if smallest['total'] > budget_bytes:
    raise ConfigError(f'{CALLER}(budget_bytes={budget_bytes:,}): below the smallest plan for model {model.name!r}, '
                      f'{smallest["total"]:,} bytes (rank 1, {kind}, with {vocabulary_bytes:,} bytes of vocabulary); '
                      'the rest of the model and the vocabulary do not fit')
  rank = _largest_fitting_rank(lambda k: predicted_bytes(model, k, kind, vocabulary_bytes, layers)['total'],
                               budget_bytes, smallest['total'], min(e.output_dim for e in embeddings) - 1)
  return BudgetPlan(budget_bytes, rank, kind, predicted_bytes(model, rank, kind, vocabulary_bytes, layers), names)


def _largest_fitting_rank(bytes_at, budget_bytes, bytes_at_1, highest):
  """The largest k in [1, highest] with bytes_at(k) <= budget_bytes, given that rank 1 fits: bytes grow about
  linearly in k, so a guess from ranks 1 and `highest`, then steps of one to the exact answer."""
  bytes_at_highest = bytes_at(highest)
  if bytes_at_highest <= budget_bytes:
    return highest
  slope = (bytes_at_highest - bytes_at_1) / max(highest - 1, 1)
  rank = max(1, min(highest - 1, 1 + int((budget_bytes - bytes_at_1) / slope)))
  while rank > 1 and bytes_at(rank) > budget_bytes:
    rank -= 1
  while rank + 1 < highest and bytes_at(rank + 1) <= budget_bytes:
    rank += 1
  return rank


@dataclasses.dataclass
class BudgetResult:
  """A budget run: the plan, the shipped `flatbuffer`, its measured bytes by part, the Keras `history`, and the
  shipped file's accuracy on `validation_data` run by LiteRT (None without validation data or LiteRT)."""
  plan: BudgetPlan
  flatbuffer: bytes
  measured: dict
  history: object
  litert_accuracy: float | None
  keras_accuracy: float | None

  def table(self):
    return sizes.BudgetCheck(self.plan.budget_bytes, self.plan.predicted, self.measured).table()


def fit_budget(model, x=None, budget_bytes=None, epochs=1, validation_data=None, vocabulary=None,
               vocabulary_bytes=None, kind='int8', at_epoch=None, layers=None, callbacks=(), verbose=1,
               **fit_kwargs):
  """Plans, trains (`model.fit` with the online swap at `at_epoch`, default half of `epochs`), ships and checks.

  Args:
    model: a compiled functional or Sequential Keras model with one or more `keras.layers.Embedding`.
    x: the training data, as for `model.fit` (with `y` in `fit_kwargs` if arrays).
    budget_bytes: bytes of TFLite file + vocabulary file, an int or '90KB' / '1MB' (1 KB = 1,000 bytes).
    validation_data: (ids, labels) arrays or a `tf.data.Dataset` of batches; the shipped file is run on it.
    vocabulary: the words of the vocabulary file you ship (its compressed bytes count, `sizes.write_vocabulary`),
      or `vocabulary_bytes`: the bytes of your vocabulary file as you ship it (0 when words are hashed).
  Returns:
    `BudgetResult`. Raises ConfigError before training for a bad argument or a budget below the smallest plan,
    `BudgetExceededError` if the shipped bytes exceed the budget (the size model's error is beyond its tolerance).
  """
  if budget_bytes is None:
    raise ConfigError(f'{CALLER}: give budget_bytes= (e.g. 90000 or "90KB")')
  if (vocabulary is None) == (vocabulary_bytes is None):
    raise ConfigError(f'{CALLER}: give exactly one of vocabulary= (the words you ship) and vocabulary_bytes= (0 '
                      'when words are hashed)')
  if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
    raise ConfigError(f'{CALLER}(epochs={epochs!r}): must be an integer >= 1')
  vocabulary_bytes = sizes.vocabulary_bytes(vocabulary) if vocabulary is not None else int(vocabulary_bytes)
  plan = plan_for_budget(model, budget_bytes, vocabulary_bytes, kind, layers)
  _say(plan.describe(), verbose)
  swap_callbacks = []
  if plan.rank is not None:
    swap_callbacks.append(OnlineCompression(rank=plan.rank, at_epoch=epochs // 2 if at_epoch is None else at_epoch,
                                            layers=list(plan.embeddings), recovery_learning_rate='restart',
                                            verbose=verbose))
  history = model.fit(x, epochs=epochs, validation_data=validation_data,
                      callbacks=list(callbacks) + swap_callbacks, verbose=verbose, **fit_kwargs)
  shipped = _foldable(model)
  flatbuffer = export.to_tflite(shipped, kind)
  measured = sizes.measure_parts(flatbuffer, shipped, kind, vocabulary_bytes)
  litert, keras_accuracy = _accuracies(model, flatbuffer, validation_data)
  result = BudgetResult(plan, flatbuffer, measured, history, litert, keras_accuracy)
  _say(result.table(), verbose)
  if measured['total'] > plan.budget_bytes:
    raise BudgetExceededError(f'{CALLER}: the shipped files take {measured["total"]:,} bytes, over budget_bytes='
                              f'{plan.budget_bytes:,} (predicted {plan.predicted["total"]:,})')
  return result


def _say(text, verbose):
  logging.info('%s', text)
  if verbose:
    print(text)


def _foldable(model):
  try:
    return export.fold_projection(model)
  except ConfigError:
    return model


def _labelled_batches(data):
  """(ids, labels) NumPy pairs from (x, y) arrays or a dataset of batches."""
  if isinstance(data, (tuple, list)):
    yield np.asarray(data[0]), np.asarray(data[1])
    return
  for ids, labels in data.as_numpy_iterator():
    yield ids, labels


def _accuracies(model, flatbuffer, validation_data):
  """The shipped file's accuracy (LiteRT) and the Keras model's on `validation_data`; None where not available."""
  if validation_data is None:
    return None, None
  try:
    runner = export.TfliteRunner(flatbuffer)
  except ImportError:
    logging.warning('%s: ai-edge-litert is not installed, so the shipped file was not run', CALLER)
    runner = None
  right_litert = right_keras = total = 0
  for ids, labels in _labelled_batches(validation_data):
    sequences = [row[:max(int(np.count_nonzero(row)), 1)] for row in ids]  # strip the padding (id 0)
    if runner is not None:
      right_litert += int(np.sum(np.argmax(runner.predict(sequences), -1) == labels))
    right_keras += int(np.sum(np.argmax(model.predict(ids, verbose=0), -1) == labels))
    total += len(labels)
  return (right_litert / total if runner is not None else None), right_keras / total
