"""Imported first by every script: `import lmf_tf` starts TensorFlow (Keras's backend), whose C++ start-up lines
(oneDNN, CUDA drivers, CPU features) are written to stderr before its logging is set up, twice, whatever
TF_CPP_MIN_LOG_LEVEL says; its search for a GPU logs an error where there is none. They are kept off the terminal
here: file descriptor 2 points at /dev/null meanwhile. An import error still raises, with its traceback, after
stderr is back.

    import quiet_tensorflow  # noqa: F401  (first)
    from lmf_tf import cli
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # no C++ log lines below errors once TensorFlow runs

_saved, _devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
try:
  os.dup2(_devnull, 2)
  import lmf_tf  # noqa: F401,E402  pylint: disable=g-import-not-at-top,unused-import
  import tensorflow as tf  # noqa: E402  pylint: disable=g-import-not-at-top
  # TensorFlow lists its GPUs when absl's app starts (`app.call_after_init`); on a machine without one, the CUDA
  # driver's failed start is an error line. Listing them here, once, keeps it off the terminal too. It leaves the
  # logical devices free to be configured (--cpu_devices).
  tf.config.list_physical_devices('GPU')
finally:
  os.dup2(_saved, 2)
  os.close(_saved)
  os.close(_devnull)
