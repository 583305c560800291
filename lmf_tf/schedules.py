"""Cyclical learning rates (Acharya et al. 2019, §3.2), registered with Keras: `CyclicalLearningRate` (CLR, Smith
2017, triangular) and `CyclicallyAnnealedLearningRate` (CALR: the peak decays per cycle and starts over).

    keras.optimizers.Adam(schedules.CyclicallyAnnealedLearningRate(1e-5, 3e-3, step_size=500, decay=0.5))

Both are pure functions of the optimizer step, so a resumed run continues on the same curve.
"""

from lmf_tf.compression.schedules import CyclicalLearningRate, CyclicallyAnnealedLearningRate

__all__ = ['CyclicalLearningRate', 'CyclicallyAnnealedLearningRate']
