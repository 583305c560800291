from setuptools import find_packages, setup

setup(
    name='lmf_tf',
    version='0.2.0',
    description='Online low-rank embedding compression for text models (TensorFlow 2 / Keras 3)',
    packages=find_packages(include=['lmf_tf', 'lmf_tf.*']),
    python_requires='>=3.11',
    install_requires=[
        'tensorflow>=2.21,<2.22',
        'keras>=3.15,<4',
        'tensorflow-datasets>=4.9.10',
        'importlib_resources',  # tensorflow-datasets 4.9.10 imports it for local builders but does not declare it
        'numpy>=2',
        'absl-py>=2',
        'pandas>=2',
        'matplotlib>=3.8',
        'tensorboard',  # tensorflow 2.21 no longer installs it; keras.callbacks.TensorBoard needs it
        'tensorly>=0.9',  # TT-SVD for the tensor-train LM layers; we do not write our own TT-SVD
        'ai-edge-litert>=2.3',  # runs TFLite exports; the maintained successor of tf.lite.Interpreter
        'psutil',  # memory of the million-word benchmark (tensorflow-datasets requires it too)
    ],
    extras_require={'dev': ['pytest>=8', 'hypothesis>=6']},
)
