"""Train, compress online, evaluate and report a text classifier: `train_and_evaluate(config)`."""

import contextlib
import dataclasses
import functools
import logging as std_logging
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import io_utils, results
from lmf_tf.compression import distillation, factorization, online, schedules
from lmf_tf.compression import frequency as lmf_frequency
from lmf_tf.compression.rank import target_rank
from lmf_tf.errors import CheckpointNotFoundError, ConfigError, WorkerLostError
from lmf_tf.text import callbacks as lmf_callbacks
from lmf_tf.text import catalog, distribution, input_pipeline, models, word_vectors
from lmf_tf.text.config import TrainConfig


def learning_rate(config):
  """The learning rate or `LearningRateSchedule` named by `config.lr_schedule`."""
  if config.lr_schedule == 'calr':
    return schedules.CyclicallyAnnealedLearningRate(config.lr_lower, config.lr_upper, config.lr_step_size,
                                                    config.lr_decay)
  if config.lr_schedule == 'clr':
    return schedules.CyclicalLearningRate(config.lr_lower, config.lr_upper, config.lr_step_size)
  return config.learning_rate


def create_optimizer(config):
  lr = learning_rate(config)
  if config.optimizer == 'adam':
    return keras.optimizers.Adam(lr)
  if config.optimizer == 'sgd':
    return keras.optimizers.SGD(lr, momentum=0.9)
  return keras.optimizers.Adagrad(lr)


def build_model(config, vocabulary, num_classes, rank=None):
  """The classifier named by `config.model`, with GloVe (LSTM) or random (DAN-RAND) embeddings; logs its size."""
  spec = models.get_model_spec(config.model)
  initial, coverage = None, None
  dim = config.embedding_dim
  if spec.uses_pretrained_embeddings:
    spec_data = catalog.LOCAL_DATASETS.get(config.dataset, catalog.LOCAL_DATASETS['sst2'])
    path = config.embeddings_path or os.path.join(config.data_dir, spec_data.default_embeddings)
    vectors = word_vectors.read_word_vectors(path, vocabulary, seed=config.seed)
    initial, dim, coverage = vectors.matrix, vectors.matrix.shape[1], vectors.coverage
  offline_info = {}
  if config.offline:  # Baseline (paper §3.3): a V x k embedding from the start, no projection back to d.
    k = target_rank(len(vocabulary), dim, config.reduction, config.rank)  # same k as online
    offline_info = {'rank': k, 'full_dim': dim}
    if initial is not None:
      svd = factorization.truncated_svd(initial, k)
      initial = svd.left  # GloVe projected onto its top-k right singular vectors: W V_k = U_k Σ_k
      offline_info['energy_kept'] = svd.energy_kept
    logging.info('Offline reduction: embedding %d x %d -> %d x %d before training.', len(vocabulary), dim,
                 len(vocabulary), k)
    dim = k
  model = spec.build(models.model_config(config, len(vocabulary), num_classes, dim, rank), initial)
  model.compile(optimizer=create_optimizer(config), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  logging.info('Model %s: %d parameters (embedding %d x %d).', model.name, models.count_params(model),
               len(vocabulary), dim)
  return model, {'embedding_dim': dim, 'embedding_coverage': coverage,
                 **{f'offline_{key}': value for key, value in offline_info.items()}}



def online_compression(config):
  """The `OnlineCompression` callback a run's settings ask for (paper §3.1, and the recovery options), or None."""
  if not config.compress:
    return None
  if config.compress_at_dev_peak:
    when = {'at_dev_peak': online.DevPeak('val_accuracy', config.dev_peak_patience, config.compress_at_epoch)}
  elif config.compress_at_step is not None:
    when = {'at_step': config.compress_at_step}
  else:
    when = {'at_epoch': config.compress_at_epoch}
  recovery_lr = {'continue': None, 'restart': 'restart', 'constant': config.recovery_learning_rate}[config.recovery_lr]
  teacher = (None if config.distill_alpha is None else
             distillation.Distillation(config.distill_alpha, config.distill_temperature))
  return online.OnlineCompression(reduction=config.reduction, rank=config.rank, recovery_learning_rate=recovery_lr,
                                  verbose=0,  # the swap is logged, and the terminal shows the log
                                  distillation=teacher, gradual_factors=tuple(config.gradual_factor_list),
                                  frequency=(lmf_frequency.FrequencyRanks(blocks=config.frequency_blocks)
                                             if config.frequency_blocks else None),
                                  gradual_every_steps=config.gradual_every_steps if config.gradual_factors else None,
                                  **when)


def check_previous_run(config, run_dir, resume_dir=None):
  """Refuses to start over a run of the same settings unless asked: `--resume` continues an interrupted one (from
  `resume_dir`, default the run's own `train/`), `--overwrite` deletes its checkpoints first. Nothing of an
  earlier run is deleted otherwise."""
  results = os.path.join(config.results_dir, config.run_name + '.json')
  state = os.path.join(resume_dir or os.path.join(run_dir, 'train'), lmf_callbacks.STATE_FILE)
  if config.overwrite:
    for name in ('train', 'best', 'best.pending'):
      shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
    return
  if config.resume:
    if not os.path.exists(state):
      raise CheckpointNotFoundError(f'--resume: no training checkpoint to resume from ({state} does not exist)')
    return
  if os.path.exists(results):
    raise ConfigError(f'{config.run_name} is done ({results}); --overwrite runs it again (through make: '
                      'ARGS=--overwrite)')
  if os.path.exists(state):
    raise ConfigError(f'{config.run_name} was interrupted earlier ({state}); --resume continues it, --overwrite starts '
                      'it afresh (its checkpoints are deleted); through make: ARGS=--resume or ARGS=--overwrite')


def train_and_evaluate(config: TrainConfig, progress=False):
  """Trains `config.model` on `config.dataset`, compresses its embedding online if asked, reports on dev/test.

  The best epoch is chosen on dev among epochs in which the model has its final form (compressed to its final
  rank, for a compressed run); test accuracy is reported at that epoch. Writes, atomically:
    <workdir>/<run>/best/model.{data-*,index,meta}: inference checkpoint of the best epoch (size in the results);
    <workdir>/<run>/train/: per-epoch training state for `resume`;
    <results_dir>/<run>.json: config, per-epoch history, best epoch, rank, parameter counts, bytes, wall time.
  Every setting is checked before any data is loaded; a run that fails before training leaves no run directory.
  Returns:
    (model, results dict).
  Raises:
    RunLockedError: if another live process is training the same run (same workdir and run name).
    ConfigError: for a bad setting, or a run of the same settings already done or interrupted (see
      `check_previous_run`).
  With `progress`, a progress bar runs within each epoch (for a terminal). Everything logged during the run, from
  every library, also goes to `<workdir>/<run>/train.log`.
  """
  config = chief_config = config.validate()
  strategy = distribution.create_strategy(config.strategy, config.cpu_devices, config.collective_timeout,
                                          config.threads)  # before any TensorFlow op
  config = distribution.worker_config(config, strategy)  # only the chief writes the run's files
  run_dir = os.path.join(config.workdir, config.run_name)
  # Every worker of a multi-worker run resumes from the chief's state when it can read it (shared storage): the
  # workers' own states could be one save apart if a worker died between the chief's save and its own.
  chief_train = os.path.join(chief_config.workdir, chief_config.run_name, 'train')
  resume_dir = (chief_train if not distribution.is_chief(strategy) and config.resume
                and os.path.exists(os.path.join(chief_train, lmf_callbacks.STATE_FILE)) else None)
  created = not os.path.exists(run_dir)
  try:
    with io_utils.run_lock(run_dir), _log_file(os.path.join(run_dir, 'train.log')):
      check_previous_run(config, run_dir, resume_dir)
      return _train_and_evaluate(config, strategy, run_dir, progress, resume_dir)
  except BaseException as e:
    if created and os.path.isdir(run_dir) and set(os.listdir(run_dir)) <= {'.lock', 'vocab.txt', 'train.log'}:
      shutil.rmtree(run_dir, ignore_errors=True)  # failed before anything worth keeping was written
    if config.strategy == 'multi_worker' and isinstance(e, (
        tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
        tf.errors.AbortedError)):
      raise WorkerLostError(
          f'a worker of the multi-worker run stopped answering ({type(e).__name__}, within --collective_timeout='
          f'{config.collective_timeout:g} s); {run_dir}/train keeps the last saved state: restart every worker '
          'with --resume') from None
    raise


@contextlib.contextmanager
def _log_file(path):
  """Appends every log record (any library, any level from INFO) to `path` while the block runs."""
  handler = std_logging.FileHandler(path, encoding='utf-8')
  handler.setFormatter(std_logging.Formatter('%(asctime)s %(levelname)s %(name)s %(filename)s:%(lineno)d] %(message)s'))
  root = std_logging.getLogger()
  root.addHandler(handler)
  try:
    yield
  finally:
    root.removeHandler(handler)
    handler.close()


def _train_and_evaluate(config, strategy, run_dir, progress=False, resume_dir=None):
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  start = time.time()
  train_dir, best_dir = os.path.join(run_dir, 'train'), os.path.join(run_dir, 'best')
  source_dir = resume_dir or train_dir  # where the state to resume from is
  state = lmf_callbacks.read_state(source_dir) if config.resume else None

  # Load and check everything before anything on disk is touched: bad input must not cost an earlier run.
  vocab_path = os.path.join(run_dir, 'vocab.txt')
  logging.info('%s: loading %s%s...', config.run_name, config.dataset,
               f' ({config.train_level})' if config.train_level else '')
  keras.utils.set_random_seed(config.seed)  # The shuffle's op seed is combined with this global seed.
  saved_vocab = os.path.join(os.path.dirname(source_dir), 'vocab.txt')  # the vocabulary of the state resumed
  data = input_pipeline.prepare_data(config, input_pipeline.Vocabulary.load(saved_vocab) if state else None)
  # Again after the data: a first-time tensorflow-datasets preparation draws from the global generators.
  keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    model, embedding_info = build_model(config, data.vocabulary, data.num_classes)
  distribution.prepare_model(model, strategy)
  if strategy.num_replicas_in_sync > 1:
    logging.info('Training under %s with %d replicas; each global batch of %d is split between them.',
                 type(strategy).__name__, strategy.num_replicas_in_sync, config.batch_size)
  params_uncompressed = models.count_params(model)
  online_callback = online_compression(config)
  if online_callback is not None:  # R / rank against V and d, and the swap step against the length of training.
    layer = models.word_embedding(model)
    target_rank(layer.input_dim, layer.output_dim, config.reduction, config.rank, names=('--reduction', '--rank'))
    total_steps = config.epochs * data.steps_per_epoch
    if config.compress_at_step is not None and config.compress_at_step >= total_steps:
      raise ConfigError(f'--compress_at_step={config.compress_at_step} is never reached: training runs '
                        f'{total_steps} steps ({config.epochs} epochs x {data.steps_per_epoch} batches)')
    online_callback.prepare(model)  # the teacher / best-on-dev copy is made of the uncompressed model
    first = (config.compress_at_step if config.compress_at_step is not None
             else (config.compress_at_epoch or 0) * data.steps_per_epoch)
    last_swap = first + (online_callback.swap_count - 1) * config.gradual_every_steps
    if online_callback.swap_count > 1 and not config.compress_at_dev_peak and last_swap >= total_steps:
      raise ConfigError(f'--gradual_factors={config.gradual_factors}: the last swap, after step {last_swap}, leaves '
                        f'no step to train the final rank ({total_steps} steps in all): take fewer '
                        '--gradual_every_steps or swap earlier')

  data.vocabulary.save(vocab_path)
  if state:
    with strategy.scope():
      if online_callback is not None:
        online_callback.restore_state(online_state(state))
      lmf_callbacks.restore_training_state(model, source_dir, state, extra_variables(online_callback))

  batches_done = state.get('batches_done', 0) if state else 0
  if batches_done and state.get('steps_per_epoch') != data.steps_per_epoch:
    raise ConfigError(f'--resume mid-epoch: the saved run has {state.get("steps_per_epoch")} batches per epoch, this '
                      f'one {data.steps_per_epoch}; resume with the same --batch_size and --max_train_examples')
  resumed_from = os.path.join(source_dir, state['checkpoint']) if batches_done else None
  metadata = {'config': dataclasses.asdict(config), 'vocabulary': os.path.relpath(vocab_path, best_dir),
              'num_classes': data.num_classes, 'embedding_dim': embedding_info['embedding_dim']}
  # Dev accuracy is put into the epoch's logs (`val_accuracy`) before the swap callback reads it (at_dev_peak).
  evaluation = lmf_callbacks.EpochEvaluation(
      data.dev, data.test, best_dir, eligible=lambda m: online_callback is None or online_callback.done,
      total_epochs=config.epochs, metadata=metadata,
      history=state['history'] if state else None, best=state['best'] if state else None)
  compression_report = dict(state.get('compression') or {}) if state else {}
  curve = None
  if config.eval_every_steps:
    curve = lmf_callbacks.DevCurve(data.dev, config.eval_every_steps, (state or {}).get('dev_curve'))

  def extra_state():
    if online_callback is not None and online_callback.reports:
      compression_report.update({**online_callback.reports[0].as_dict(), 'swap_step': online_callback.swap_step,
                                 'swap_steps': online_callback.swap_steps})
    return {'compression': compression_report, 'dev_curve': curve.points if curve else None,
            'online': online_callback.get_state() if online_callback else None,
            'wall_seconds': (state or {}).get('wall_seconds', 0.0) + time.time() - start}

  callbacks = [lmf_callbacks.RestoreMetrics(resumed_from),
               lmf_callbacks.StopOnNonFiniteLoss(train_dir, config.checkpoint_every_steps), evaluation]
  callbacks += [c for c in (online_callback, curve) if c is not None]
  if progress:
    callbacks.insert(0, lmf_callbacks.EpochProgress(data.steps_per_epoch))
  callbacks.append(lmf_callbacks.TrainingState(train_dir, evaluation, extra_state, config.checkpoint_every_steps,
                                               data.steps_per_epoch, extra_variables(online_callback)))
  if config.tensorboard:
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, 'tensorboard'), update_freq='epoch',
                                                 profile_batch=0))
  epoch = state['epoch'] if state else 0
  last = min(config.epochs, config.stop_after_epoch or config.epochs)
  fit = functools.partial(model.fit, callbacks=callbacks, verbose=0, shuffle=False)  # The pipeline shuffles.
  if batches_done and epoch < last:  # Resumed mid-epoch: the rest of that epoch, after its last batch.
    if online_callback is not None:
      online_callback.expect_more_fits = epoch + 1 < last
    fit(data.train_epochs(epoch, epoch + 1).skip(batches_done), epochs=epoch + 1, initial_epoch=epoch,
        steps_per_epoch=data.steps_per_epoch - batches_done)
    if online_callback is not None:
      online_callback.expect_more_fits = False
    epoch += 1
  if epoch < last:
    fit(data.train_epochs(epoch, last), epochs=last, initial_epoch=epoch, steps_per_epoch=data.steps_per_epoch)
  if last < config.epochs:
    logging.info('Stopped after epoch %d of %d (--stop_after_epoch); --resume continues %s.', last, config.epochs,
                 config.run_name)
    return model, None
  extra = extra_state()
  if evaluation.best is None:
    raise ConfigError(f'the model was never compressed to its final rank within the {config.epochs} epochs '
                      f'({int(model.optimizer.iterations.numpy())} steps): swap earlier (--compress_at_step/'
                      '--compress_at_epoch) or take fewer --gradual_every_steps')
  result = results.ClassifierResult(
      run=config.run_name, method=config.method, recipe=config.recipe or 'paper',
      non_default_settings=config.non_default_settings(), config=dataclasses.asdict(config),
      data={**data.sizes, 'vocab_size': len(data.vocabulary), 'replicas': strategy.num_replicas_in_sync,
            **embedding_info}, history=evaluation.history,
      best=evaluation.best, test_accuracy=evaluation.best['test_accuracy'],
      dev_accuracy=evaluation.best['dev_accuracy'], best_epoch=evaluation.best['epoch'], rank=evaluation.best['rank'],
      compression=extra['compression'] or None, dev_curve=extra['dev_curve'],
      params={'uncompressed_model': params_uncompressed, 'model': evaluation.best['num_params'],
              'embedding': models.count_params(models.word_embedding(model))},
      checkpoint_bytes=evaluation.best['checkpoint'], checkpoint_dir=os.path.abspath(best_dir),
      wall_seconds=round(extra['wall_seconds'], 1), environment=results.environment())
  path = results.write(result, config.results_dir)
  logging.info('Best dev epoch %d: dev %.4f, test %.4f; checkpoint %d bytes (%d params); wrote %s in %.0fs.',
               result.best_epoch, result.dev_accuracy, result.test_accuracy, result.checkpoint_bytes['total_bytes'],
               result.params['model'], path, result.wall_seconds)
  return model, dataclasses.asdict(result)


def online_state(state):
  """The `OnlineCompression` state saved with a training state (older states recorded only the swap step)."""
  if state.get('online'):
    return state['online']
  swap = (state.get('compression') or {}).get('swap_step')
  return {'swap_steps': [] if swap is None else [swap], 'best': None, 'waited': 0, 'ranks': []}


def extra_variables(online_callback):
  """Variables to checkpoint besides the model's and the optimizer's: the teacher / best-on-dev copy's."""
  return (lambda: online_callback.variables) if online_callback is not None else (lambda: [])
