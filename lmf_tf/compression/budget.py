"""Fit a user's Keras model into a byte budget: plan the embedding rank that fits, train with the online swap,
ship the TFLite file (int8 by default; `kind`), and check the shipped bytes (issue: ship under a byte budget).

    result = lmf_tf.fit_budget(model, train, budget_bytes='90KB', epochs=6, validation_data=dev,
                               vocabulary=words)       # the words your vocabulary file ships, or vocabulary_bytes=
    open('model.tflite', 'wb').write(result.flatbuffer)

The plan (`plan_for_budget`) is an embedding rank k (or none) and, given the vocabulary, how many of its most
frequent words to keep (or, for hashed ids, `HashedIds`, how many hash buckets), whose shipped model, predicted by the size model (`sizes.predict_parts`: the model
compressed to rank k, its projection folded into the next layer, the rows of the words not kept removed, exported
as `kind`), fits the budget together with the vocabulary file; among those that fit, the one with the most words
times width (width counted up to 16). A budget below the smallest plan is refused before any training, naming the
smallest reachable size. With `candidates=n`, the best plans of n ranks are trained and the one whose shipped
file is most accurate on the validation data is returned; with several kinds (`kind=('int8', 'int4_embeddings')`)
each kind's plans are candidates. The study's search (`lmf_tf.text.budget_search`) also
changes the architecture and its widths.
"""

import dataclasses
import typing

import keras
import numpy as np
from absl import logging

from lmf_tf.compression import export, sizes, swap
from lmf_tf.compression import kernels as kernels_lib
from lmf_tf.compression import distillation as distillation_lib
from lmf_tf.compression.online import OnlineCompression
from lmf_tf.errors import BudgetExceededError, ConfigError, LmfError

CALLER = 'fit_budget'


RANKS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # the ranks the planner weighs
WORD_FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # of the vocabulary, most frequent first


@dataclasses.dataclass(frozen=True)
class HashedIds:
  """`fit_budget(vocabulary=HashedIds())`: your ids are hashed words, `reserved_ids + hash(word) % n` for the
  embedding's n = V - `reserved_ids` rows, so no vocabulary file ships. The plan then chooses how many buckets b
  (a share of n) the shipped table keeps; training and the shipped model read id i >= `reserved_ids` as
  `reserved_ids + (i - reserved_ids) % b` (`BudgetResult.model_ids`; on a device, the same rule after the hash)."""


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
  """What `plan_for_budget` chose: the words kept (the first `words` of the vocabulary; None: the model's rows as
  they are), the rank of every compressed embedding (None: not compressed), the TFLite kind, and the predicted
  deployable bytes by part (`sizes.PARTS` and 'total')."""
  budget_bytes: int
  words: int | None
  rank: int | None
  kind: str
  predicted: dict
  embeddings: tuple  # names of the embeddings compressed
  vocabulary_embedding: str | None = None  # the embedding whose rows follow the vocabulary
  reserved_ids: int = 2  # ids before the vocabulary's first word (padding, out-of-vocabulary)
  hashed: bool = False  # `words` counts hash buckets (`HashedIds`), not the most frequent words
  kernels: object = None  # a `LowRankKernels`: the dense and LSTM matrices it selects are factorized too

  def ids(self, ids, oov_id=1):
    """`ids` (NumPy or TensorFlow) as the plan trains and ships them: beyond the rows kept, the words read as
    `oov_id`, or hashed ids folded into the buckets kept; as they are when the plan keeps every row."""
    if self.words is None:
      return ids
    if isinstance(ids, np.ndarray):
      where, mod = np.where, np.mod
    else:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      where, mod = tf.where, tf.math.floormod
    first = self.reserved_ids
    if self.hashed:
      return where(ids >= first, first + mod(ids - first, self.words), ids)
    return where(ids >= self.words + first, oov_id, ids)

  def kept_rows(self):
    """The rows of the vocabulary embedding the shipped table keeps, in the model's id order."""
    return np.arange(self.words + self.reserved_ids)

  def describe(self):
    what = (f'embedding {", ".join(repr(e) for e in self.embeddings)} at rank {self.rank}' if self.rank
            else 'no embedding compressed')
    words = ('' if self.words is None else f', ids hashed into {self.words:,} buckets' if self.hashed
             else f', the {self.words:,} most frequent words')
    kernels = '' if self.kernels is None else f', dense and LSTM matrices at {_kernel_setting(self.kernels)}'
    return (f'plan for {self.budget_bytes:,} bytes: {what}{words}{kernels}, {self.kind} TFLite; predicted '
            f'{self.predicted["total"]:,} bytes')


def _kernel_setting(kernels):
  return f'rank {kernels.rank}' if kernels.rank is not None else f'R = {kernels.reduction:g}'


def _shipped_copy(model, rank, layers, kernels=None):
  """A copy of `model` as it would ship at `rank` (compressed, projection folded where it folds), with the matrices
  `kernels` selects factorized."""
  try:
    copy = keras.models.clone_model(model)
  except Exception as e:  # Keras raises ValueError / TypeError / NotImplementedError for models it cannot clone
    why = type(e).__name__ + (f': {str(e).splitlines()[0]}' if str(e).strip() else '')
    raise ConfigError(f'{CALLER}: cannot read model {model.name!r} to plan its size ({why}); give a functional or '
                      'Sequential model') from None
  if rank is None and kernels is None:
    return copy
  if rank is not None:
    swap.compress_model(copy, rank=rank, layers=layers)
  if kernels is not None:
    kernels_lib.factorize_kernels(copy, kernels_lib.select_kernels(copy, kernels, CALLER), caller=CALLER)
  return _foldable(copy)


def predicted_bytes(model, rank, kind, vocabulary_bytes, layers=None, kernels=None):
  """`sizes.predict_parts` of `model` shipped at `rank` (None: as it is) as `kind`, with the vocabulary file."""
  return sizes.predict_parts(_shipped_copy(model, rank, layers, kernels), kind, vocabulary_bytes)


def _with_rows(parts, embedding, rows, width, kind, vocabulary_bytes, packed):
  """`parts` (of the model with all its rows) with the vocabulary embedding cut to `rows` of `width` and the
  vocabulary file's bytes; `packed`: the embedding ships as an int4 table (`sizes.packed_layers`)."""
  parts = dict(parts)
  parts['embedding'] += (sizes.weight_bytes((rows, width), kind, packed)
                         - sizes.weight_bytes((embedding.input_dim, width), kind, packed))
  parts['vocabulary'] = vocabulary_bytes
  parts['total'] = sum(parts[p] for p in sizes.PARTS)
  return parts


def _vocabulary_embedding(embeddings, vocabulary, reserved_ids):
  """The embedding whose rows are the vocabulary's ids (`reserved_ids` + one per word, or the hash buckets)."""
  if isinstance(vocabulary, HashedIds):
    return max(embeddings, key=lambda e: e.input_dim)
  rows = len(vocabulary) + reserved_ids
  matching = [e for e in embeddings if e.input_dim == rows]
  if not matching:
    raise ConfigError(f'{CALLER}(vocabulary=...): {len(vocabulary):,} words and {reserved_ids} reserved ids make '
                      f'{rows:,} rows, but the embeddings have {", ".join(f"{e.input_dim:,}" for e in embeddings)}')
  return matching[0]


def _parts_by_rank(model, kind, layers, kernels=None):
  """rank -> (predicted parts (no vocabulary), names of the layers shipped as int4 tables) of `model` shipped at
  that rank, from two copies: the model as it is, and the model at a probe rank that is no dimension of any of its
  weights, whose weights with that dimension are the ones the rank sizes (the factors, the kernel the projection
  folds into). With `kernels`, a copy at each rank: whether a folded factor is made whole again
  (`export.fold_projection`) depends on the rank."""
  def sized(copy):
    return sizes.predict_parts(copy, kind), sizes.packed_layers(copy, kind)

  if kernels is not None:
    return lambda rank: sized(_shipped_copy(model, rank, layers, kernels))
  whole = _shipped_copy(model, None, layers)
  dims = {d for _, shape, _ in sizes.weight_shapes(whole) for d in shape}
  probe = next(r for r in range(2, 10_000) if r not in dims)
  copy = _shipped_copy(model, probe, layers)
  shapes, overhead = sizes.weight_shapes(copy, kind), sizes.layer_overhead_bytes(copy)
  whole_sized, copy_packed = sized(whole), sizes.packed_layers(copy, kind)  # the same for every rank

  def parts(rank):
    if rank is None:
      return whole_sized
    return sizes.parts_from_shapes([(p, tuple(rank if d == probe else d for d in s), packed)
                                    for p, s, packed in shapes], overhead, kind), copy_packed
  return parts


class _Option(typing.NamedTuple):
  """One plan the planner weighs: words kept (None: the rows as they are), embedding rank (None: whole), the
  kernels setting (None: matrices whole) and the predicted parts."""
  words: int | None
  rank: int | None
  kernels: object
  parts: dict


def _options(model, embeddings, vocabulary, vocabulary_bytes, kind, layers, reserved_ids, kernels):
  """Every `_Option` the planner weighs: each rank of `RANKS` below the width (and none), each with every fraction
  of the vocabulary when one is given, with the matrices whole and, given `kernels`, factorized."""
  width = min(e.output_dim for e in embeddings)
  ranks = [r for r in RANKS if r < width] + [None]
  target = None if vocabulary is None else _vocabulary_embedding(embeddings, vocabulary, reserved_ids)
  hashed = isinstance(vocabulary, HashedIds)
  available = target.input_dim - reserved_ids if hashed else len(vocabulary or ())
  word_counts = ([None] if vocabulary is None else
                 sorted({max(1, int(round(f * available))) for f in WORD_FRACTIONS}))
  file_bytes = {w: (vocabulary_bytes if w is None else 0 if hashed else sizes.vocabulary_bytes(vocabulary[:w]))
                for w in word_counts}
  for setting in [None] + ([kernels] if kernels is not None else []):
    parts_at = _parts_by_rank(model, kind, layers, setting)
    for rank in ranks:
      parts, packed = parts_at(rank)
      for words in word_counts:
        if words is None:
          yield _Option(words, rank, setting, dict(parts, vocabulary=file_bytes[None],
                                                   total=parts['total'] + file_bytes[None]))
        else:
          yield _Option(words, rank, setting, _with_rows(parts, target, words + reserved_ids,
                                                         rank or target.output_dim, kind, file_bytes[words],
                                                         target.name in packed))


def _capacity(option, embeddings):
  """The prior among plans that fit: words kept times the width up to 16, then the width, then the matrices whole
  rather than factorized."""
  width = option.rank or min(e.output_dim for e in embeddings)
  rows = option.words if option.words is not None else max(e.input_dim for e in embeddings)
  return rows * (min(width, 16) + 1), width, option.kernels is None


def plan_for_budget(model, budget_bytes, vocabulary=None, vocabulary_bytes=0, kind='int8', layers=None,
                    reserved_ids=2, margin_bytes=0, kernels=None):
  """The plan that fits `budget_bytes` (module docstring) with the most words times width (width counted up to 16);
  `vocabulary`, the words of ids `reserved_ids`, ... in order, most frequent first (as `TextVectorization` orders
  them), lets it keep only the most frequent words; `kernels` (a `LowRankKernels`) lets it factorize the dense and
  LSTM matrices it selects too, where the bytes that frees buy more words or rank; `margin_bytes` are kept free
  beside the prediction. Raises ConfigError naming the smallest reachable size when no plan fits."""
  return ranked_plans(model, budget_bytes, 1, vocabulary, vocabulary_bytes, kind, layers, reserved_ids,
                      margin_bytes, kernels)[0]


def ranked_plans(model, budget_bytes, count, vocabulary=None, vocabulary_bytes=0, kind='int8', layers=None,
                 reserved_ids=2, margin_bytes=0, kernels=None):
  """Up to `count` plans that fit, one per rank and form of the matrices (whole, or factorized by `kernels`), each
  with the most words that fit, best by the prior of `plan_for_budget` first: the candidates
  `fit_budget(candidates=...)` trains and chooses among on dev."""
  budget_bytes = sizes.parse_budget(budget_bytes, 'budget_bytes')
  if kernels is not None and not isinstance(kernels, kernels_lib.LowRankKernels):
    raise ConfigError(f'{CALLER}(kernels={kernels!r}): give a lmf_tf.LowRankKernels(rank=... or reduction=...)')
  embeddings = swap.find_embeddings(model, layers, CALLER)
  options = list(_options(model, embeddings, vocabulary, vocabulary_bytes, kind, layers, reserved_ids, kernels))
  fitting = [o for o in options if o.parts['total'] + margin_bytes <= budget_bytes]
  if not fitting:
    smallest = min(options, key=lambda o: o.parts['total'])
    raise ConfigError(f'{CALLER}(budget_bytes={budget_bytes:,}): below the smallest plan for model {model.name!r}, '
                      f'{smallest.parts["total"]:,} bytes (rank {smallest.rank}, {kind}'
                      f'{"" if smallest.words is None else f", {smallest.words:,} words"}'
                      f'{"" if smallest.kernels is None else ", matrices factorized"}, with '
                      f'{smallest.parts["vocabulary"]:,} bytes of vocabulary); the rest of the model does not fit')
  by_form = {}
  for option in sorted(fitting, key=lambda o: _capacity(o, embeddings), reverse=True):
    by_form.setdefault((option.rank, option.kernels is None), option)  # the first of each form is its best
  target = None if vocabulary is None else _vocabulary_embedding(embeddings, vocabulary, reserved_ids).name
  return [BudgetPlan(budget_bytes, o.words, o.rank, kind, o.parts, tuple(e.name for e in embeddings) if o.rank else (),
                     target, reserved_ids, isinstance(vocabulary, HashedIds), o.kernels)
          for o in list(by_form.values())[:count]]


@dataclasses.dataclass
class BudgetResult:
  """A budget run: the plan, the shipped `flatbuffer` and `vocabulary` (the words to write with
  `lmf_tf.budget.write_vocabulary`, in the order whose ids the flatbuffer takes; the most frequent ones when the
  plan keeps fewer), the file's measured bytes by part,
  the Keras `history`, the accuracy on `validation_data` of the shipped file run by LiteRT (None without
  validation data or LiteRT) and of the Keras `model` that was shipped; `candidates`, the results of every plan
  trained (this one among them) when `fit_budget` chose among several."""
  plan: BudgetPlan
  flatbuffer: bytes
  vocabulary: list | None
  measured: dict
  history: object
  litert_accuracy: float | None
  keras_accuracy: float | None
  model: object = None
  candidates: tuple = ()

  def model_ids(self, ids, oov_id=1):
    """`ids` of your vocabulary as `model` (the Keras model) takes them (`BudgetPlan.ids`): those of words not
    kept read as `oov_id`, or hashed ids folded into the buckets kept."""
    return self.plan.ids(np.asarray(ids), oov_id)

  @property
  def accuracy(self):
    """What candidates are chosen by: the shipped file's accuracy, or the Keras model's without LiteRT."""
    return self.keras_accuracy if self.litert_accuracy is None else self.litert_accuracy

  def table(self):
    return sizes.BudgetCheck(self.plan.budget_bytes, self.plan.predicted, self.measured).table()


def _check_arguments(budget_bytes, vocabulary, vocabulary_bytes, epochs, candidates, validation_data, kind):
  """Refuses bad arguments in one line naming them; the kinds to plan (a tuple)."""
  kinds = (kind,) if isinstance(kind, str) else tuple(kind) if isinstance(kind, (tuple, list)) else ()
  if not kinds or len(set(kinds)) != len(kinds) or any(k not in export.KINDS for k in kinds):
    raise ConfigError(f'{CALLER}(kind={kind!r}): give one of {", ".join(export.KINDS)}, or a tuple of them to '
                      'choose among, e.g. ("int8", "int4_embeddings")')
  if len(kinds) > 1 and validation_data is None:
    raise ConfigError(f'{CALLER}(kind={kind!r}): choosing among kinds needs validation_data= (dev)')
  if budget_bytes is None:
    raise ConfigError(f'{CALLER}: give budget_bytes= (e.g. 90000 or "90KB")')
  if (vocabulary is None) == (vocabulary_bytes is None):
    raise ConfigError(f'{CALLER}: give exactly one of vocabulary= (the words you ship, in id order) and '
                      'vocabulary_bytes= (0 when words are hashed)')
  for name, value in (('epochs', epochs), ('candidates', candidates)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f'{CALLER}({name}={value!r}): must be an integer >= 1')
  if candidates > 1 and validation_data is None:
    raise ConfigError(f'{CALLER}(candidates={candidates}): choosing among plans needs validation_data= (dev)')
  return kinds


def fit_budget(model, x=None, y=None, budget_bytes=None, epochs=1, validation_data=None, vocabulary=None,
               vocabulary_bytes=None, kind='int8', at_epoch=None, layers=None, reserved_ids=2, oov_id=1,
               candidates=1, kernels=None, distillation=None, callbacks=(), verbose=1, **fit_kwargs):
  """Plans, trains (`model.fit` with the online swap at `at_epoch`, default half of `epochs`), ships and checks.

  Args:
    model: a compiled functional or Sequential Keras model with one or more `keras.layers.Embedding`.
    x, y: `int[n, T]` token ids and their labels, or a `tf.data.Dataset` of (ids, labels) batches as `x`, as for
      `model.fit`.
    budget_bytes: bytes of TFLite file + vocabulary file, an int or '90KB' / '1MB' (1 KB = 1,000 bytes).
    validation_data: (ids, labels) arrays or a dataset of batches; the shipped file is run on it.
    vocabulary: the words of ids `reserved_ids`, `reserved_ids` + 1, ..., most frequent first (the order of
      `TextVectorization.get_vocabulary()[2:]`): the plan may keep only the most frequent, the others then read as
      `oov_id` in training and in the shipped model; its compressed file counts (`lmf_tf.budget.write_vocabulary`).
      Or `HashedIds()` when your ids are hashed words: no file ships and the plan chooses the buckets. Or
      `vocabulary_bytes`: the bytes of your vocabulary file as you ship it, the model's rows kept as they are.
    kind: the TFLite kind shipped ('int8', 'int4_embeddings': the embedding tables in 4 bits, the rest int8; or
      'float16', 'float32'), or a tuple of kinds to choose among, e.g. ('int8', 'int4_embeddings'): each kind's
      plans are trained as candidates (`candidates` of each) and the one most accurate on `validation_data` ships.
    candidates: how many plans to train (`ranked_plans`: the best by the prior at as many ranks), choosing the one
      whose shipped file is most accurate on `validation_data`; each costs a training run. The first trains
      `model` itself, the others a clone of it from the same initial weights, compiled the same way; `callbacks`
      see each candidate's `fit` in turn (a `ModelCheckpoint` of yours would write each one's).
    kernels: a `lmf_tf.LowRankKernels` (e.g. `LowRankKernels(rank=16)`): the plans weigh the dense and LSTM
      matrices it selects factorized at its setting (swapped with the embedding at `at_epoch`, `OnlineCompression`)
      beside whole ones; a plan factorizes them where the bytes that frees buy more words or rank, and with
      `candidates` the two forms are trained side by side. None (default): the matrices ship whole.
    distillation: a `lmf_tf.recovery.Distillation(alpha=0.5, temperature=2.0, teacher=your_trained_model)`: every
      plan trains on α CE(labels) + (1 − α) T² KL(teacher ‖ student) (`distillation.attach`), the teacher a larger
      model of yours that reads the same ids (those of words the plan does not keep read as `oov_id`, as the
      student reads them). Where it pays: at the smallest budgets (docs/budget.md). Not with `HashedIds`.
  Returns:
    `BudgetResult`. Its `flatbuffer` takes the ids of the vocabulary file's order (`result.vocabulary`); its Keras
    `model` takes your ids with those of words not kept read as `oov_id` (`result.model_ids(ids)`). Raises ConfigError before training for a bad argument or a
    budget below the smallest plan, `BudgetExceededError` if the shipped bytes exceed the budget (the size model's
    error is beyond its tolerance).
  """
  kinds = _check_arguments(budget_bytes, vocabulary, vocabulary_bytes, epochs, candidates, validation_data, kind)
  _check_integer_inputs(model)
  _check_teacher(model, distillation, vocabulary)
  plans = [plan for each in kinds for plan in _checked_plans(model, budget_bytes, vocabulary, vocabulary_bytes or 0,
                                                             each, layers, reserved_ids, candidates, kernels)]
  trainees = _trainees(model, len(plans))
  if len(plans) > 1:
    _say(f'{CALLER}: training {len(plans)} candidate plans, to ship the one most accurate on validation_data', verbose)
  if y is not None:
    fit_kwargs['y'] = y
  train = dict(x=x, epochs=epochs, validation_data=validation_data, vocabulary=vocabulary,
               at_epoch=epochs // 2 if at_epoch is None else at_epoch, oov_id=oov_id, callbacks=callbacks,
               verbose=verbose, distillation=distillation, fit_kwargs=fit_kwargs)
  results = [_train_and_ship(trainee, plan, **train) for trainee, plan in zip(trainees, plans)]
  if len(results) == 1:
    return results[0]
  best = dataclasses.replace(max(results, key=lambda r: r.accuracy), candidates=tuple(results))
  _say(f'{CALLER}: chose {_form(best.plan)} ({best.accuracy:.4f} on validation_data) among '
       + ', '.join(f'{_form(r.plan)} ({r.accuracy:.4f})' for r in results), verbose)
  return best


def _form(plan):
  return (f'rank {plan.rank}' + ('' if plan.kernels is None else f' with matrices at {_kernel_setting(plan.kernels)}')
          + f' {plan.kind}')


def _check_integer_inputs(model):
  if any('string' in str(getattr(i, 'dtype', '')) for i in getattr(model, 'inputs', None) or ()):
    raise ConfigError(f'{CALLER}: model {model.name!r} takes strings; give it the integer model behind its '
                      'TextVectorization (ids in, as examples/budget_model.py does) and ship the rule beside it '
                      '(lmf_tf.strings)')


def _check_teacher(model, distillation, vocabulary):
  """Refuses a `distillation=` that is not a Distillation with a teacher of as many outputs as `model`."""
  if distillation is None:
    return
  if not isinstance(distillation, distillation_lib.Distillation) or distillation.teacher is None:
    raise ConfigError(f'{CALLER}(distillation={distillation!r}): give a lmf_tf.recovery.Distillation(alpha=..., '
                      'teacher=your_trained_model)')
  if distillation.teacher is model:
    raise ConfigError(f'{CALLER}(distillation=...): the teacher is the model being fitted ({model.name!r}), whose '
                      'term would be zero; give a separate trained model (e.g. a larger one of yours)')
  if isinstance(vocabulary, HashedIds):
    raise ConfigError(f'{CALLER}(distillation=...): with HashedIds the plan folds the hashed ids into fewer buckets, '
                      'which the teacher was not trained on')
  teacher_loss = getattr(distillation.teacher, 'loss', None)
  if teacher_loss is not None and distillation.from_logits is None and not isinstance(teacher_loss, str):
    if distillation_lib.outputs_are_logits(distillation.teacher) != distillation_lib.outputs_are_logits(model):
      raise ConfigError(f'{CALLER}(distillation=...): the teacher {distillation.teacher.name!r} and model '
                        f'{model.name!r} were compiled with losses that read their outputs differently (logits or '
                        'probabilities); the term reads both as the model\'s: give a teacher that outputs as it does')
  teacher, ours = (_classes(m) for m in (distillation.teacher, model))
  if None not in (teacher, ours) and teacher != ours:  # a subclassed model's outputs are known once it is called
    raise ConfigError(f'{CALLER}(distillation=...): the teacher {distillation.teacher.name!r} outputs {teacher} '
                      f'classes, model {model.name!r} {ours}: give a teacher of the same classes')


def _classes(model):
  """The size of a functional or Sequential model's last output axis, or None where it is not known."""
  try:
    shape = model.output_shape
  except (AttributeError, ValueError):
    return None
  return shape[-1] if isinstance(shape, tuple) and shape else None


def _trainees(model, count):
  """The models the plans train: `model` itself, then clones made now (before any training: the swap changes
  `model`'s layers) with its initial weights, compiled with its compile config."""
  if count == 1:
    return [model]
  compile_config = model.get_compile_config()
  if compile_config is None:
    raise ConfigError(f'{CALLER}(candidates={count}): compile model {model.name!r} first (the clones are compiled '
                      'the same way)')
  clones, initial = [keras.models.clone_model(model) for _ in range(count - 1)], model.get_weights()
  for clone in clones:
    clone.set_weights(initial)
    clone.compile_from_config(compile_config)
  return [model] + clones


def _train_and_ship(model, plan, x, epochs, validation_data, vocabulary, at_epoch, oov_id, callbacks, verbose,
                    distillation, fit_kwargs):
  """One plan: `model.fit` with the swap to the plan's rank, the file shipped, measured and run; a `BudgetResult`.
  Raises BudgetExceededError if the shipped bytes exceed the budget."""
  _say(plan.describe(), verbose)
  x, validation_data = (_plan_ids(data, plan, oov_id) for data in (x, validation_data))
  swap_callbacks = []
  if plan.rank is not None or plan.kernels is not None:
    swap_callbacks.append(OnlineCompression(rank=plan.rank, at_epoch=at_epoch, layers=list(plan.embeddings) or None,
                                            kernels=plan.kernels, recovery_learning_rate='restart', verbose=verbose))
  if distillation is not None:
    distillation_lib.attach(model, distillation.teacher, distillation)
  try:
    history = model.fit(x, epochs=epochs, validation_data=validation_data,
                        callbacks=list(callbacks) + swap_callbacks, verbose=verbose, **fit_kwargs)
  finally:
    distillation_lib.detach(model)
  shipped, file_words, new_ids = _ship(model, plan, vocabulary)
  flatbuffer = export.to_tflite(shipped, plan.kind)
  measured = sizes.measure_parts(flatbuffer, shipped, plan.kind, plan.predicted['vocabulary'])
  litert, keras_accuracy = _accuracies(model, flatbuffer, validation_data, new_ids)
  result = BudgetResult(plan, flatbuffer, file_words, measured, history, litert, keras_accuracy, model)
  _say(result.table(), verbose)
  if measured['total'] > plan.budget_bytes:
    raise BudgetExceededError(f'{CALLER}: the shipped files take {measured["total"]:,} bytes, over budget_bytes='
                              f'{plan.budget_bytes:,} (predicted {plan.predicted["total"]:,})')
  return result


def _checked_plans(model, budget_bytes, vocabulary, vocabulary_bytes, kind, layers, reserved_ids, count=1,
                   kernels=None, attempts=3):
  """`ranked_plans`, each planned file exported once from a copy of the model (random weights) before any
  training: the file's operators carry the model's layer names, which the size model does not see, so where a
  copy's file is over, the plans are made again with the largest excess kept free."""
  margin = 0
  for _ in range(attempts):
    plans = ranked_plans(model, budget_bytes, count, vocabulary, vocabulary_bytes, kind, layers, reserved_ids,
                         margin, kernels)
    exported = [_exported_bytes(model, plan, layers) for plan in plans]
    over = [n - plan.predicted['total'] for n, plan in zip(exported, plans) if n > plan.budget_bytes]
    if not over:
      return plans
    margin += max(over)
  raise BudgetExceededError(f'{CALLER}(budget_bytes={plans[0].budget_bytes:,}): a planned file is over the budget '
                            f'after {attempts} plans; give a larger budget')


def _exported_bytes(model, plan, layers):
  """Deployable bytes of `plan` exported from a copy of `model` with random weights."""
  copy = _shipped_copy(model, plan.rank, layers, plan.kernels)
  rng = np.random.default_rng(0)  # non-zero: the converter drops an all-zero bias, which a trained model keeps
  copy.set_weights([rng.uniform(0.5, 1.0, w.shape).astype(w.dtype) for w in copy.get_weights()])
  if plan.words is not None:
    copy = keep_rows(copy, plan.vocabulary_embedding, plan.kept_rows())
  return len(export.to_tflite(copy, plan.kind)) + plan.predicted['vocabulary']


def _plan_ids(data, plan, oov_id):
  """`data` (ids, an (ids, labels) pair, or a dataset of such batches) with its ids as `plan` reads them."""
  if data is None or plan.words is None:
    return data
  if isinstance(data, (tuple, list)):
    return (_plan_ids(data[0], plan, oov_id),) + tuple(data[1:])
  if isinstance(data, np.ndarray):
    return plan.ids(data, oov_id).astype(data.dtype)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(data, tf.data.Dataset):
    return data.map(lambda ids, *rest: (plan.ids(ids, tf.cast(oov_id, ids.dtype)), *rest))
  raise ConfigError(f'{CALLER}: token ids must be a NumPy array, an (ids, labels) pair or a tf.data.Dataset of '
                    f'(ids, labels) batches to keep the most frequent words, not {type(data).__name__}')


def _ship(model, plan, vocabulary):
  """The model as shipped (projection folded; the vocabulary's rows kept and put in the file's alphabetical
  order), the vocabulary file's words, and the map from the trained model's ids to the shipped one's (or None)."""
  shipped = _foldable(model)
  if vocabulary is None:
    return shipped, None, None
  if plan.hashed:  # the first buckets, in their order: no vocabulary file
    return keep_rows(shipped, plan.vocabulary_embedding, plan.kept_rows()), None, None
  kept = list(vocabulary[:plan.words])
  order = np.argsort(np.asarray(kept, dtype=object), kind='stable')  # file position -> frequency position
  old_of_new = np.concatenate([np.arange(plan.reserved_ids), plan.reserved_ids + order])
  new_of_old = np.argsort(old_of_new)
  return keep_rows(shipped, plan.vocabulary_embedding, old_of_new), [kept[i] for i in order], new_of_old


def keep_rows(model, embedding_name, rows):
  """A copy of a functional or Sequential `model` whose embedding `embedding_name` holds only the rows `rows` (an
  index array: row i of the copy is row rows[i] of the model; of the V x k table when factorized); every other
  weight as it is."""
  def clone(layer):
    config = layer.get_config()
    if layer.name == embedding_name:
      config['input_dim'] = len(rows)
    return layer.__class__.from_config({k: v for k, v in config.items() if k != 'build_config'})

  copy = keras.models.clone_model(model, clone_function=clone)
  for source, layer in zip(model._flatten_layers(include_self=False), copy._flatten_layers(include_self=False)):  # pylint: disable=protected-access
    if layer.name == embedding_name:
      layer.set_weights([w[rows] if w.shape[0] == source.input_dim else w for w in source.get_weights()])
    elif source.weights and not list(source._flatten_layers(include_self=False, recursive=False)):  # pylint: disable=protected-access
      layer.set_weights(source.get_weights())
  return copy


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


def _accuracies(model, flatbuffer, validation_data, new_ids=None):
  """The shipped file's accuracy (LiteRT; ids mapped through `new_ids` when its rows were reordered) and the Keras
  model's on `validation_data`; None where not available."""
  if validation_data is None:
    return None, None
  try:
    runner = export.TfliteRunner(flatbuffer)
  except (ImportError, LmfError):  # the `litert` extra is not installed
    logging.warning('%s: ai-edge-litert is not installed, so the shipped file was not run', CALLER)
    runner = None
  right_litert = right_keras = total = 0
  for ids, labels in _labelled_batches(validation_data):
    shipped_ids = ids if new_ids is None else new_ids[ids]
    sequences = [row[:max(int(np.count_nonzero(row)), 1)] for row in shipped_ids]  # strip the padding (id 0)
    if runner is not None:
      right_litert += int(np.sum(np.argmax(runner.predict(sequences), -1) == labels))
    right_keras += int(np.sum(np.argmax(model.predict(ids, verbose=0), -1) == labels))
    total += len(labels)
  return (right_litert / total if runner is not None else None), right_keras / total
