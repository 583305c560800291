"""Shared fixtures: quiet TensorFlow, a tiny vendored-style data folder, tiny configs."""

import os
import pathlib
import shutil

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def tiny_data_source(tmp_path_factory):
  """A data folder shaped like `data/` with 40 train sentences, 12 dev, 12 test, 60 GLUE phrases, a GloVe file."""
  root = tmp_path_factory.mktemp('source') / 'data'
  (root / 'sst2').mkdir(parents=True)
  (root / 'sst2_glue_phrases').mkdir()
  (root / 'glove').mkdir()
  good = ['a great film', 'wonderful and moving', 'truly funny', 'a joy to watch', 'brilliant acting']
  bad = ['a dull mess', 'boring and long', 'truly awful', 'a waste of time', 'terrible acting']

  def rows(n, offset=0):
    out = []
    for i in range(n):
      pool, label = (good, 1) if (i + offset) % 2 else (bad, 0)
      out.append(f'{pool[i % 5]} number {i + offset}\t{label}')
    return out

  (root / 'sst2' / 'train.tsv').write_text('\n'.join(rows(40)))
  (root / 'sst2' / 'dev.tsv').write_text('\n'.join(rows(12, 100)))
  (root / 'sst2' / 'test.tsv').write_text('\n'.join(rows(12, 200)))
  phrases = ['sentence\tlabel'] + [r.replace('\t', ' \t') for r in rows(60)] + ['a dull mess number 100 \t0']
  (root / 'sst2_glue_phrases' / 'train.tsv').write_text('\n'.join(phrases) + '\n')
  (root / 'sst2_glue_phrases' / 'dev.tsv').write_text('sentence\tlabel\n( truly ) funny -- \t1\n')
  words = sorted({w for r in rows(60) + rows(12, 100) for w in r.split('\t')[0].split()})
  (root / 'glove' / 'glove.6B.50d.sst2.txt').write_text(
      ''.join(f'{w} ' + ' '.join(f'{(hash(w) % 97 + j) / 100:.3f}' for j in range(8)) + '\n' for w in words[::2]))
  return root


@pytest.fixture
def tiny_data(tiny_data_source, tmp_path):
  """A copy of `tiny_data_source` that the test may change."""
  return pathlib.Path(shutil.copytree(tiny_data_source, tmp_path / 'data'))


@pytest.fixture(scope='session')
def shared_tfds(tmp_path_factory):
  """One tensorflow-datasets folder for the session: prepared data live under a digest of their source files, so
  tests that change the files never share a preparation with those that do not."""
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture
def tiny_config(tiny_data, tmp_path, shared_tfds):
  """Keyword arguments for a `TrainConfig` that trains a tiny LSTM in seconds on `tiny_data`."""
  return dict(data_dir=str(tiny_data), tfds_dir=shared_tfds, workdir=str(tmp_path / 'ck'),
              results_dir=str(tmp_path / 'results'), lstm_units=8, batch_size=8, epochs=1,
              lr_step_size=5, tensorboard=False)


@pytest.fixture(scope='session')
def repo_root():
  return REPO


@pytest.fixture(scope='session')
def trained_dan(tiny_data_source, shared_tfds, tmp_path_factory):
  """A tiny DAN-RAND trained for 2 epochs and compressed online at R = 50 after the first, dev accuracy every 2
  steps, once per session: (results dict, its TrainConfig keyword arguments). Read it, do not change it (copy the run directory first)."""
  from lmf_tf.text import training  # pylint: disable=g-import-not-at-top
  from lmf_tf.text.config import TrainConfig  # pylint: disable=g-import-not-at-top
  where = tmp_path_factory.mktemp('trained_dan')
  config = dict(data_dir=str(tiny_data_source), tfds_dir=shared_tfds, workdir=str(where / 'ck'),
                results_dir=str(where / 'results'), batch_size=8, epochs=2, lr_step_size=5, model='dan', seed=2,
                reduction=50, eval_every_steps=2)
  return training.train_and_evaluate(TrainConfig(**config))[1], config


@pytest.fixture(scope='session')
def interrupted_dan_source(tiny_data_source, shared_tfds, tmp_path_factory):
  """A tiny 2-epoch DAN-RAND run stopped after epoch 1 (its training state on disk, no results), once per session;
  its TrainConfig keyword arguments. Tests use `interrupted_dan`, a copy."""
  from lmf_tf.text import training  # pylint: disable=g-import-not-at-top
  from lmf_tf.text.config import TrainConfig  # pylint: disable=g-import-not-at-top
  where = tmp_path_factory.mktemp('interrupted_dan')
  config = dict(data_dir=str(tiny_data_source), tfds_dir=shared_tfds, workdir=str(where / 'ck'),
                results_dir=str(where / 'results'), batch_size=8, epochs=2, lr_step_size=5, model='dan', seed=3)
  assert training.train_and_evaluate(TrainConfig(**config, stop_after_epoch=1))[1] is None
  return config


@pytest.fixture
def interrupted_dan(interrupted_dan_source, tmp_path):
  """A copy of `interrupted_dan_source` in this test's folder, to resume, corrupt or break: its config kwargs."""
  workdir = shutil.copytree(interrupted_dan_source['workdir'], tmp_path / 'ck')
  return dict(interrupted_dan_source, workdir=str(workdir), results_dir=str(tmp_path / 'results'))


# Files whose tests wait on a long module fixture: they go first, so that on several processes (make test runs
# pytest-xdist) the other process works beside them instead of waiting at the end for the last one.
LONG_FIXTURES_FIRST = ('tests/test_model_shapes.py',)


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: not item.nodeid.startswith(LONG_FIXTURES_FIRST))  # stable: the rest keep their order
