"""Shared fixtures: quiet TensorFlow, a tiny vendored-style data folder, tiny configs."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def tiny_data(tmp_path):
  """A data folder shaped like `data/` with 40 train sentences, 12 dev, 12 test, 60 GLUE phrases, a GloVe file."""
  root = tmp_path / 'data'
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
def tiny_config(tiny_data, tmp_path):
  """Keyword arguments for a `TrainConfig` that trains a tiny LSTM in seconds on `tiny_data`."""
  return dict(data_dir=str(tiny_data), tfds_dir=str(tmp_path / 'tfds'), workdir=str(tmp_path / 'ck'),
              results_dir=str(tmp_path / 'results'), lstm_units=8, batch_size=8, epochs=1,
              lr_step_size=5, tensorboard=False)


@pytest.fixture(scope='session')
def repo_root():
  return REPO
