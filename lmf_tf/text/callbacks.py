"""Keras callbacks for training: per-epoch dev/test evaluation with best-on-dev selection, and resumable state."""

import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import io_utils
from lmf_tf.compression import model_size
from lmf_tf.compression.block_embedding import FrequencyBlockEmbedding
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.errors import CheckpointNotFoundError, TrainingDivergedError

STATE_FILE = 'state.json'


def embedding_rank(model):
  """Rank of the model's compressed embedding, or None while it is uncompressed."""
  for layer in model._flatten_layers():
    if isinstance(layer, CompressibleEmbedding) and layer.is_compressed:
      return layer.rank
  return None


def embedding_blocks(model):
  """The frequency blocks of the model's embedding ({'block_rows': [...], 'block_ranks': [...]}), or None."""
  for layer in model._flatten_layers():
    if isinstance(layer, FrequencyBlockEmbedding) and layer.is_compressed:
      return layer.blocks
  return None


class EpochEvaluation(keras.callbacks.Callback):
  """Evaluates dev and test after each epoch, logs one fixed line, keeps the best epoch *on dev*.

  An epoch is eligible for selection only if the model then has its final form (`eligible(model)`, e.g. the
  embedding is already compressed), so a compressed run never reports an uncompressed epoch. At each new best,
  the inference checkpoint (weights + graph, no optimizer) is saved to `<best_dir>.pending` and its size recorded;
  `commit_best()` moves it to `best_dir` once the training state that records it is on disk (`TrainingState`),
  so `best_dir` and `state.json` never disagree after a crash.
  Test accuracy is recorded for every epoch but never used to choose.

  `history`: list of per-epoch dicts; `best`: the chosen epoch's dict plus its checkpoint size.
  """

  def __init__(self, dev, test, best_dir, eligible, total_epochs, metadata=None, history=None, best=None):
    super().__init__()
    self.dev, self.test = dev, test
    self.best_dir, self.eligible, self.total_epochs = best_dir, eligible, total_epochs
    self.metadata = metadata or {}
    self.history = list(history or [])
    self.best = best
    self._epoch_start = None

  @property
  def pending_dir(self):
    return self.best_dir + '.pending'

  def commit_best(self):
    """Moves a new best checkpoint into place (after the state that names it is written); else a no-op."""
    if os.path.isdir(self.pending_dir):
      if os.path.isdir(self.best_dir):
        shutil.rmtree(self.best_dir)
      os.replace(self.pending_dir, self.best_dir)

  def on_train_begin(self, logs=None):
    # A pending best from a run that died before its state was written is not recorded anywhere: drop it.
    shutil.rmtree(self.pending_dir, ignore_errors=True)

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    train_seconds = time.perf_counter() - self._epoch_start
    dev = self.model.evaluate(self.dev, verbose=0, return_dict=True)
    test = self.model.evaluate(self.test, verbose=0, return_dict=True)
    optimizer = self.model.optimizer
    rank = embedding_rank(self.model)
    record = {
        'epoch': epoch + 1,
        'step': int(optimizer.iterations.numpy()),
        'learning_rate': float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
        'train_loss': float(logs.get('loss', float('nan'))),
        'train_accuracy': float(logs.get('accuracy', float('nan'))),
        'dev_accuracy': float(dev['accuracy']),
        'test_accuracy': float(test['accuracy']),
        'dev_loss': float(dev['loss']),
        'rank': rank,
        'num_params': int(sum(w.numpy().size for w in self.model.weights)),
        'train_seconds': round(train_seconds, 2),
    }
    self.history.append(record)
    logs['val_accuracy'], logs['val_loss'] = record['dev_accuracy'], record['dev_loss']  # for later callbacks
    improved = self.eligible(self.model) and (self.best is None or record['dev_accuracy'] > self.best['dev_accuracy'])
    if improved:
      size = model_size.save_inference_checkpoint(self.model, self.pending_dir, {
          **self.metadata, 'epoch': epoch + 1, 'rank': rank, 'embedding_blocks': embedding_blocks(self.model)})
      self.best = {**record, 'checkpoint': size.as_dict()}
    logging.info(
        'epoch %3d/%d step %7d lr %.2e train_loss %.4f train_acc %.4f dev_acc %.4f test_acc %.4f rank %4s '
        'params %9d time %6.1fs%s', record['epoch'], self.total_epochs, record['step'], record['learning_rate'],
        record['train_loss'], record['train_accuracy'], record['dev_accuracy'], record['test_accuracy'],
        '-' if rank is None else rank, record['num_params'], train_seconds, ' *best-dev' if improved else '')


class EpochProgress(keras.callbacks.Callback):
  """A progress bar within each epoch (`keras.utils.Progbar`, on stdout): batches done, loss and accuracy so far.
  For a terminal only; the epoch's summary line comes from `EpochEvaluation`."""

  def __init__(self, steps_per_epoch):
    super().__init__()
    self.steps_per_epoch = steps_per_epoch
    self._bar, self._first = None, 0

  def on_epoch_begin(self, epoch, logs=None):
    self._bar = keras.utils.Progbar(self.steps_per_epoch, stateful_metrics=['loss', 'accuracy'], unit_name='batch')
    self._first = None

  def on_train_batch_end(self, batch, logs=None):
    if self._first is None:  # a resumed epoch starts at its first batch not yet trained
      self._first = self.steps_per_epoch - self.params.get('steps', self.steps_per_epoch)
    self._bar.update(self._first + batch + 1, [(k, float(v)) for k, v in (logs or {}).items()
                                               if k in ('loss', 'accuracy')])


class DevCurve(keras.callbacks.Callback):
  """Dev accuracy every `every_steps` optimizer steps (paper Figure 3): `points` = [[step, accuracy, rank]]."""

  def __init__(self, dev, every_steps, points=None):
    super().__init__()
    self.dev, self.every_steps = dev, every_steps
    self.points = list(points or [])

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if step % self.every_steps == 0:
      # `evaluate` resets the metrics that `fit` is accumulating for the epoch: keep them.
      running = [v.numpy() for v in self.model.metrics_variables]
      accuracy = self.model.evaluate(self.dev, verbose=0, return_dict=True)['accuracy']
      for variable, value in zip(self.model.metrics_variables, running):
        variable.assign(value)
      self.points.append([step, float(accuracy), embedding_rank(self.model)])


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Stops training with TrainingDivergedError as soon as a batch's loss, or a weight, is NaN or infinite.

  The loss is checked after every batch. The weights are checked where a save may follow (every `every_steps`
  steps and at each epoch's end), since the step that breaks them still reports the finite loss computed before
  its update. Place this callback before the ones that save (`EpochEvaluation`, `TrainingState`): the error is
  raised before anything is written from diverged weights, so the last good files stay as they are, and
  `--resume` continues from them. (Keras's `TerminateOnNaN` only sets `stop_training`, after which the epoch's
  end would still save.)
  """

  def __init__(self, train_dir, every_steps=None):
    super().__init__()
    self.train_dir, self.every_steps = train_dir, every_steps

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    step = int(self.model.optimizer.iterations.numpy())
    if loss is not None and not math.isfinite(float(loss)):
      raise self._diverged(f'the training loss became {float(loss)} at step {step}')
    if self.every_steps and step % self.every_steps == 0:
      self._check_weights(step)

  def on_epoch_end(self, epoch, logs=None):
    self._check_weights(int(self.model.optimizer.iterations.numpy()))

  def _check_weights(self, step):
    for variable in self.model.trainable_variables:
      if not bool(tf.reduce_all(tf.math.is_finite(variable))):
        raise self._diverged(f'weight {variable.path} became NaN or infinite by step {step}')

  def _diverged(self, what):
    state_path = os.path.join(self.train_dir, STATE_FILE)
    if os.path.exists(state_path):
      state = read_state(self.train_dir)
      last = (f'the last good state is {state_path} (step {state.get("step", "?")}, epoch {state["epoch"]} done); '
              'fix the cause, then continue with --resume')
    else:
      last = 'no training state was saved yet'
    return TrainingDivergedError(f'{what}; {last}. A lower learning rate (--lr_upper / --learning_rate) usually '
                                 'helps.')


class TrainingState(keras.callbacks.Callback):
  """Checkpoints the full training state (model weights, optimizer slots and step, dropout generators, the running
  training metrics) after every epoch and, with `every_steps`, every that many optimizer steps within an epoch.

  Files in `directory`: `ckpt-<step>.{index,data-*}` (tf.train.Checkpoint) and `state.json`, which points at the
  newest complete checkpoint and holds what the run needs to continue: `epoch` (epochs completed),
  `batches_done` (batches of the next epoch already trained; 0 at an epoch's end), rank, history, best, and the
  checkpoint's sha256. `state.json` is replaced atomically after the checkpoint is written, so a crash at any point
  leaves the previous good state. `extra_state()` returns more JSON-able state to store (e.g. the compression
  report, the dev curve).
  """

  def __init__(self, directory, evaluation, extra_state=lambda: {}, every_steps=None, steps_per_epoch=None,
               extra_variables=lambda: []):
    super().__init__()
    if every_steps is not None and not steps_per_epoch:
      raise ValueError('every_steps needs steps_per_epoch')
    self.directory, self.evaluation, self.extra_state = directory, evaluation, extra_state
    self.every_steps, self.steps_per_epoch = every_steps, steps_per_epoch
    self.extra_variables = extra_variables

  def on_train_batch_end(self, batch, logs=None):
    if self.every_steps is None:
      return
    step = int(self.model.optimizer.iterations.numpy())
    epoch, batches_done = divmod(step, self.steps_per_epoch)
    if step % self.every_steps == 0 and batches_done:  # an epoch's last step is saved by on_epoch_end
      self._save(epoch, batches_done)

  def on_epoch_end(self, epoch, logs=None):
    self._save(epoch + 1, 0)
    self.evaluation.commit_best()

  def _save(self, epoch, batches_done):
    os.makedirs(self.directory, exist_ok=True)
    step = int(self.model.optimizer.iterations.numpy())
    # The manager keeps this checkpoint and the one before it, which `state.json` still names until it is replaced
    # below: a crash at any point leaves a state whose checkpoint exists.
    manager = tf.train.CheckpointManager(training_checkpoint(self.model, self.extra_variables()), self.directory,
                                         max_to_keep=2, checkpoint_name='ckpt')
    prefix = manager.save(checkpoint_number=step)
    state = {'epoch': epoch, 'batches_done': batches_done, 'step': step, 'steps_per_epoch': self.steps_per_epoch,
             'checkpoint': os.path.basename(prefix),
             'checkpoint_sha256': io_utils.checkpoint_digest(prefix), 'rank': embedding_rank(self.model),
             'history': self.evaluation.history, 'best': self.evaluation.best, **self.extra_state()}
    io_utils.write_json_atomic(os.path.join(self.directory, STATE_FILE), state)


class RestoreMetrics(keras.callbacks.Callback):
  """Puts back the running training metrics saved mid-epoch (loss and accuracy so far in that epoch).

  `fit` builds its metrics only when it starts and resets them at each epoch's beginning, so they cannot be
  restored with the rest of the state before `fit`: this callback reads them from the checkpoint `prefix` in the
  first `on_epoch_begin`, which runs after that reset.
  """

  def __init__(self, prefix):
    """`prefix`: the mid-epoch checkpoint resumed from, or None (resuming at an epoch's start, or not at all)."""
    super().__init__()
    self.prefix = prefix

  def on_epoch_begin(self, epoch, logs=None):
    if self.prefix is not None:
      # The compiled metrics (accuracy) are built at the first training step: build them now with a dummy update,
      # which the restore then overwrites.
      self.model.compute_metrics(None, np.zeros((1,), np.int64),
                                 np.full((1, self.model.output_shape[-1]), 1.0 / self.model.output_shape[-1],
                                         np.float32))
      tf.train.Checkpoint(metrics=model_size.keyed_variables(self.model.metrics_variables)).read(
          self.prefix).expect_partial().assert_existing_objects_matched()
      self.prefix = None


def training_checkpoint(model, extra_variables=()):
  """A `tf.train.Checkpoint` of the full training state: every model variable (weights and the dropout seed
  generators' states), every optimizer variable (step, moments) and `extra_variables` (an online swap's teacher).

  `tf.train.Checkpoint(model=model)` is not enough with Keras 3: it reaches the layers' weights only through the
  optimizer and misses the non-trainable state.
  """
  return tf.train.Checkpoint(model=model_size.keyed_variables(model.variables),
                             optimizer=model_size.keyed_variables(model.optimizer.variables),
                             metrics=model_size.keyed_variables(model.metrics_variables),
                             extra=model_size.keyed_variables(list(extra_variables)))


def read_state(directory):
  """The saved `state.json` of a run; raises CheckpointNotFoundError naming the path if there is none."""
  path = os.path.join(directory, STATE_FILE)
  if not os.path.exists(path):
    raise CheckpointNotFoundError(f'--resume: no training checkpoint to resume from ({path} does not exist)')
  return io_utils.read_json(path, '--resume: training state')


def restore_training_state(model, directory, state, extra_variables=lambda: []):
  """Loads model weights, optimizer slots and step (and `extra_variables()`) from the checkpoint named in `state`."""
  prefix = os.path.join(directory, state['checkpoint'])
  if not os.path.exists(prefix + '.index'):
    raise CheckpointNotFoundError(f'--resume: checkpoint {prefix} named in {directory}/{STATE_FILE} is missing')
  io_utils.verify_checkpoint(prefix, state.get('checkpoint_sha256'), '--resume: training checkpoint')
  model.optimizer.build(model.trainable_variables)
  try:
    # The training metrics are built only inside `fit`: `RestoreMetrics` reads them then.
    tf.train.Checkpoint(model=model_size.keyed_variables(model.variables),
                        optimizer=model_size.keyed_variables(model.optimizer.variables),
                        extra=model_size.keyed_variables(list(extra_variables()))).read(
                            prefix).expect_partial().assert_existing_objects_matched()
  except AssertionError as e:
    raise CheckpointNotFoundError(f'--resume: checkpoint {prefix} does not match this model ({e})') from None
  logging.info('Resumed from %s (epoch %d, step %d).', prefix, state['epoch'], int(model.optimizer.iterations.numpy()))
