"""Recovering accuracy after the swap (beyond the paper; docs/recovery.md measures each), as arguments of
`lmf_tf.OnlineCompression`:

    lmf_tf.OnlineCompression(reduction=90, at_dev_peak=recovery.DevPeak('val_accuracy', patience=1),
                             recovery_learning_rate='restart', distillation=recovery.Distillation(0.5, 2.0))

  - `DevPeak`: swap when the monitored value stops improving, from the weights of its best epoch;
  - `Distillation`: loss = α·CE + (1 − α)·T²·KL(teacher_T ‖ student_T), the model before the swap as the teacher;
  - `Restarted`: a learning-rate schedule started afresh at a step (what `recovery_learning_rate='restart'` uses).
"""

from lmf_tf.compression.distillation import Distillation
from lmf_tf.compression.online import DevPeak
from lmf_tf.compression.schedules import Restarted

__all__ = ['DevPeak', 'Distillation', 'Restarted']
