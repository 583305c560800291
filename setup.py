"""lmf_tf: `pip install .` (or `pip install git+<url>`) installs the library with nothing beyond what tensorflow
and keras themselves require. Extras: `litert` runs TFLite files (`lmf_tf.TfliteRunner`), `tt` computes
tensor-train cores from a trained matrix (`cores_from`), `study` runs the reproduction from a clone of the
repository (it reads data/ beside the package), `dev` runs the tests. `make venv` installs all of them, pinned by
requirements.lock.

The wheel carries the library only: the study's packages (lmf_tf.text, lmf_tf.lm, lmf_tf.harness) and modules
(cli, settings, results) run from the repository, which holds their data.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

STUDY_PACKAGES = ('lmf_tf.text', 'lmf_tf.lm', 'lmf_tf.harness')
STUDY_MODULES = {('lmf_tf', 'cli'), ('lmf_tf', 'settings'), ('lmf_tf', 'results')}

LITERT = ['ai-edge-litert>=2.3']  # runs TFLite exports; the maintained successor of tf.lite.Interpreter
TT = ['tensorly>=0.9']  # TT-SVD for the tensor-train layers; we do not write our own TT-SVD


class BuildLibraryOnly(build_py):
  """Leaves the study's top-level modules out of the wheel (find_packages already leaves out its packages)."""

  def find_package_modules(self, package, package_dir):
    return [m for m in super().find_package_modules(package, package_dir) if m[:2] not in STUDY_MODULES]


setup(
    name='lmf_tf',
    version='0.2.0',
    description='Online low-rank embedding compression for text models (TensorFlow 2 / Keras 3)',
    packages=find_packages(include=['lmf_tf', 'lmf_tf.*'],
                           exclude=[p for name in STUDY_PACKAGES for p in (name, name + '.*')]),
    cmdclass={'build_py': BuildLibraryOnly},
    python_requires='>=3.11',
    # Each of these is also a requirement of tensorflow 2.21 or keras 3.15 (tests/test_wheel.py checks it).
    install_requires=[
        'tensorflow>=2.21,<2.22',
        'keras>=3.15,<4',
        'numpy>=1.26',
        'absl-py>=2',  # logging
    ],
    extras_require={
        'litert': LITERT,
        'tt': TT,
        'study': [
            'tensorflow-datasets>=4.9.10',
            'importlib_resources',  # tensorflow-datasets 4.9.10 imports it for local builders but does not declare it
            'pandas>=2',
            'matplotlib>=3.8',
            'tensorboard',  # tensorflow 2.21 no longer installs it; keras.callbacks.TensorBoard needs it
            'psutil',  # memory of the million-word benchmark (tensorflow-datasets requires it too)
        ] + LITERT + TT,  # Table 4 runs the TFLite files; the PTB study computes TT cores
        'dev': ['pytest>=8', 'hypothesis>=6', 'pytest-xdist>=3.8'],  # xdist: make test on every core
    },
)
