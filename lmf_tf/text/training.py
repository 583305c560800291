"""Train, compress online, evaluate and report a text classifier: `train_and_evaluate(config)`."""

import dataclasses
import functools
import os
import platform
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import callbacks as lmf_callbacks
from lmf_tf import compression, datasets, distribution, embeddings, input_pipeline, io_utils, model_size, models
from lmf_tf import schedules
from lmf_tf.config import TrainConfig
from lmf_tf.errors import CheckpointNotFoundError, ConfigError, LmfError


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


@dataclasses.dataclass
class PreparedData:
  dev: tf.data.Dataset  # bucketed batches (int32[b, T], int64[b])
  test: tf.data.Dataset
  vocabulary: input_pipeline.Vocabulary
  num_classes: int
  sizes: dict
  steps_per_epoch: int
  encoded_train: tf.data.Dataset  # unbatched (int32[length], int64) pairs
  batch_size: int
  seed: int
  bucket_boundaries: tuple
  encoded_test: tf.data.Dataset  # unbatched (int32[length], int64) pairs, in file order

  def train_epochs(self, first_epoch, last_epoch):
    """Shuffled, bucketed training batches for epochs [first_epoch, last_epoch) (`input_pipeline.training_batches`)."""
    return input_pipeline.training_batches(self.encoded_train, self.batch_size, self.seed, first_epoch, last_epoch,
                                           self.bucket_boundaries, num_examples=self.sizes['train'])


def prepare_data(config, vocabulary=None):
  """Loads the splits, builds the vocabulary from train (unless given) and the batched pipelines."""
  splits = datasets.load_splits(config.dataset, train_level=config.train_level, source_dir=config.data_dir,
                                tfds_dir=config.tfds_dir, text_key=config.tfds_text_key,
                                label_key=config.tfds_label_key, split_names=tuple(config.tfds_splits.split(',')))
  train = splits.train
  if config.max_train_examples:
    train = train.take(config.max_train_examples)
  vocabulary = vocabulary or input_pipeline.Vocabulary.build(train)
  boundaries = input_pipeline.DEFAULT_BUCKET_BOUNDARIES if config.bucket else ()
  encoded = {name: input_pipeline.encode_dataset(ds, vocabulary, config.max_length)
             for name, ds in (('train', train), ('dev', splits.validation), ('test', splits.test))}
  sizes = {}
  for name, ds in encoded.items():
    count, lowest = ds.reduce((0, tf.constant(0, tf.int64)), lambda acc, x: (acc[0] + 1, tf.minimum(acc[1], x[1])))
    sizes[name] = int(count)
    if lowest < 0:  # e.g. GLUE's test split, whose labels are hidden (-1)
      raise ConfigError(f'the {name} split of --dataset={config.dataset} has unlabelled examples (label -1); '
                        'choose labelled splits with --tfds_splits')
  logging.info('Data %s (%s): train %d, dev %d, test %d examples; vocabulary %d (with <pad>, <unk>).',
               config.dataset, config.train_level, sizes['train'], sizes['dev'], sizes['test'], len(vocabulary))
  steps_per_epoch = input_pipeline.count_batches(encoded['train'], config.batch_size, boundaries)
  return PreparedData(input_pipeline.batches(encoded['dev'], config.batch_size, boundaries),
                      input_pipeline.batches(encoded['test'], config.batch_size, boundaries), vocabulary,
                      splits.num_classes, sizes, steps_per_epoch, encoded['train'], config.batch_size, config.seed,
                      boundaries, encoded['test'])


def model_config(config, vocab_size, num_classes, embedding_dim, rank=None):
  """The architecture (`models.ModelConfig`) a run's `TrainConfig` asks for, with a V x d (or rank-k) embedding."""
  return models.ModelConfig(vocab_size=vocab_size, num_classes=num_classes, embedding_dim=embedding_dim,
                            lstm_units=config.lstm_units, dropout=config.dropout, word_dropout=config.word_dropout,
                            l2=config.l2, embedding_rank=rank)


def build_model(config, vocabulary, num_classes, rank=None):
  """The classifier named by `config.model`, with GloVe (LSTM) or random (DAN-RAND) embeddings; logs its size."""
  spec = models.get_model_spec(config.model)
  initial, coverage = None, None
  dim = config.embedding_dim
  if spec.uses_pretrained_embeddings:
    spec_data = datasets.LOCAL_DATASETS.get(config.dataset, datasets.LOCAL_DATASETS['sst2'])
    path = config.embeddings_path or os.path.join(config.data_dir, spec_data.default_embeddings)
    vectors = embeddings.read_word_vectors(path, vocabulary, seed=config.seed)
    initial, dim, coverage = vectors.matrix, vectors.matrix.shape[1], vectors.coverage
  offline_info = {}
  if config.offline:  # Baseline (paper §3.3): a V x k embedding from the start, no projection back to d.
    k = compression.target_rank(len(vocabulary), dim, config.reduction, config.rank)  # same k as online
    offline_info = {'rank': k, 'full_dim': dim}
    if initial is not None:
      svd = compression.truncated_svd(initial, k)
      initial = svd.left  # GloVe projected onto its top-k right singular vectors: W V_k = U_k Σ_k
      offline_info['energy_kept'] = svd.energy_kept
    logging.info('Offline reduction: embedding %d x %d -> %d x %d before training.', len(vocabulary), dim,
                 len(vocabulary), k)
    dim = k
  model = spec.build(model_config(config, len(vocabulary), num_classes, dim, rank), initial)
  model.compile(optimizer=create_optimizer(config), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  logging.info('Model %s: %d parameters (embedding %d x %d).', model.name, models.count_params(model),
               len(vocabulary), dim)
  return model, {'embedding_dim': dim, 'embedding_coverage': coverage,
                 **{f'offline_{key}': value for key, value in offline_info.items()}}



def train_and_evaluate(config: TrainConfig):
  """Trains `config.model` on `config.dataset`, compresses its embedding online if asked, reports on dev/test.

  The best epoch is chosen on dev among epochs in which the model has its final form (compressed, for a
  compressed run); test accuracy is reported at that epoch. Writes, atomically:
    <workdir>/<run>/best/model.{data-*,index,meta}: inference checkpoint of the best epoch (size in the results);
    <workdir>/<run>/train/: per-epoch training state for `resume`;
    <results_dir>/<run>.json: config, per-epoch history, best epoch, rank, parameter counts, bytes, wall time.
  Returns:
    (model, results dict).
  Raises:
    RunLockedError: if another live process is training the same run (same workdir and run name).
  """
  config = config.resolved().validate()
  strategy = distribution.create_strategy(config.strategy, config.cpu_devices)  # before any TensorFlow op
  config = distribution.worker_config(config, strategy)  # only the chief writes the run's files
  with io_utils.run_lock(os.path.join(config.workdir, config.run_name)):
    return _train_and_evaluate(config, strategy)


def _train_and_evaluate(config, strategy):
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  start = time.time()
  run_dir = os.path.join(config.workdir, config.run_name)
  train_dir, best_dir = os.path.join(run_dir, 'train'), os.path.join(run_dir, 'best')
  state = lmf_callbacks.read_state(train_dir) if config.resume else None

  # Load and check everything before anything on disk is touched: bad input must not cost an earlier run.
  vocab_path = os.path.join(run_dir, 'vocab.txt')
  keras.utils.set_random_seed(config.seed)  # The shuffle's op seed is combined with this global seed.
  data = prepare_data(config, input_pipeline.Vocabulary.load(vocab_path) if state else None)
  # Again after the data: a first-time tensorflow-datasets preparation draws from the global generators.
  keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    model, embedding_info = build_model(config, data.vocabulary, data.num_classes)
  if strategy.num_replicas_in_sync > 1:
    logging.info('Training under %s with %d replicas; each global batch of %d is split between them.',
                 type(strategy).__name__, strategy.num_replicas_in_sync, config.batch_size)
  params_uncompressed = models.count_params(model)
  layer = models.word_embedding(model)
  if config.compress:  # R / rank against V and d, and the swap step against the length of training.
    compression.target_rank(layer.input_dim, layer.output_dim, config.reduction, config.rank)
    total_steps = config.epochs * data.steps_per_epoch
    if config.compress_at_step is not None and config.compress_at_step >= total_steps:
      raise ConfigError(f'--compress_at_step={config.compress_at_step} is never reached: training runs '
                        f'{total_steps} steps ({config.epochs} epochs x {data.steps_per_epoch} batches)')

  if state is None and os.path.exists(os.path.join(train_dir, lmf_callbacks.STATE_FILE)):
    logging.warning('Starting %s afresh over an earlier run in %s (use --resume to continue it).',
                    config.run_name, run_dir)
    shutil.rmtree(train_dir)
  data.vocabulary.save(vocab_path)
  with strategy.scope():
    if state and state.get('rank'):
      compression.compress_layer(layer, rank=state['rank'])
      compression.rebuild_optimizer(model)
    if state:
      lmf_callbacks.restore_training_state(model, train_dir, state)

  batches_done = state.get('batches_done', 0) if state else 0
  if batches_done and state.get('steps_per_epoch') != data.steps_per_epoch:
    raise ConfigError(f'--resume mid-epoch: the saved run has {state.get("steps_per_epoch")} batches per epoch, this '
                      f'one {data.steps_per_epoch}; resume with the same --batch_size and --max_train_examples')
  resumed_from = os.path.join(train_dir, state['checkpoint']) if batches_done else None
  callbacks = [lmf_callbacks.RestoreMetrics(resumed_from),
               lmf_callbacks.StopOnNonFiniteLoss(train_dir, config.checkpoint_every_steps)]
  online = None
  if config.compress:
    online = compression.OnlineCompression(reduction=config.reduction, rank=config.rank,
                                           at_step=config.compress_at_step, at_epoch=config.compress_at_epoch)
    callbacks.append(online)
  metadata = {'config': dataclasses.asdict(config), 'vocabulary': os.path.relpath(vocab_path, best_dir),
              'num_classes': data.num_classes, 'embedding_dim': embedding_info['embedding_dim']}
  evaluation = lmf_callbacks.EpochEvaluation(
      data.dev, data.test, best_dir,
      eligible=lambda m: (lmf_callbacks.embedding_rank(m) is not None) == config.compress,
      total_epochs=config.epochs, metadata=metadata,
      history=state['history'] if state else None, best=state['best'] if state else None)
  compression_report = dict(state.get('compression', {})) if state else {}

  curve = None
  if config.eval_every_steps:
    curve = lmf_callbacks.DevCurve(data.dev, config.eval_every_steps, (state or {}).get('dev_curve'))
    callbacks.append(curve)

  def extra_state():
    if online is not None and online.reports:
      compression_report.update({**online.reports[0].as_dict(), 'swap_step': online.swap_step})
    return {'compression': compression_report, 'dev_curve': curve.points if curve else None,
            'wall_seconds': (state or {}).get('wall_seconds', 0.0) + time.time() - start}

  callbacks += [evaluation, lmf_callbacks.TrainingState(train_dir, evaluation, extra_state,
                                                        config.checkpoint_every_steps, data.steps_per_epoch)]
  if config.tensorboard:
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, 'tensorboard'), update_freq='epoch',
                                                 profile_batch=0))
  epoch = state['epoch'] if state else 0
  fit = functools.partial(model.fit, callbacks=callbacks, verbose=0, shuffle=False)  # The pipeline shuffles.
  if batches_done and epoch < config.epochs:  # Resumed mid-epoch: the rest of that epoch, after its last batch.
    fit(data.train_epochs(epoch, epoch + 1).skip(batches_done), epochs=epoch + 1, initial_epoch=epoch,
        steps_per_epoch=data.steps_per_epoch - batches_done)
    epoch += 1
  if epoch < config.epochs:
    fit(data.train_epochs(epoch, config.epochs), epochs=config.epochs, initial_epoch=epoch,
        steps_per_epoch=data.steps_per_epoch)
  extra = extra_state()
  if evaluation.best is None:
    raise ConfigError(
        f'the model was never compressed: --compress_at_step={config.compress_at_step} lies beyond the '
        f'{int(model.optimizer.iterations.numpy())} steps of training')
  results = {
      'run': config.run_name,
      'method': config.method,
      'config': dataclasses.asdict(config),
      'data': {**data.sizes, 'vocab_size': len(data.vocabulary), **embedding_info},
      'history': evaluation.history,
      'best': evaluation.best,
      'test_accuracy': evaluation.best['test_accuracy'],
      'dev_accuracy': evaluation.best['dev_accuracy'],
      'best_epoch': evaluation.best['epoch'],
      'rank': evaluation.best['rank'],
      'compression': extra['compression'] or None,
      'dev_curve': extra['dev_curve'],
      'params': {'uncompressed_model': params_uncompressed, 'model': evaluation.best['num_params'],
                 'embedding': embedding_params(models.word_embedding(model))},
      'checkpoint_bytes': evaluation.best['checkpoint'],
      'checkpoint_dir': os.path.abspath(best_dir),
      'wall_seconds': round(extra['wall_seconds'], 1),
      'environment': {'tensorflow': tf.__version__, 'keras': keras.__version__, 'numpy': np.__version__,
                      'python': platform.python_version(), 'machine': platform.machine(),
                      'cpus': os.cpu_count()},
  }
  path = os.path.join(config.results_dir, config.run_name + '.json')
  io_utils.write_json_atomic(path, results)
  logging.info('Best dev epoch %d: dev %.4f, test %.4f; checkpoint %d bytes (%d params); wrote %s in %.0fs.',
               results['best_epoch'], results['dev_accuracy'], results['test_accuracy'],
               results['checkpoint_bytes']['total_bytes'], results['params']['model'], path, results['wall_seconds'])
  return model, results


def load_trained_model(checkpoint_dir):
  """Rebuilds a model saved by `train_and_evaluate` (`<run>/best`) with its rank and weights, for inference.

  Returns:
    (model, vocabulary, TrainConfig).
  Raises:
    CheckpointNotFoundError: naming the directory, if it holds no checkpoint.
  """
  meta_path = os.path.join(checkpoint_dir, 'config.json')
  if not os.path.exists(meta_path):
    raise CheckpointNotFoundError(f'no trained model at {checkpoint_dir} (expected {meta_path})')
  model_size.verify_inference_checkpoint(checkpoint_dir)
  meta = io_utils.read_json(meta_path, 'checkpoint config')
  data_dir = io_utils.relocated_data_dir(meta['config']['data_dir'], datasets.DATA_DIR, datasets.REPO_ROOT)
  config = TrainConfig(**{**meta['config'], 'resume': False, 'data_dir': data_dir})
  vocabulary = input_pipeline.Vocabulary.load(os.path.join(checkpoint_dir, meta['vocabulary']))
  spec = models.get_model_spec(config.model)
  model = spec.build(model_config(config, len(vocabulary), meta['num_classes'], meta['embedding_dim'], meta['rank']))
  if meta.get('method') == 'keras_int8':
    raise ConfigError(f'{checkpoint_dir} holds a Keras int8 model; it is measured, not reloaded, by lmf_tf')
  if meta.get('quantized'):  # int8/int16 tensors and scales, de-quantized on load
    from lmf_tf import quantization  # pylint: disable=g-import-not-at-top  (quantization imports training's deps)
    quantization.restore_dequantized(model, checkpoint_dir)
  else:
    model_size.restore_inference_checkpoint(model, checkpoint_dir)
  model.compile(loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  return model, vocabulary, config


def evaluate_checkpoint(checkpoint_dir):
  """Accuracy of a saved model on its data set's dev and test splits, and its checkpoint size."""
  model, vocabulary, config = load_trained_model(checkpoint_dir)
  data = prepare_data(config, vocabulary)
  return {
      'dev_accuracy': model.evaluate(data.dev, verbose=0, return_dict=True)['accuracy'],
      'test_accuracy': model.evaluate(data.test, verbose=0, return_dict=True)['accuracy'],
      'rank': lmf_callbacks.embedding_rank(model),
      'checkpoint_bytes': model_size.measure(checkpoint_dir, models.count_params(model)).as_dict(),
  }


def embedding_params(layer):
  return int(sum(np.prod(w.shape) for w in layer.weights))


def run_or_exit(fn, *args, **kwargs):
  """Runs `fn`; an `LmfError` or missing file becomes a one-line message and exit status 1."""
  try:
    return fn(*args, **kwargs)
  except (LmfError, FileNotFoundError) as e:
    logging.error('%s', e)
    raise SystemExit(f'error: {e}') from None
