"""The schema of a run's results file (`<results_dir>/<run>.json`): one dataclass per kind of run, with a version,
used by every writer (text training and quantization, LM training and compression) and every reader (tables,
figures, benchmarks). Files written before the schema (version 1, no `schema_version` key) load too: the keys
they lack take their defaults. No TensorFlow here.
"""

import dataclasses
import os
import platform

from lmf_tf import io_utils
from lmf_tf.errors import CorruptFileError

SCHEMA_VERSION = 2


def environment():
  """Versions and machine of the run (TensorFlow's and Keras's only if they are loaded)."""
  import sys  # pylint: disable=g-import-not-at-top
  versions = {name: getattr(sys.modules[name], '__version__', None) for name in ('tensorflow', 'keras', 'numpy')
              if name in sys.modules}
  return {**versions, 'python': platform.python_version(), 'machine': platform.machine(), 'cpus': os.cpu_count()}


@dataclasses.dataclass
class ClassifierResult:
  """A text classifier run: trained (`text.training`) or quantized after training (`text.post_training`).

  Accuracies are fractions; `rank` is the embedding's rank (online compression) or, for the offline baseline, the
  width of its V x k embedding; `checkpoint_bytes` is the paper's size of the best checkpoint (`CheckpointSize`).
  """
  run: str
  method: str  # uncompressed, online, offline, quant8, quant16, quant8_per_channel, keras_int8
  config: dict
  dev_accuracy: float
  test_accuracy: float
  checkpoint_bytes: dict  # data_bytes, index_bytes, meta_bytes, num_params, total_bytes
  params: dict  # model (stored numbers), embedding, uncompressed_model
  checkpoint_dir: str
  wall_seconds: float
  rank: int | None = None
  recipe: str = 'paper'  # the recovery recipe of an online run (`TrainConfig.recipe`)
  non_default_settings: dict = dataclasses.field(default_factory=dict)
  best_epoch: int | None = None
  best: dict | None = None
  history: list = dataclasses.field(default_factory=list)
  data: dict = dataclasses.field(default_factory=dict)
  compression: dict | None = None  # the (last) swap's CompressionReport, its step(s)
  dev_curve: list | None = None  # [[step, dev accuracy, rank]]
  source_checkpoint: str | None = None  # quantized runs: the trained checkpoint they start from
  bits: int | None = None
  per_channel: bool | None = None
  environment: dict = dataclasses.field(default_factory=dict)
  schema_version: int = SCHEMA_VERSION

  @property
  def swap_step(self):
    return (self.compression or {}).get('swap_step')

  @property
  def table_rank(self):
    """The rank a table shows: the online rank, or the offline baseline's embedding width."""
    return self.rank if self.rank is not None else self.data.get('offline_rank')


@dataclasses.dataclass
class LmResult:
  """A PTB language-model run: a baseline trained by `lm.training` (`task` ptb_lm) or a compressed and fine-tuned
  model from `lm.compression` (`task` ptb_lm_compression, with the `baseline_*` and fine-tuning fields)."""
  run: str
  task: str
  valid_perplexity: float
  test_perplexity: float
  params: int  # stored numbers
  checkpoint_bytes: dict
  checkpoint_dir: str
  wall_seconds: float
  config: dict | None = None  # ptb_lm: the LmConfig
  compression: dict | None = None  # ptb_lm_compression: the LmCompressionConfig
  method: str = 'baseline'
  level: str | None = None
  history: list = dataclasses.field(default_factory=list)
  data: dict | None = None
  steps: int | None = None
  stopped_by_max_steps: bool | None = None
  valid: dict | None = None
  test: dict | None = None
  train_words_per_second: float | None = None
  baseline_run: str | None = None
  baseline_dir: str | None = None
  factorization: dict | None = None
  sparsity: float | None = None
  baseline_params: int | None = None
  storage: dict | None = None
  valid_perplexity_before_fine_tuning: float | None = None
  chosen_epoch: int | None = None
  baseline_valid_perplexity: float | None = None
  baseline_test_perplexity: float | None = None
  baseline_checkpoint_bytes: int | None = None
  size_ratio: float | None = None
  fine_tune_steps: int | None = None
  fine_tune_seconds: float | None = None
  environment: dict = dataclasses.field(default_factory=dict)
  schema_version: int = SCHEMA_VERSION


def is_run_result(value):
  """True for the dict of a run's results file (not a table or a benchmark's JSON)."""
  return isinstance(value, dict) and 'run' in value and ('test_accuracy' in value or 'test_perplexity' in value)


def from_dict(value, path='results'):
  """The `ClassifierResult` or `LmResult` a results dict holds; CorruptFileError naming `path` if it is neither."""
  cls = LmResult if str(value.get('task', '')).startswith('ptb_lm') else ClassifierResult
  names = {f.name for f in dataclasses.fields(cls)}
  known = {k: v for k, v in value.items() if k in names}
  if cls is ClassifierResult and known.get('method') is None:
    known['method'] = 'online' if known.get('rank') is not None else 'uncompressed'
  try:
    return cls(**known)
  except TypeError as e:
    raise CorruptFileError(f'{path} is not a results file of lmf_tf ({e})') from None


def load(path):
  """Reads `path` as a results file (`from_dict`)."""
  return from_dict(io_utils.read_json(path, 'results file'), path)


def write(result, results_dir):
  """Writes `result` to `<results_dir>/<run>.json` atomically; returns the path."""
  path = os.path.join(results_dir, result.run + '.json')
  io_utils.write_json_atomic(path, dataclasses.asdict(result))
  return path
