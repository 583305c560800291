"""Train and evaluate the PTB LSTM language model: `train_lm(config)` and `evaluate_perplexity(model, dataset)`.

Training follows Zaremba et al. (2014, §4.1): truncated BPTT over `batch_size` contiguous streams in windows of
`num_steps` (`lm_data.tbptt_dataset`), the LSTM state carried from each window to the next and reset to zero at
the start of every epoch (`lm_models` docstring); plain SGD on the cross-entropy summed over the T steps of a
window and averaged over its B streams (so a learning rate of 1 means what it means in the paper), the gradient
clipped to a global norm (`max_grad_norm`), and the rate decayed per epoch (`schedules.DelayedEpochDecay`).

Perplexity, the metric of Zaremba et al. and of Grachev et al. (2017, §5), over the N predicted words w_i:

    PPL = exp(-(1/N) Σ_i ln p(w_i | w_<i)),

the exponential of the mean cross-entropy in nats per word. A model that predicts the uniform distribution over
V words has ln p = -ln V for every word, so PPL = V (worked example: V = 10,000 -> 10,000).
"""

import dataclasses
import json
import math
import os
import platform
import time
import weakref

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import io_utils, results
from lmf_tf.compression import model_size, pruning, quantization
from lmf_tf.lm import data as lm_data
from lmf_tf.lm import models as lm_models
from lmf_tf.lm import config as lm_config
from lmf_tf.lm.config import LmConfig, LmFactorization
from lmf_tf.lm.schedules import DelayedEpochDecay
from lmf_tf.errors import CheckpointNotFoundError, ConfigError, TrainingDivergedError


def token_cross_entropy(targets, logits):
  """-ln softmax(logits)[target]: int32[B, T], float32[B, T, V] -> float32[B, T], in nats."""
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def create_optimizer(config, steps_per_epoch):
  """SGD with global-norm clipping and the Zaremba et al. per-epoch decay, built for `steps_per_epoch`."""
  schedule = DelayedEpochDecay(config.learning_rate, config.lr_decay, config.decay_after_epochs,
                                         steps_per_epoch)
  return keras.optimizers.SGD(schedule, global_clipnorm=config.max_grad_norm)


def make_train_step(model, optimizer, masks=None):
  """A compiled step `(inputs int32[B, T], targets int32[B, T], state) -> (mean cross-entropy float32[], state)`.

  The loss whose gradient is taken is the cross-entropy summed over the T steps and averaged over the B streams
  (Zaremba et al. 2014; the TensorFlow tutorial's `average_across_timesteps=False`); the returned value is its
  mean per word. `masks` ({`model_size.weight_dict` name: bool mask}, from `pruning.magnitude_masks`): pruned
  weights are set back to zero after every update, so they stay zero while the rest is fine-tuned (Grachev et al.
  2017, §3.1). Call it again after the model's variables change (e.g. a factorized embedding).
  """
  optimizer.build(model.trainable_variables)

  @tf.function
  def train_step(inputs, targets, state):
    with tf.GradientTape() as tape:
      logits, final_state = model(inputs, initial_state=state, training=True)
      cross_entropy = tf.reduce_mean(token_cross_entropy(targets, logits))
      loss = cross_entropy * tf.cast(tf.shape(targets)[1], tf.float32)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    if masks:
      pruning.apply_masks(model, masks)
    return cross_entropy, final_state

  return train_step


_EVAL_STEPS = weakref.WeakKeyDictionary()  # model -> (ids of its variables, compiled evaluation step)


def _eval_step(model):
  """The compiled `(inputs, targets, state) -> (summed cross-entropy float32[], state)` for `model`, traced once
  per set of variables (so a structural change such as a factorized embedding is picked up)."""
  key = tuple(id(v) for v in model.weights)
  cached = _EVAL_STEPS.get(model)
  if cached is None or cached[0] != key:
    @tf.function(reduce_retracing=True)
    def eval_step(inputs, targets, state):
      logits, final_state = model(inputs, initial_state=state, training=False)
      return tf.reduce_sum(token_cross_entropy(targets, logits)), final_state

    cached = _EVAL_STEPS[model] = (key, eval_step)
  return cached[1]


def evaluate_perplexity(model, dataset):
  """Perplexity of `model` on consecutive TBPTT windows, the state carried across them from a zero start.

  Args:
    model: an `lm_models.LstmLanguageModel` (anything with `model(ids, initial_state, training)` ->
      `(logits, state)` and `zero_state(batch_size)`).
    dataset: (inputs, targets) windows `int32[B, T]` in stream order, as `lm_data.tbptt_dataset`; the last may be
      shorter in T.
  Returns:
    {'perplexity': exp(cross_entropy), 'cross_entropy': mean nats per word, 'words': N predicted words,
     'seconds': wall time, 'words_per_second': N / seconds}.
  """
  step = _eval_step(model)
  start = time.perf_counter()
  state, total, words = None, 0.0, 0
  for inputs, targets in dataset:
    if state is None:
      state = model.zero_state(inputs.shape[0])
    summed, state = step(inputs, targets, state)
    total += float(summed)
    words += int(np.prod(targets.shape))
  if words == 0:
    raise ValueError('evaluate_perplexity: the dataset holds no window')
  seconds = time.perf_counter() - start
  cross_entropy = total / words
  return {'perplexity': math.exp(cross_entropy), 'cross_entropy': cross_entropy, 'words': words,
          'seconds': seconds, 'words_per_second': words / seconds}


@dataclasses.dataclass
class Progress:
  """Counters over the whole run; the first step (which traces the graph) is left out of the speed."""
  step: int = 0
  timed_words: int = 0
  timed_seconds: float = 0.0


def _train_epoch(model, train_step, dataset, config, epoch, num_steps, progress, log_every, show_progress=False):
  """Runs `num_steps` windows of `dataset` from a zero state; returns (mean cross-entropy, words/s this epoch).
  With `show_progress`, a progress bar (`keras.utils.Progbar`) shows the windows done and the perplexity so far."""
  bar = keras.utils.Progbar(num_steps, stateful_metrics=['train_ppl']) if show_progress else None
  state = model.zero_state(config.batch_size)
  words_per_step = config.batch_size * config.num_steps
  total, count, epoch_words, epoch_seconds = 0.0, 0, 0, 0.0
  for inputs, targets in dataset.take(num_steps):
    start = time.perf_counter()
    cross_entropy, state = train_step(inputs, targets, state)
    cross_entropy = float(cross_entropy)
    seconds = time.perf_counter() - start
    progress.step += 1
    if not math.isfinite(cross_entropy):
      raise TrainingDivergedError(
          f'the training loss became {cross_entropy} at step {progress.step} (window {count + 1} of epoch '
          f'{epoch + 1}); nothing of this run was saved. A lower --learning_rate or --max_grad_norm usually helps.')
    total, count = total + cross_entropy, count + 1
    if bar is not None:
      bar.update(count, [('train_ppl', math.exp(total / count))])
    if progress.step > 1:
      progress.timed_words += words_per_step
      progress.timed_seconds += seconds
      epoch_words, epoch_seconds = epoch_words + words_per_step, epoch_seconds + seconds
    if log_every and count % log_every == 0 and bar is None:
      logging.info('epoch %d window %d/%d train_ppl %.2f wps %.0f', epoch + 1, count, num_steps,
                   math.exp(total / count), epoch_words / max(epoch_seconds, 1e-9))
  return total / count, epoch_words / max(epoch_seconds, 1e-9)


def train_epochs(model, train_step, optimizer, train_data, valid_data, config, steps_per_epoch, total_steps,
                 progress, history, epochs=None, first_epoch=0, after_epoch=None, show_progress=False):
  """Epochs `first_epoch` .. `epochs` - 1 (default `config.epochs`), at most `total_steps` steps in all, each
  followed by the valid perplexity and `after_epoch()`; appends one record per epoch to `history` and returns the
  last valid evaluation (None if no epoch ran). `show_progress`: a progress bar within each epoch (a terminal)."""
  valid = None
  log_every = config.log_every_steps or max(1, steps_per_epoch // 10)
  epochs = config.epochs if epochs is None else epochs
  for epoch in range(first_epoch, epochs):
    if progress.step >= total_steps:
      break
    epoch_start = time.time()
    lr = float(optimizer.learning_rate)  # the schedule's value at this epoch's first step
    epoch_steps = min(steps_per_epoch, total_steps - progress.step)
    train_ce, train_wps = _train_epoch(model, train_step, train_data, config, epoch, epoch_steps, progress,
                                       log_every, show_progress)
    valid = evaluate_perplexity(model, valid_data)
    history.append({'epoch': epoch + 1, 'step': progress.step, 'windows': epoch_steps, 'learning_rate': lr,
                    'train_perplexity': math.exp(train_ce), 'valid_perplexity': valid['perplexity'],
                    'train_words_per_second': train_wps, 'seconds': time.time() - epoch_start})
    logging.info('epoch %3d/%d step %8d lr %.3e train_ppl %9.2f valid_ppl %9.2f wps %6.0f time %7.1fs',
                 epoch + 1, epochs, progress.step, lr, math.exp(train_ce), valid['perplexity'], train_wps,
                 history[-1]['seconds'])
    if after_epoch is not None:
      after_epoch()
  return valid


def _training_checkpoint(model, optimizer):
  return tf.train.Checkpoint(weights=model_size.weight_dict(model),
                             optimizer=model_size.keyed_variables(optimizer.variables))


def save_training_state(train_dir, config, model, optimizer, progress, history):
  """Replaces `<train_dir>` atomically by the state after an epoch: `ckpt` (weights, optimizer step) and
  `state.json` (config, progress counters, history, the checkpoint's sha256)."""
  with io_utils.atomic_path(train_dir) as tmp:
    os.makedirs(tmp)
    prefix = os.path.join(tmp, 'ckpt')
    _training_checkpoint(model, optimizer).write(prefix)
    state = {'config': dataclasses.asdict(config), 'progress': dataclasses.asdict(progress), 'history': history,
             'checkpoint_sha256': io_utils.checkpoint_digest(prefix)}
    with open(os.path.join(tmp, 'state.json'), 'w') as f:
      json.dump(state, f, indent=2)


def restore_training_state(train_dir, config, model, optimizer, progress, history):
  """Loads what `save_training_state` wrote, if anything, into the model, optimizer, progress and history.

  Returns:
    True if a state was restored.
  Raises:
    ConfigError: the saved state is of another config (e.g. other epochs or learning rate) than `config`.
    CorruptFileError: the files are truncated or do not match their digest.
  """
  state_path = os.path.join(train_dir, 'state.json')
  if not os.path.exists(state_path):
    return False
  state = io_utils.read_json(state_path, 'training state')
  saved = json.loads(json.dumps(dataclasses.asdict(config)))
  if state['config'] != saved:
    changed = sorted(k for k in saved if state['config'].get(k) != saved[k])
    raise ConfigError(f'{state_path} is the state of a run with other settings ({", ".join(changed)}); remove '
                      f'{train_dir} to start again, or use another --workdir')
  prefix = os.path.join(train_dir, 'ckpt')
  io_utils.verify_checkpoint(prefix, state['checkpoint_sha256'], 'training checkpoint')
  _training_checkpoint(model, optimizer).read(prefix).assert_existing_objects_matched()
  for key, value in state['progress'].items():
    setattr(progress, key, value)
  history[:] = state['history']
  logging.info('Resumed %s after epoch %d (step %d).', train_dir, len(history), progress.step)
  return True


def train_lm(config: LmConfig, show_progress=False):
  """Trains the LSTM LM of `config` on its corpus; evaluates valid perplexity after every epoch and test at the end.
  With `show_progress`, a progress bar runs within each epoch (for a terminal).

  Writes, atomically:
    <workdir>/<run>/final/model.{data-*,index,meta} and config.json: the final model's inference checkpoint;
    <workdir>/<run>/vocab.txt: the vocabulary, one word a line in id order;
    <workdir>/<run>/train/: the training state after the last finished epoch (`save_training_state`); a run
      started again with the same config continues from it;
    <results_dir>/<run>.json: config, data sizes, parameter count, per-epoch history, valid and test perplexity,
      training words per second, checkpoint bytes (.data + .index + .meta), wall time.
  Returns:
    (model, results dict).
  Raises:
    DataFormatError, FileNotFoundError, ConfigError: bad data or settings, before anything is written.
    TrainingDivergedError: if the loss becomes NaN or infinite.
    RunLockedError: if another live process is training the same run.
  """
  config = config.validate()
  with io_utils.run_lock(os.path.join(config.workdir, config.run_name)):
    return _train_lm(config, show_progress)


def _train_lm(config, show_progress):
  wall_start = time.time()
  run_dir = os.path.join(config.workdir, config.run_name)
  final_dir = os.path.join(run_dir, 'final')
  keras.utils.set_random_seed(config.seed)

  corpus = lm_data.load_corpus(config.data_dir)
  sizes = corpus.sizes()
  train_data = lm_data.tbptt_dataset(corpus.train, config.batch_size, config.num_steps)
  steps_per_epoch = lm_data.num_windows(sizes['train'], config.batch_size, config.num_steps)
  valid_data, test_data = (lm_data.tbptt_dataset(ids, config.eval_batch_size, config.num_steps, drop_remainder=False)
                           for ids in (corpus.valid, corpus.test))
  logging.info('Data %s: train %d, valid %d, test %d tokens (with <eos>); vocabulary %d; %d windows of %d x %d '
               'an epoch.', config.data_dir, sizes['train'], sizes['valid'], sizes['test'], sizes['vocab_size'],
               steps_per_epoch, config.batch_size, config.num_steps)

  model = lm_models.build_lm(config, sizes['vocab_size'])
  optimizer = create_optimizer(config, steps_per_epoch)
  train_step = make_train_step(model, optimizer)
  total_steps = config.epochs * steps_per_epoch
  if config.max_steps:
    total_steps = min(total_steps, config.max_steps)

  progress, history = Progress(), []
  train_dir = os.path.join(run_dir, 'train')
  restore_training_state(train_dir, config, model, optimizer, progress, history)
  valid = train_epochs(
      model, train_step, optimizer, train_data, valid_data, config, steps_per_epoch, total_steps, progress, history,
      first_epoch=len(history), show_progress=show_progress,
      after_epoch=lambda: save_training_state(train_dir, config, model, optimizer, progress, history))
  if valid is None:  # resumed from the state after the last epoch
    valid = evaluate_perplexity(model, valid_data)
  test = evaluate_perplexity(model, test_data)

  vocab_path = os.path.join(run_dir, 'vocab.txt')
  corpus.vocabulary.save(vocab_path)
  metadata = {'config': dataclasses.asdict(config), 'model': model.get_config(),
              'vocabulary': os.path.relpath(vocab_path, final_dir)}
  size = model_size.save_inference_checkpoint(model, final_dir, metadata)
  result = results.LmResult(**{
      'run': config.run_name,
      'task': 'ptb_lm',
      'config': dataclasses.asdict(config),
      'data': {**sizes, 'windows_per_epoch': steps_per_epoch, 'valid_words_predicted': valid['words'],
               'test_words_predicted': test['words']},
      'params': lm_models.count_params(model),
      'steps': progress.step,
      'stopped_by_max_steps': progress.step < config.epochs * steps_per_epoch,
      'history': history,
      'valid_perplexity': valid['perplexity'],
      'test_perplexity': test['perplexity'],
      'valid': valid,
      'test': test,
      'train_words_per_second': progress.timed_words / max(progress.timed_seconds, 1e-9),
      'checkpoint_bytes': size.as_dict(),
      'checkpoint_dir': os.path.abspath(final_dir),
      'wall_seconds': round(time.time() - wall_start, 1),
      'environment': results.environment(),
  })
  path = results.write(result, config.results_dir)
  logging.info('After %d steps: valid ppl %.2f, test ppl %.2f; %.0f words/s in training; checkpoint %d bytes '
               '(%d params); wrote %s in %.0fs.', progress.step, valid['perplexity'], test['perplexity'],
               result.train_words_per_second, size.total_bytes, result.params, path, result.wall_seconds)
  return model, dataclasses.asdict(result)


def load_trained_lm(checkpoint_dir):
  """Rebuilds a model saved by `train_lm` or `lm_compression.compress_lm` (`<run>/final`), with its weights, after
  checking the files against their digest. Factorized models come back factorized; pruned ones (sparse storage)
  and quantized ones (integer storage) come back as dense float weights, zeros and de-quantized values included.

  Returns:
    (model, LmConfig, LmVocabulary).
  """
  meta_path = os.path.join(checkpoint_dir, 'config.json')
  if not os.path.exists(meta_path):
    raise CheckpointNotFoundError(f'no trained language model at {checkpoint_dir} (expected {meta_path})')
  meta = io_utils.read_json(meta_path, 'checkpoint config')
  data_dir = io_utils.relocated_data_dir(meta['config']['data_dir'], lm_config.PTB_DIR, lm_config.REPO_ROOT)
  config = LmConfig(**{**meta['config'], 'data_dir': data_dir})
  vocabulary = lm_data.LmVocabulary.load(os.path.join(checkpoint_dir, meta['vocabulary']))
  model_config = meta['model']
  factorization = LmFactorization(**model_config.get('factorization', {}))
  if model_config.get('embedding_rank') is not None:  # written before LmFactorization existed
    factorization = dataclasses.replace(factorization, embedding_rank=model_config['embedding_rank'])
  model = lm_models.build_lm(config, len(vocabulary), factorization=factorization)
  storage = meta.get('storage', 'dense')
  if storage == 'dense':
    model_size.restore_inference_checkpoint(model, checkpoint_dir)
  else:
    model_size.verify_inference_checkpoint(checkpoint_dir)
    if storage == 'sparse':
      pruning.restore_sparse(model, checkpoint_dir)
    elif storage == 'quantized':
      quantization.restore_dequantized(model, checkpoint_dir)
    else:
      raise CheckpointNotFoundError(f'{meta_path}: unknown storage {storage!r} (dense, sparse or quantized)')
  return model, config, vocabulary
