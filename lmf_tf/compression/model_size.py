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
  """{'<position>.<weight name>': variable} for every weight of the model, e.g. `0000.embeddings`.

  Keyed by position in `model.weights` and the weight's own name, not by its path: Keras renames sub-layers when
  a model is built twice in a process or reloaded from a `.keras` file (`forward_lstm` -> `forward_lstm_1`), while
  the order of the weights of one architecture does not change. A checkpoint therefore restores into any
  instance of the same architecture.
  """
  return keyed_variables(model.weights)


def keyed_variables(variables):
  """{'<position>.<name>': variable}: variable paths carry process-wide counters (`adam_2/...`,
  `seed_generator_8/...`) and renamed sub-layers, positions and own names do not."""
  return {f'{i:04d}.{v.name}': v for i, v in enumerate(variables)}


TOKEN_IDS = [((None,), 'int32')]  # int32[batch, T] token ids of any length


def input_specs(model, input_signature=None):
  """[(name, shape without the batch axis, dtype)] of the model's inputs: `input_signature` ([(shape, dtype)]) if
  given, else `model.inputs` (functional, Sequential), else, for a subclassed model, one input of token ids
  (`TOKEN_IDS`)."""
  inputs = getattr(model, 'inputs', None) if input_signature is None else None
  if inputs:
    return [(t.name, tuple(t.shape[1:]), t.dtype) for t in inputs]
  return [(f'input_{i}', tuple(shape), dtype) for i, (shape, dtype) in enumerate(input_signature or TOKEN_IDS)]


def _meta_graph(model, path, input_signature=None):
  """Writes the MetaGraphDef of the model's inference function (its inputs with any batch size -> outputs)."""
  specs = [tf.TensorSpec((None, *shape), dtype, name=name) for name, shape, dtype in input_specs(model, input_signature)]

  @tf.function(input_signature=specs, autograph=False)
  def serve(*inputs):
    return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

  graph_def = serve.get_concrete_function().graph.as_graph_def()
  with tf.Graph().as_default():
    tf.compat.v1.train.export_meta_graph(filename=path, graph_def=graph_def, as_text=False)


def checkpoint_size(directory, num_params=0):
  """Sizes of the checkpoint files `<directory>/model.{data-*,index,meta}`."""
  prefix = os.path.join(directory, PREFIX)
  data = glob.glob(prefix + '.data-*')
  missing = [p for p in (prefix + '.index', prefix + '.meta') if not os.path.exists(p)] + ([] if data else
                                                                                            [prefix + '.data-*'])
  if missing:
    raise CheckpointNotFoundError(f'checkpoint {prefix} is incomplete: missing {", ".join(missing)}')
  return CheckpointSize(sum(os.path.getsize(p) for p in data), os.path.getsize(prefix + '.index'),
                        os.path.getsize(prefix + '.meta'), num_params)


def save_inference_checkpoint(model, directory, metadata=None, checkpoint=None, input_signature=None):
  """Saves `model`'s weights and inference graph to `directory` (replacing it atomically) and returns its size:
  the paper's model size, `.data` + `.index` + `.meta` (§5.3), without optimizer slots.

  `metadata` (a JSON-able dict: config, vocabulary path, rank...) is stored beside it as `config.json`.
  `checkpoint`: what to store instead of the float weights (e.g. quantized integer tensors and their scales); the
  `.meta` graph is always the model's inference graph.
  """
  num_params = int(sum(w.numpy().size for w in model.weights))
  with io_utils.atomic_path(directory) as tmp:
    os.makedirs(tmp)
    (checkpoint or weights_checkpoint(model)).write(os.path.join(tmp, PREFIX))
    _meta_graph(model, os.path.join(tmp, PREFIX + '.meta'), input_signature)
    metadata = {**(metadata or {}), 'checkpoint_sha256': io_utils.checkpoint_digest(os.path.join(tmp, PREFIX))}
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
      json.dump(metadata, f, indent=2, sort_keys=True)
  return checkpoint_size(directory, num_params)


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
  except AssertionError as e:
    raise CorruptFileError(f'inference checkpoint {prefix} does not hold the weights of model {model.name!r} (another '
                           f'architecture or rank?): {str(e).splitlines()[0][:200]}') from None
  except tf.errors.OpError as e:
    raise CorruptFileError(f'inference checkpoint {prefix} cannot be read ({type(e).__name__}: '
                           f'{str(e).splitlines()[0]})') from None
  return model
