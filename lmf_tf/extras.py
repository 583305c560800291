"""The optional parts of lmf_tf and the pip extra that installs each (setup.py's `extras_require`).

`pip install lmf_tf` brings only what tensorflow and keras require. A feature that needs more imports it with
`require`, which turns a missing package into one line naming the extra:

    interpreter = extras.require('ai_edge_litert.interpreter', 'TfliteRunner')
    # MissingExtraError: TfliteRunner needs ai_edge_litert, which is not installed: pip install 'ai-edge-litert>=2.3'
    # (lmf_tf's litert extra)
"""

import importlib

from lmf_tf.errors import MissingExtraError

# Top-level module -> the extra that installs it.
EXTRA_OF_MODULE = {
    'ai_edge_litert': 'litert',  # TfliteRunner
    'tensorly': 'tt',  # TT-SVD of a trained matrix (the tensor-train layers' `cores_from`)
    # The reproduction study (lmf_tf.text, lmf_tf.lm, lmf_tf.harness), run from a clone of the repository.
    'tensorflow_datasets': 'study', 'importlib_resources': 'study', 'pandas': 'study', 'matplotlib': 'study',
    'psutil': 'study', 'tensorboard': 'study',
}


# What each extra of setup.py installs, for the line that names it: lmf_tf is installed from a clone or a git URL,
# not from PyPI, so `pip install 'lmf_tf[litert]'` would not find it (tests/test_library.py checks setup.py agrees).
EXTRA_PACKAGES = {'litert': 'ai-edge-litert>=2.3', 'tt': 'tensorly>=0.9'}


def install_line(extra):
  """The command that installs `extra`: its packages, or for the study a clone (it reads data/ beside the package)."""
  if extra == 'study':
    return "pip install -e '.[study]' in a clone of the repository (make venv does it)"
  return f"pip install '{EXTRA_PACKAGES[extra]}' (lmf_tf's {extra} extra)"


def missing_extra(error, feature):
  """A `MissingExtraError` for `error` (a ModuleNotFoundError) if an extra installs the missing module, else None."""
  top = (getattr(error, 'name', None) or '').split('.')[0]
  if top not in EXTRA_OF_MODULE:
    return None
  return MissingExtraError(f'{feature} needs {top}, which is not installed: {install_line(EXTRA_OF_MODULE[top])}')


def require(module, feature):
  """Imports and returns `module` (e.g. 'tensorly.decomposition'); if its package is missing, raises
  `MissingExtraError` naming `feature` and the extra to install."""
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    error = missing_extra(e, feature)
    if error is None:
      raise
    raise error from None
