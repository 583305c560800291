"""`OnlineCompression`: the online swap during `fit` (Acharya et al. 2019, §3.1), and the recovery options after it
(beyond the paper): a learning-rate restart, distillation from the model before the swap, gradual rank reduction,
and the swap at the dev peak. The swap itself is `swap.py`'s; see its docstring for what changes in the model.
"""

import dataclasses
import warnings

import keras
from absl import logging

from lmf_tf.compression import distillation as distillation_lib
from lmf_tf.compression import frequency as frequency_lib
from lmf_tf.compression import nested
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.factorization import SVD_METHODS
from lmf_tf.compression.kernels import LowRankKernels, factorize_kernels, select_kernels
from lmf_tf.compression.rank import check_rank_value, check_reduction_value, max_useful_rank, warn_if_fraction
from lmf_tf.compression.schedules import Restarted
from lmf_tf.compression.swap import (carry_optimizer, check_frequency, check_not_tied, checked_ranks,
                                     factorize_embeddings, retrace, select_embeddings, set_optimizer)
from lmf_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DevPeak:
  """Swap at the uncompressed model's dev peak: after the first epoch that does not improve `monitor` (a key of
  `fit`'s epoch logs, e.g. `val_accuracy` with `validation_data`) for `patience` epochs, with the weights of its
  best epoch restored; at the latest after epoch `latest_epoch` (1-based)."""
  monitor: str = 'val_accuracy'
  patience: int = 1
  latest_epoch: int | None = None
  mode: str = 'max'


class OnlineCompression(keras.callbacks.Callback):
  """Swaps the model's embeddings for their low-rank factors during `fit` (paper §3.1, online LMF), exactly once.

      model.fit(data, epochs=8, callbacks=[lmf_tf.OnlineCompression(reduction=90, at_epoch=4)])

  When: exactly one of `at_step` (after this many optimizer steps; 0 compresses before the first), `at_epoch`
  (before this 0-based epoch begins) and `at_dev_peak` (a `DevPeak`). How much: exactly one of `reduction` (R in
  percent; k = floor((1 - R/100) V d / (V + d)) per embedding) and `rank` (k), or neither when only `kernels` are
  compressed. Which: the embeddings `layers`
  selects: names or attribute paths ('token_and_position_embedding.token_emb'), a layer class or a predicate
  (`swap.select_embeddings`); by default the word embeddings, those with at least a tenth of the rows of the largest
  one (a small position table is left alone, listed in `left_alone` and in the swap's printed lines). Bad values
  are refused here, and R or k that do not fit an embedding in `on_train_begin`, before any step, naming the
  argument. A swap the run never reaches is warned about when training ends.

  The rest of the model (beyond the paper; Grachev et al. 2017, §3.3, done online):
    kernels: a `lmf_tf.LowRankKernels(rank=... or reduction=..., layers=...)`: at the first swap, the matrices it
      selects (by default those of every `keras.layers.Dense` and `keras.layers.LSTM` a factorization shrinks)
      become their rank-k factors too (`kernels.py`), and train on from there.
    frequency: a `lmf_tf.FrequencyRanks(blocks=..., counts=...)`: each embedding's k (V + d) numbers are spread over
      blocks of ids by frequency, frequent words at higher rank (GroupReduce; `frequency.py`), instead of one rank k
      (each block's SVD is a plain one: `svd_method` does not apply).

  Recovery after the swap (beyond the paper; all off by default):
    recovery_learning_rate: 'restart' starts the optimizer's schedule afresh at the swap (`schedules.Restarted`);
      a float or a `LearningRateSchedule` is used from the swap on (its step counted from the swap).
    distillation: a `distillation.Distillation`; the model just before the swap is the frozen teacher.
    gradual_factors, gradual_every_steps: e.g. (4, 2) and 500 swap to 4k, then 2k after 500 more steps, then k
      after 500 more (a rank is capped at the embedding's largest useful rank, k (V + d) < V d).

  After `fit`: `reports` holds the last swap's `CompressionReport`s, `swap_steps` the step of each swap. When
  training is split over several calls to `fit`, set `expect_more_fits = True` before all but the last, so that
  the end of a part is not warned about as a swap never reached. With
  `verbose` (the default, as Keras's `verbose`), each swap prints one line per embedding on stdout; 0: silent
  (the same line is logged at INFO level either way).
  `get_state()` / `restore_state()` and `variables` (the teacher's) let a checkpointed run resume exactly.
  """

  def __init__(self, reduction=None, rank=None, at_step=None, at_epoch=None, at_dev_peak=None, layers=None,
               kernels=None, frequency=None, svd_method='auto', recovery_learning_rate=None, distillation=None,
               gradual_factors=(), gradual_every_steps=None, verbose=1):
    super().__init__()
    name = 'OnlineCompression'
    if kernels is not None and not isinstance(kernels, LowRankKernels):
      raise ConfigError(f'{name}(kernels={kernels!r}): give a lmf_tf.LowRankKernels(rank=... or reduction=..., '
                        'layers=...)')
    if reduction is not None and rank is not None or (reduction is None and rank is None and kernels is None):
      raise ConfigError(f'{name}: give exactly one of reduction= (R, percent) and rank= (k) for the embeddings '
                        '(or neither, with kernels=, to compress only dense kernels)')
    try:
      if reduction is not None or rank is not None:
        check_reduction_value(reduction) if reduction is not None else check_rank_value(rank)
      warn_if_fraction(reduction)
    except ConfigError as e:
      raise ConfigError(f'{name}: {e}') from None
    if sum(x is not None for x in (at_step, at_epoch, at_dev_peak)) != 1:
      raise ConfigError(f'{name}: give exactly one of at_step=, at_epoch= and at_dev_peak=')
    for arg, value in (('at_step', at_step), ('at_epoch', at_epoch)):
      if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f'{name}({arg}={value!r}): must be an integer >= 0')
    if at_dev_peak is not None and not isinstance(at_dev_peak, DevPeak):
      raise ConfigError(f'{name}(at_dev_peak={at_dev_peak!r}): give a lmf_tf.recovery.DevPeak(monitor=..., '
                        'patience=...)')
    check_frequency(frequency, name)
    if frequency is not None and (reduction is None and rank is None):
      raise ConfigError(f'{name}(frequency=...): spreads the embeddings\' numbers at reduction= or rank= over '
                        'frequency blocks; give one of them')
    if frequency is not None and gradual_factors:
      raise ConfigError(f'{name}: frequency= and gradual_factors= do not go together (the blocks are made once)')
    if svd_method not in SVD_METHODS:
      raise ConfigError(f'{name}(svd_method={svd_method!r}): choose one of {", ".join(SVD_METHODS)}')
    if not (recovery_learning_rate is None or recovery_learning_rate == 'restart'
            or isinstance(recovery_learning_rate, keras.optimizers.schedules.LearningRateSchedule)
            or (isinstance(recovery_learning_rate, (int, float)) and recovery_learning_rate > 0)):
      raise ConfigError(f'{name}(recovery_learning_rate={recovery_learning_rate!r}): give None, "restart", a '
                        'rate > 0 or a keras LearningRateSchedule')
    if distillation is not None and not isinstance(distillation, distillation_lib.Distillation):
      raise ConfigError(f'{name}(distillation={distillation!r}): give a lmf_tf.recovery.Distillation(alpha=..., '
                        'temperature=...)')
    if distillation is not None and distillation.teacher is not None:
      raise ConfigError(f'{name}(distillation=Distillation(teacher=...)): OnlineCompression distils from the model '
                        'just before the swap; a teacher of your own is for lmf_tf.fit_budget(distillation=...)')
    factors = tuple(gradual_factors or ())
    if factors and (any(not f > 1 for f in factors) or list(factors) != sorted(set(factors), reverse=True)):
      raise ConfigError(f'{name}(gradual_factors={gradual_factors!r}): give decreasing factors > 1, e.g. (4, 2)')
    if factors and reduction is None and rank is None:
      raise ConfigError(f'{name}(gradual_factors={gradual_factors!r}): gradual reduction applies to the embeddings; '
                        'give reduction= or rank=')
    if bool(factors) != (gradual_every_steps is not None) or (
        gradual_every_steps is not None and (not isinstance(gradual_every_steps, int) or gradual_every_steps < 1)):
      raise ConfigError(f'{name}: gradual_factors= and gradual_every_steps= (an integer >= 1) go together')
    self.reduction, self.rank = reduction, rank
    self.at_step, self.at_epoch, self.at_dev_peak = at_step, at_epoch, at_dev_peak
    self.layers, self.kernels, self.frequency, self.svd_method = layers, kernels, frequency, svd_method
    self.recovery_learning_rate, self.distillation = recovery_learning_rate, distillation
    self.gradual_factors, self.gradual_every_steps = factors, gradual_every_steps
    self.verbose = verbose
    self.expect_more_fits = False  # True while `fit` is called in parts: no "never reached" warning at the end
    self.reports, self.swap_steps = [], []
    self._embeddings = None  # resolved by `prepare`
    self._kernels = None  # a `KernelSelection`, resolved by `prepare` when `kernels` is given
    self.left_alone, self._left_alone_line = [], ''  # the embeddings the default rule leaves alone (`prepare`)
    self._stage_ranks = None  # [{layer name: rank}] per swap, the last one the final ranks
    self._teacher = None  # the model's copy: best-on-dev weights before the swap, the frozen teacher after it
    self._best, self._waited = None, 0  # at_dev_peak: best monitored value so far, epochs without improvement
    self._epoch_start_step = 0

  # Setting up.

  @property
  def done(self):
    """True once the last swap has happened."""
    return self._stage_ranks is not None and len(self.swap_steps) >= len(self._stage_ranks)

  @property
  def swap_count(self):
    """How many swaps the callback makes (1, or 1 + the gradual stages); known after `prepare`."""
    return len(self._stage_ranks) if self._stage_ranks is not None else None

  @property
  def swap_step(self):
    """Step of the first swap, or None."""
    return self.swap_steps[0] if self.swap_steps else None

  @property
  def variables(self):
    """Variables to checkpoint with the model for an exact resume: the teacher's (or the best-on-dev copy's)."""
    return [] if self._teacher is None else list(self._teacher.variables)

  def prepare(self, model=None):
    """Resolves the embeddings and their ranks, and copies the model if a teacher or a best-on-dev copy is needed.

    Called by `on_train_begin`; call it yourself before `restore_state` when resuming. Idempotent.
    """
    if model is not None:
      self.set_model(model)
    if self._embeddings is not None:
      return
    model = self.model
    embeddings, final = self._prepare_embeddings(model)
    self._select_kernels()
    stages = []
    for factor in self.gradual_factors:
      ranks = {l.name: min(final[l.name] * factor, max_useful_rank(l.input_dim, l.output_dim)) for l in embeddings}
      if all(ranks[n] > final[n] for n in ranks) and (not stages or ranks != stages[-1]):
        stages.append(ranks)
    self._embeddings, self._stage_ranks = embeddings, stages + [final]
    if self.distillation is not None or self.at_dev_peak is not None:
      self._teacher = _copy_model(model)

  def _select_kernels(self, when_built=False):
    """Resolves `kernels` once the model's Dense and LSTM layers are built (a subclassed model builds them in its
    first step: then at the swap); `when_built`: they must be by now."""
    if self.kernels is None or self._kernels is not None:
      return
    unbuilt = [l for l in self.model._flatten_layers(include_self=False)  # pylint: disable=protected-access
               if isinstance(l, (keras.layers.Dense, keras.layers.LSTM)) and not l.built]
    if not unbuilt or when_built:
      self._kernels = select_kernels(self.model, self.kernels, 'OnlineCompression')

  def _prepare_embeddings(self, model):
    """(the embeddings to compress, {name: final k}); none when only kernels are compressed."""
    if self.reduction is None and self.rank is None:
      return [], {}
    selection = select_embeddings(model, self.layers, 'OnlineCompression')
    embeddings, self.left_alone = selection.chosen, selection.left_alone
    self._left_alone_line = selection.left_alone_line()
    already = [l for l in embeddings if getattr(l, 'rank', None) is not None]
    if already and not self.swap_steps:
      raise ConfigError(f'OnlineCompression: embedding {already[0].name!r} of model {model.name!r} is already '
                        'compressed (rank {}); the swap happens once. To resume a run, call prepare() on the '
                        'uncompressed model, then restore_state()'.format(already[0].rank))
    ranks = checked_ranks(model, embeddings, self.reduction, self.rank, 'OnlineCompression')
    if self.frequency is not None:  # the blocks fit V: checked before any step
      frequency_lib.check_fits(self.frequency, embeddings, 'OnlineCompression')
    return embeddings, ranks

  # The swap.

  def _swap(self, step):
    """Swaps to the next stage's ranks at optimizer step `step`."""
    model, stage = self.model, len(self.swap_steps)
    with model.distribute_strategy.scope():
      if stage == 0:
        for layer in self._embeddings:
          check_not_tied(model, layer, 'OnlineCompression')
          if not layer.built:  # at_step=0 on a model that fit has not built yet: factorize the initial matrix
            layer.build()
        if self.at_dev_peak is not None and self._best is not None:
          model.set_weights(self._teacher.get_weights())  # back to the best epoch on dev
          logging.info('Swap at the dev peak: weights of the best epoch restored (%s %.4f).',
                       self.at_dev_peak.monitor, self._best)
        elif self._teacher is not None:
          self._teacher.set_weights(model.get_weights())
      self.reports = factorize_embeddings(model, self._embeddings, self._stage_ranks[stage], self.svd_method,
                                          'OnlineCompression', self.frequency)
      if stage == 0 and self.kernels is not None:
        self._select_kernels(when_built=True)
        self.reports += factorize_kernels(model, self._kernels, self.svd_method, 'OnlineCompression')
      self.swap_steps.append(step)
      lines = [report.summary() for report in self.reports]  # each logged by compress_layer
      if stage == 0:
        for line in (self._left_alone_line, self._kernels.left_alone_line() if self._kernels else ''):
          if line:
            lines.append(line)
            logging.info('OnlineCompression after step %d: %s', step, line)
      if self.verbose:  # a leading newline, as Keras's callbacks print: the line may come amid a progress bar
        for line in lines:
          print(f'\nOnlineCompression after step {step}: {line}', flush=True)
      self._install_optimizer()
    self._attach_distillation()
    retrace(model)

  def _install_optimizer(self):
    optimizer = self.model.optimizer
    learning_rate = None
    if self.recovery_learning_rate is not None:
      schedule = self.recovery_learning_rate
      if schedule == 'restart':
        schedule = optimizer.get_config()['learning_rate']
        if isinstance(schedule, dict):
          schedule = keras.optimizers.schedules.deserialize(schedule)
        if isinstance(schedule, Restarted):
          schedule = schedule.schedule
      learning_rate = Restarted(schedule, self.swap_steps[-1])
    set_optimizer(self.model, carry_optimizer(optimizer, self.model.trainable_variables, learning_rate))

  def _attach_distillation(self):
    if self.distillation is not None and self.swap_steps and not distillation_lib.is_attached(self.model):
      distillation_lib.attach(self.model, self._teacher, self.distillation)

  # Resume.

  def get_state(self):
    """What a resumed run needs besides the checkpointed variables (JSON-able)."""
    return {'swap_steps': list(self.swap_steps), 'best': self._best, 'waited': self._waited,
            'ranks': [dict(r) for r in self._stage_ranks or []],
            'kernel_ranks': dict(self._kernels.ranks) if self._kernels else {},
            'blocks': {l.name: l.blocks for l in self._embeddings or [] if getattr(l, 'blocks', None)}}

  def restore_state(self, state):
    """Puts a prepared (uncompressed) model into the form `state` records: the embeddings at the ranks of the last
    swap (and the kernels, with `kernels`), the optimizer rebuilt for them, distillation attached. Then restore the
    checkpoint, `variables` included."""
    self.prepare()
    self.swap_steps, self._best, self._waited = list(state['swap_steps']), state['best'], state['waited']
    if not self.swap_steps:
      return
    self._select_kernels(when_built=True)
    kernel_ranks = dict(self._kernels.ranks) if self._kernels else {}
    if (state['ranks'] and state['ranks'] != self._stage_ranks) or state.get('kernel_ranks', {}) != kernel_ranks:
      raise ConfigError(f'OnlineCompression: the saved run swapped to ranks {state["ranks"]} (kernels '
                        f'{state.get("kernel_ranks", {})}), these settings ask for {self._stage_ranks} (kernels '
                        f'{kernel_ranks}); resume with the settings of the saved run')
    if bool(state.get('blocks')) != (self.frequency is not None):
      raise ConfigError(f'OnlineCompression: the saved run {"did" if state.get("blocks") else "did not"} spread its '
                        f'ranks over frequency blocks and these settings {"do not" if state.get("blocks") else "do"} '
                        '(frequency=); resume with the settings of the saved run')
    model = self.model
    with model.distribute_strategy.scope():
      for layer in self._embeddings:  # the saved factors are restored with the checkpoint
        if self.frequency is not None:
          nested.restore_blocks(layer, state['blocks'][layer.name])
          nested.carry(model, layer, 'OnlineCompression')
          continue
        CompressibleEmbedding.from_embedding(layer)
        layer.factorize(*_placeholder_factors(layer, self._stage_ranks[len(self.swap_steps) - 1][layer.name]))
        nested.carry(model, layer, 'OnlineCompression')
      for layer in self._kernels.chosen if self._kernels else []:
        nested.restore_kernel_ranks(layer, kernel_ranks[layer.name])
        nested.carry(model, layer, 'OnlineCompression')
      self._install_optimizer()
    self._attach_distillation()
    retrace(model)

  # Callback hooks.

  def on_train_begin(self, logs=None):
    self.prepare()
    self._attach_distillation()
    self._epoch_start_step = int(self.model.optimizer.iterations.numpy())
    if self.at_step is not None and not self.swap_steps and self._epoch_start_step >= self.at_step:
      self._swap(self._epoch_start_step)  # at_step=0: compress before the first step

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start_step = int(self.model.optimizer.iterations.numpy())
    if self.at_epoch is not None and epoch >= self.at_epoch and not self.swap_steps:
      self._swap(self._epoch_start_step)

  def _next_swap_step(self):
    """The optimizer step after which the next swap is due, or None (not by step, or no swap left)."""
    if self.done:
      return None
    if not self.swap_steps:
      return self.at_step
    return self.swap_steps[0] + len(self.swap_steps) * self.gradual_every_steps

  def on_train_batch_begin(self, batch, logs=None):
    # "After N steps" is checked before step N + 1 rather than after step N: Keras dispatches the per-batch logs
    # asynchronously unless a callback has an `on_train_batch_end`, which costs a device sync per step.
    due = self._next_swap_step()
    if due is not None:
      step = self._epoch_start_step + batch  # steps done so far, without a device read
      if step >= due:
        self._swap(step)

  def _swap_if_due_now(self):
    """Swaps if the next swap was due after the last step done (read from the optimizer: at an epoch's or a fit's
    end, where no next batch will check it)."""
    due = self._next_swap_step()
    if due is not None:
      step = int(self.model.optimizer.iterations.numpy())
      if step >= due:
        self._swap(step)

  def on_epoch_end(self, epoch, logs=None):
    # Due after the epoch's last step: swap now, so the callbacks after this one (and the next epoch) see the
    # compressed model. Keras's own validation of this epoch has already run on the model before the swap.
    self._swap_if_due_now()
    peak = self.at_dev_peak
    if peak is None or self.swap_steps:
      return
    value = (logs or {}).get(peak.monitor)
    if value is None:
      raise ConfigError(f'OnlineCompression(at_dev_peak=DevPeak(monitor={peak.monitor!r})): no such value in the '
                        f'epoch logs ({", ".join(sorted(logs or {}))}); pass validation_data to fit')
    improved = self._best is None or (value > self._best if peak.mode == 'max' else value < self._best)
    if improved:
      self._best, self._waited = float(value), 0
      self._teacher.set_weights(self.model.get_weights())
    else:
      self._waited += 1
    if self._waited >= peak.patience or (peak.latest_epoch is not None and epoch + 1 >= peak.latest_epoch):
      self._swap(int(self.model.optimizer.iterations.numpy()))

  def on_train_end(self, logs=None):
    self._swap_if_due_now()  # due after the last step of this fit
    distillation_lib.detach(self.model)
    if not self.done and not self.expect_more_fits:
      when = (f'at_step={self.at_step}' if self.at_step is not None else f'at_epoch={self.at_epoch}'
              if self.at_epoch is not None else f'at_dev_peak={self.at_dev_peak}')
      message = (f'OnlineCompression({when}): training ended at step {int(self.model.optimizer.iterations.numpy())} '
                 f'after {len(self.swap_steps)} of {len(self._stage_ranks or [1])} swaps; the model is not compressed'
                 ' to its final rank')
      warnings.warn(message, stacklevel=2)
      logging.warning('%s', message)


def _copy_model(model):
  """A copy of `model` with its weights (the teacher / best-on-dev copy), or a ConfigError saying why not."""
  try:
    copy = keras.models.clone_model(model)
  except Exception as e:  # clone_model raises various errors for models it cannot rebuild
    raise ConfigError(f'OnlineCompression: distillation and at_dev_peak need a copy of model {model.name!r}, and '
                      f'keras.models.clone_model cannot make one ({type(e).__name__}: {e}); give the model a '
                      'get_config/from_config') from None
  copy.set_weights(model.get_weights())
  copy.trainable = False
  return copy


def _placeholder_factors(layer, rank):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return (np.zeros((layer.input_dim, rank), np.float32), np.zeros((rank, layer.output_dim), np.float32))
