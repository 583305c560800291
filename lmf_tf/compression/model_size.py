"""Model size as in Acharya et al. 2019, §5.3: bytes of a TensorFlow checkpoint, `.data` + `.index` + `.meta`.

`save_inference_checkpoint` writes only the inference weights (no optimizer slots) with `tf.train.Checkpoint`,
plus the inference graph's MetaGraphDef as `<prefix>.meta`, all atomically: the files are written into a
temporary directory that is renamed into place.
"""

import dataclasses
import glob
import json
import os

import tensorflow as tf

from lmf_tf import io_utils
from lmf_tf.errors import CheckpointNotFoundError, CorruptFileError

PREFIX = 'model'


@dataclasses.dataclass
class CheckpointSize:
  data_bytes: int
  index_bytes: int
  meta_bytes: int
  num_params: int

  @property
  def total_bytes(self):
    return self.data_bytes + self.index_bytes + self.meta_bytes

  def as_dict(self):
    return {**dataclasses.asdict(self), 'total_bytes': self.total_bytes}


def weights_checkpoint(model):
  """A `tf.train.Checkpoint` over the model's weights only, keyed by variable path (no optimizer, no graph)."""
  return tf.train.Checkpoint(weights=weight_dict(model))


def weight_dict(model):
  """{'<layer>.<sublayer>.<weight>': variable} for every weight of the model."""
  return {w.path.replace('/', '.'): w for w in model.weights}


def keyed_variables(variables):
  """Keyed by position and name: variable paths carry process-wide counters (`adam_2/...`, `seed_generator_8/...`)."""
  return {f'{i:04d}_{v.name}': v for i, v in enumerate(variables)}


def _meta_graph(model, path):
  """Writes the MetaGraphDef of the model's inference function `int32[batch, T] -> float32[batch, classes]`."""
  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name='token_ids')], autograph=False)
  def serve(ids):
    return model(ids, training=False)

  graph_def = serve.get_concrete_function().graph.as_graph_def()
  with tf.Graph().as_default():
    tf.compat.v1.train.export_meta_graph(filename=path, graph_def=graph_def, as_text=False)


def measure(directory, num_params=0):
  """Sizes of the checkpoint files `<directory>/model.{data-*,index,meta}`."""
  prefix = os.path.join(directory, PREFIX)
  data = glob.glob(prefix + '.data-*')
  missing = [p for p in (prefix + '.index', prefix + '.meta') if not os.path.exists(p)] + ([] if data else
                                                                                            [prefix + '.data-*'])
  if missing:
    raise CheckpointNotFoundError(f'checkpoint {prefix} is incomplete: missing {", ".join(missing)}')
  return CheckpointSize(sum(os.path.getsize(p) for p in data), os.path.getsize(prefix + '.index'),
                        os.path.getsize(prefix + '.meta'), num_params)


def save_inference_checkpoint(model, directory, metadata=None, checkpoint=None):
  """Saves `model`'s weights and inference graph to `directory` (replacing it atomically) and returns its size.

  `metadata` (a JSON-able dict: config, vocabulary path, rank...) is stored beside it as `config.json`.
  `checkpoint`: what to store instead of the float weights (e.g. quantized integer tensors and their scales); the
  `.meta` graph is always the model's inference graph.
  """
  num_params = int(sum(w.numpy().size for w in model.weights))
  with io_utils.atomic_path(directory) as tmp:
    os.makedirs(tmp)
    (checkpoint or weights_checkpoint(model)).write(os.path.join(tmp, PREFIX))
    _meta_graph(model, os.path.join(tmp, PREFIX + '.meta'))
    metadata = {**(metadata or {}), 'checkpoint_sha256': io_utils.checkpoint_digest(os.path.join(tmp, PREFIX))}
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
      json.dump(metadata, f, indent=2, sort_keys=True)
  return measure(directory, num_params)


def verify_inference_checkpoint(directory):
  """Raises CorruptFileError if `<directory>/config.json` or the checkpoint files are truncated or corrupted."""
  config_path = os.path.join(directory, 'config.json')
  if os.path.exists(config_path):
    io_utils.verify_checkpoint(os.path.join(directory, PREFIX),
                               io_utils.read_json(config_path, 'checkpoint config').get('checkpoint_sha256'),
                               'inference checkpoint')


def restore_inference_checkpoint(model, directory):
  """Loads weights saved by `save_inference_checkpoint` into `model` (same architecture and rank), after checking
  the files against the digest recorded when they were written."""
  prefix = os.path.join(directory, PREFIX)
  if not os.path.exists(prefix + '.index'):
    raise CheckpointNotFoundError(f'no checkpoint at {prefix} (expected {prefix}.index)')
  verify_inference_checkpoint(directory)
  try:
    weights_checkpoint(model).read(prefix).assert_existing_objects_matched().expect_partial()
  except tf.errors.OpError as e:
    raise CorruptFileError(f'inference checkpoint {prefix} cannot be read ({type(e).__name__}: '
                           f'{str(e).splitlines()[0]})') from None
  return model
