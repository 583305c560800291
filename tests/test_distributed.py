"""Training, the online swap, checkpointing and resume under `--strategy=mirrored` on two logical CPU devices.

Logical devices must be configured before TensorFlow starts, so each run is its own process (scripts/train.py).
"""

import json
import os
import subprocess
import sys

import pytest

from lmf_tf.text import distribution
from lmf_tf.text import trained_models
from lmf_tf.errors import ConfigError


def _train(repo_root, tiny_config, **flags):
  args = {**tiny_config, 'model': 'lstm', 'seed': 7, 'epochs': 2, 'reduction': 50, 'compress_at_step': 5,
          'strategy': 'mirrored', 'cpu_devices': 2, **flags}
  return subprocess.run([sys.executable, os.path.join(repo_root, 'scripts', 'train.py')]
                        + [f'--{k}={v}' for k, v in args.items()],
                        env=dict(os.environ, PYTHONPATH=repo_root, TF_CPP_MIN_LOG_LEVEL='3'),
                        capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_mirrored_training_swap_checkpoint_and_resume(tiny_config, repo_root):
  first = _train(repo_root, tiny_config, stop_after_epoch=1)
  assert first.returncode == 0, first.stderr[-3000:]
  resumed = _train(repo_root, tiny_config, resume=True)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  (name,) = os.listdir(tiny_config['results_dir'])
  assert name.startswith('sst2_lstm_R50_h') and name.endswith('_seed7.json')
  results = json.load(open(os.path.join(tiny_config['results_dir'], name)))
  assert [h['epoch'] for h in results['history']] == [1, 2] and results['rank'] is not None
  assert results['data']['replicas'] == 2  # trained under the strategy, on both logical devices
  assert results['compression']['swap_step'] == 5 and results['history'][0]['rank'] == results['rank']  # in fit
  model, _, _ = trained_models.load_trained_model(results['checkpoint_dir'])  # loads without any strategy
  assert model.get_layer('word_embedding').rank == results['rank']


def test_unknown_strategy():
  with pytest.raises(ConfigError, match='--strategy'):
    distribution.create_strategy('tpu')


class _Resolver:
  def __init__(self, task_type, task_id):
    self.task_type, self.task_id = task_type, task_id


class _Strategy:
  def __init__(self, resolver=None):
    self.cluster_resolver = resolver


def test_only_the_chief_writes_the_run_directories():
  from lmf_tf.text.config import TrainConfig  # pylint: disable=g-import-not-at-top
  config = TrainConfig(workdir='ck', results_dir='res')
  assert distribution.is_chief(_Strategy()) and distribution.is_chief(_Strategy(_Resolver('worker', 0)))
  assert distribution.is_chief(_Strategy(_Resolver('chief', 0)))
  assert distribution.worker_config(config, _Strategy(_Resolver('worker', 0))) is config
  other = distribution.worker_config(config, _Strategy(_Resolver('worker', 2)))
  scratch = os.path.join('ck', '.worker2')
  assert (other.workdir, other.results_dir) == (scratch, os.path.join(scratch, 'results'))


def test_multi_worker_cluster_on_this_machine():
  from lmf_tf.harness import multi_worker  # pylint: disable=g-import-not-at-top
  ports = multi_worker.free_ports(3)
  assert len(set(ports)) == 3 and all(p > 0 for p in ports)
  config = json.loads(multi_worker.tf_config(ports, 2))
  assert config == {'cluster': {'worker': [f'127.0.0.1:{p}' for p in ports]}, 'task': {'type': 'worker', 'index': 2}}


@pytest.mark.parametrize('flag, value', [('collective_timeout', 0), ('threads', 0)])
def test_multi_worker_settings_are_checked(flag, value):
  from lmf_tf.text.config import TrainConfig  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match=f'--{flag} must be'):
    TrainConfig(**{flag: value}).validate()
