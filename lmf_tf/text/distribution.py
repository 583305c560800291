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

import tensorflow as tf

from lmf_tf.errors import ConfigError

STRATEGIES = ('default', 'mirrored', 'multi_worker')


def create_strategy(name='default', cpu_devices=None):
  """The `tf.distribute.Strategy` called `name`. `cpu_devices` splits the CPU into that many logical devices first,
  which must happen before TensorFlow runs its first operation in the process.

  Raises:
    ConfigError: for an unknown name, or `cpu_devices` asked too late (TensorFlow already initialised).
  """
  if name not in STRATEGIES:
    raise ConfigError(f'--strategy={name!r}; choose one of {", ".join(STRATEGIES)}')
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
    return tf.distribute.MultiWorkerMirroredStrategy()
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
