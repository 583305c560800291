"""Distributed training through `tf.distribute`: the strategy a run trains under.

  - 'default': no distribution (one device).
  - 'mirrored': `tf.distribute.MirroredStrategy` over every local GPU, or, with `cpu_devices=N`, over N logical CPU
    devices (for tests and demonstrations on a machine without GPUs). Each global batch is split across the
    replicas and their gradients are summed (all-reduce), so results match one device up to float rounding and
    dropout draws.
  - 'multi_worker': `tf.distribute.MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG` environment
    variable of each worker (cluster addresses and this worker's index); every worker runs the same command.

Model building, the online compression swap (new factor variables, a new optimizer) and checkpoint restores run
inside `strategy.scope()`, so their variables are mirrored too.
"""

import dataclasses
import os
import types

import tensorflow as tf

from lmf_tf.errors import ConfigError

STRATEGIES = ('default', 'mirrored', 'multi_worker')


def create_strategy(name='default', cpu_devices=None, collective_timeout=None, threads=None):
  """The `tf.distribute.Strategy` called `name`. `cpu_devices` splits the CPU into that many logical devices first,
  and `threads` caps TensorFlow's thread pools, which must both happen before TensorFlow runs its first operation
  in the process. `collective_timeout` (seconds) bounds each multi-worker collective: a worker whose peer died
  stops with an error instead of waiting for ever.

  Raises:
    ConfigError: for an unknown name, or `cpu_devices` or `threads` asked too late (TensorFlow already
      initialised).
  """
  if name not in STRATEGIES:
    raise ConfigError(f'--strategy={name!r}; choose one of {", ".join(STRATEGIES)}')
  if threads:
    try:
      tf.config.threading.set_intra_op_parallelism_threads(threads)
      tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as e:
      if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        raise ConfigError(f'--threads={threads} must be set before TensorFlow starts ({e})') from None
  if cpu_devices:
    cpu = tf.config.list_physical_devices('CPU')[0]
    try:
      tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    except RuntimeError as e:
      if len(tf.config.list_logical_devices('CPU')) != cpu_devices:
        raise ConfigError(f'--cpu_devices={cpu_devices} must be set before TensorFlow starts ({e})') from None
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'multi_worker':
    _patch_keras_reduce_for_multi_worker()
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout))
  gpus = tf.config.list_logical_devices('GPU')
  devices = [d.name for d in (gpus or tf.config.list_logical_devices('CPU'))]
  return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy):
  """True unless `strategy` is a multi-worker strategy and this process is not its chief (worker 0, or `chief`)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not getattr(resolver, 'task_type', None):
    return True
  return resolver.task_type == 'chief' or (resolver.task_type == 'worker' and resolver.task_id == 0)


def worker_config(config, strategy):
  """`config` for this process: the chief writes to the run's directories; every other worker of a multi-worker
  run writes its (identical) checkpoints and results under `<workdir>/.worker<i>/`, so workers sharing a file
  system never write the same files."""
  if is_chief(strategy):
    return config
  scratch = os.path.join(config.workdir, f'.worker{strategy.cluster_resolver.task_id}')
  return dataclasses.replace(config, workdir=scratch, results_dir=os.path.join(scratch, 'results'))


# Keras 3.15 and MultiWorkerMirroredStrategy (keras-team/keras#20585, open): `fit` fails twice under the strategy.
# (1) `Trainer._maybe_symbolic_build` reduces a per-replica batch of token ids with `strategy.reduce`, which the
# collective strategy cannot convert ("Attempt to convert a value (PerReplica...)"); the build needs shapes only,
# so `prepare_model` makes it read this worker's own part. (2) `reduce_per_replica(..., 'auto')` averages a
# per-replica scalar metric (several devices in a worker) with `strategy.reduce('MEAN', v, axis=0)`, which fails
# on a 0-d value; the patch below averages over the replicas without an axis, which is what was meant. With one
# device per worker, Keras receives plain tensors and passes them on: the per-batch logs are then this worker's
# own, while the epoch's logs are read from the metrics, which aggregate over every worker. Training itself is
# checked by tests/test_multi_worker.py against a single-process run of the same global batch.


def _patch_keras_reduce_for_multi_worker():
  from keras.src.backend.tensorflow import trainer  # pylint: disable=g-import-not-at-top
  if getattr(trainer.reduce_per_replica, 'lmf_tf_patched', False):
    return
  original = trainer.reduce_per_replica

  def reduce_per_replica(values, strategy, reduction):
    if reduction in ('auto', 'mean') and trainer._collective_all_reduce_multi_worker(strategy):  # pylint: disable=protected-access
      return tf.nest.map_structure(
          lambda v: strategy.reduce('MEAN', v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v,
          values)
    return original(values, strategy, reduction)

  reduce_per_replica.lmf_tf_patched = True
  trainer.reduce_per_replica = reduce_per_replica


def prepare_model(model, strategy):
  """Lets `model.fit` run under a multi-worker `strategy` (see above); a no-op otherwise."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return model

  def local_symbolic_build(self, iterator=None, data_batch=None):
    if iterator is not None:
      for _, _, batches in iterator:
        data_batch = tf.nest.map_structure(
            lambda v: (self.distribute_strategy.experimental_local_results(v)[0]
                       if isinstance(v, tf.distribute.DistributedValues) else v), next(batches))
        break
    with self.distribute_strategy.scope():
      self._symbolic_build(data_batch=data_batch)  # pylint: disable=protected-access

  model._maybe_symbolic_build = types.MethodType(local_symbolic_build, model)  # pylint: disable=protected-access
  return model
