"""The library as its users install it: the wheel built from this tree, installed without extras into a fresh
virtual environment, brings nothing beyond what tensorflow and keras themselves require, runs the README's library
example on random data, and the `.keras` file it saves loads in a new process (slow: pip installs TensorFlow into
the new environment, about 2 minutes of the test's 3 on the development machine)."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

pytestmark = pytest.mark.slow

# The README's example trains on these (random ids and labels), then the test keeps the dev predictions.
DATA = '''
import numpy as np
rng = np.random.default_rng(0)
train_ids, train_labels = rng.integers(1, 20_000, (64, 12)).astype('int32'), rng.integers(0, 2, 64)
dev_ids, dev_labels = rng.integers(1, 20_000, (16, 12)).astype('int32'), rng.integers(0, 2, 16)
'''

# Requirements of the installed distributions, followed from tensorflow and keras (markers evaluated, no extras).
CLOSURE = '''
import importlib.metadata as md, json, re
from packaging.requirements import Requirement

def norm(name):
  return re.sub(r'[-_.]+', '-', name).lower()

def requirements(name, extra=''):
  try:
    lines = md.requires(name) or []
  except md.PackageNotFoundError:
    return []
  reqs = [Requirement(line) for line in lines]
  return [norm(r.name) for r in reqs if r.marker is None or r.marker.evaluate({'extra': extra})]

closure, todo = set(), ['tensorflow', 'keras']
while todo:
  name = norm(todo.pop())
  if name not in closure:
    closure.add(name)
    todo += requirements(name)
installed = {norm(d.metadata['Name']) for d in md.distributions()}
print(json.dumps({'closure': sorted(closure), 'installed': sorted(installed),
                  'lmf_tf_requires': sorted(requirements('lmf_tf'))}))
'''


# What the new environment sees: no PYTHONPATH (the Makefile exports the repository's, where pip would find the
# editable lmf_tf of .venv "already satisfied" and install nothing), no user site.
ISOLATED = {**{k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')},
            'PYTHONNOUSERSITE': '1', 'TF_CPP_MIN_LOG_LEVEL': '3'}


def run(command, **kwargs):
  return subprocess.run(command, capture_output=True, text=True, timeout=1200, env=ISOLATED, **kwargs)


def readme_library_example(repo_root):
  """The README's first Python block: the library on the user's own model."""
  with open(os.path.join(repo_root, 'README.md'), encoding='utf-8') as f:
    return re.findall(r'```python\n(.*?)```', f.read(), re.S)[0]


@pytest.fixture(scope='module')
def installed(tmp_path_factory, repo_root):
  """(python of a fresh environment with the wheel installed without extras, the wheel's path)."""
  where = tmp_path_factory.mktemp('wheel')
  source = where / 'source'  # a copy, so that the build leaves no build/ or *.egg-info in the tree
  shutil.copytree(os.path.join(repo_root, 'lmf_tf'), source / 'lmf_tf', ignore=shutil.ignore_patterns('__pycache__'))
  shutil.copy(os.path.join(repo_root, 'setup.py'), source)
  built = run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--quiet', '-w',
               str(where / 'dist'), str(source)])
  assert built.returncode == 0, built.stderr[-3000:]
  (wheel,) = (where / 'dist').glob('lmf_tf-*.whl')
  made = run([sys.executable, '-m', 'venv', str(where / 'env')])
  assert made.returncode == 0, made.stderr[-3000:]
  python = str(where / 'env' / 'bin' / 'python')
  # The versions of requirements.lock where it names a package (what `make venv` installs); nothing else from it.
  done = run([python, '-m', 'pip', 'install', '--quiet', '-c', os.path.join(repo_root, 'requirements.lock'),
              str(wheel)])
  assert done.returncode == 0, done.stderr[-3000:]
  return python, wheel


def test_the_wheel_holds_the_library_only(installed):
  _, wheel = installed
  names = zipfile.ZipFile(wheel).namelist()
  assert 'lmf_tf/__init__.py' in names and 'lmf_tf/compression/online.py' in names
  study = [n for n in names if n.startswith(('lmf_tf/text/', 'lmf_tf/lm/', 'lmf_tf/harness/'))
           or n in ('lmf_tf/cli.py', 'lmf_tf/settings.py', 'lmf_tf/results.py')]
  assert not study


def test_nothing_is_installed_beyond_what_tensorflow_and_keras_require(installed):
  python, _ = installed
  result = run([python, '-c', CLOSURE])
  assert result.returncode == 0, result.stderr[-3000:]
  found = json.loads(result.stdout)
  closure = set(found['closure'])
  assert 'tensorflow' in closure and 'keras' in closure and 'numpy' in closure
  assert 'lmf-tf' in found['installed']  # from the wheel, not found elsewhere on the path
  assert set(found['lmf_tf_requires']) <= closure
  assert set(found['installed']) - closure - {'lmf-tf', 'pip'} == set()  # pip: the environment's own


def test_the_readme_example_runs_and_its_keras_file_loads_in_a_new_process(installed, repo_root, tmp_path):
  python, _ = installed
  script = DATA + readme_library_example(repo_root) + "np.save('dev_predictions.npy', model.predict(dev_ids))\n"
  example = run([python, '-c', script], cwd=tmp_path)
  assert example.returncode == 0, example.stderr[-3000:]
  assert (tmp_path / 'small.keras').stat().st_size > 0 and (tmp_path / 'small.tflite').stat().st_size > 0
  reload = DATA + textwrap.dedent('''
      import sys
      import keras
      import lmf_tf
      model = keras.saving.load_model('small.keras')
      np.testing.assert_allclose(model.predict(dev_ids, verbose=0), np.load('dev_predictions.npy'), atol=1e-5)
      print(type(model.layers[0]).__name__, model.layers[0].rank, lmf_tf.__file__.startswith(sys.prefix))
      lmf_tf.TfliteRunner(open('small.tflite', 'rb').read())  # without the litert extra
  ''')
  reloaded = run([python, '-c', reload], cwd=tmp_path)
  assert reloaded.stdout.split() == ['CompressibleEmbedding', '6', 'True'], reloaded.stderr[-3000:]
  assert reloaded.returncode == 1 and reloaded.stderr.strip().splitlines()[-1] == (
      "lmf_tf.errors.MissingExtraError: TfliteRunner needs ai_edge_litert, which is not installed: "
      "pip install 'ai-edge-litert>=2.3' (lmf_tf's litert extra)")
