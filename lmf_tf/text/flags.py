"""The absl flags of `scripts/train.py`, generated from `config.TrainConfig` (one source per setting)."""

from absl import flags

from lmf_tf import settings
from lmf_tf.text.config import MODEL_DEFAULTS, TrainConfig  # noqa: F401  (scripts read its fields)


def define_train_flags(flag_values=flags.FLAGS):
  """Defines a flag for every `TrainConfig` field, with its help, default and per-model defaults."""
  settings.define_flags(TrainConfig, flag_values, per_field_defaults=MODEL_DEFAULTS)


def config_from_flags(flag_values=flags.FLAGS):
  """A `TrainConfig` from the parsed flags (called by scripts only; library code never reads FLAGS)."""
  return settings.config_from_flags(TrainConfig, flag_values)
