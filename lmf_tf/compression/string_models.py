"""Shipping a model that takes strings: an in-graph `keras.layers.TextVectorization` followed by the integer model.

LiteRT's built-in ops have no string standardization or splitting (`tf.StringLower`, `tf.RegexReplace`,
`tf.StringSplitV2` are TensorFlow ops), so `to_tflite` cannot convert such a model with them. With select TF ops
(`OpsSet.SELECT_TF_OPS`) it converts, but the flatbuffer then needs the Flex delegate at run time
(`org.tensorflow:tensorflow-lite-select-tf-ops` on Android), which neither `ai_edge_litert`'s
`Interpreter` nor `tf.lite.Interpreter` from pip links: they refuse it ("Select TensorFlow op(s) ... not supported
by this interpreter"). So the model ships split in three parts:

  - the integer model (ids -> outputs), a TFLite flatbuffer (`to_tflite`, after `fold_projection`);
  - the vocabulary, one token per line (line i is id i: 0 the padding '', 1 the OOV token '[UNK]');
  - the text rule (`TextRule`, JSON): the standardization, the split and the sequence length of the layer, which
    `TextRule.ids` applies in Python exactly as the layer does (ASCII lower-casing, Keras's punctuation regex,
    splitting on ASCII whitespace, OOV id 1, padding/truncation with 0).

`write_string_model` writes the three files; `StringModelRunner` reads them and takes strings. The deployable size
is the sum of the three, the vocabulary counted once (the flatbuffer holds no vocabulary).
"""

import dataclasses
import json
import os
import re

import keras
import numpy as np

from lmf_tf import io_utils
from lmf_tf.compression import export
from lmf_tf.errors import ConfigError

STANDARDIZE = (None, 'lower', 'strip_punctuation', 'lower_and_strip_punctuation')
SPLIT = (None, 'whitespace', 'character')
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')  # Keras's TextVectorization regex
ASCII_WHITESPACE = re.compile(r'[ \t\n\v\f\r]+')  # tf.strings.split's separators
ASCII_LOWER = str.maketrans('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')  # tf.strings.lower
FILES = {'model': 'model.tflite', 'vocabulary': 'vocabulary.txt', 'rule': 'text_rule.json'}


@dataclasses.dataclass
class TextRule:
  """How a `TextVectorization(output_mode='int')` turns a string into ids, as data."""
  vocabulary: list
  standardize: str | None = 'lower_and_strip_punctuation'
  split: str | None = 'whitespace'
  sequence_length: int | None = None

  @classmethod
  def of_layer(cls, layer):
    """The rule of a `keras.layers.TextVectorization`; ConfigError for what a rule cannot reproduce."""
    config = layer.get_config()
    for arg, allowed in (('standardize', STANDARDIZE), ('split', SPLIT)):
      if config[arg] not in allowed:
        raise ConfigError(f'TextVectorization {layer.name!r} has {arg}={config[arg]!r}; a string model ships with '
                          f'one of {", ".join(map(repr, allowed))} (a custom function runs only in TensorFlow)')
    if config['output_mode'] != 'int' or config.get('ngrams'):
      raise ConfigError(f'TextVectorization {layer.name!r}: output_mode={config["output_mode"]!r}, '
                        f'ngrams={config.get("ngrams")!r}; a string model ships with output_mode="int" and no ngrams')
    return cls(list(layer.get_vocabulary()), config['standardize'], config['split'],
               config['output_sequence_length'])

  def tokens(self, text):
    """The tokens of one string, as the layer makes them."""
    if self.standardize in ('lower', 'lower_and_strip_punctuation'):
      text = text.translate(ASCII_LOWER)
    if self.standardize in ('strip_punctuation', 'lower_and_strip_punctuation'):
      text = PUNCTUATION.sub('', text)
    if self.split == 'whitespace':
      return [t for t in ASCII_WHITESPACE.split(text) if t]
    return list(text) if self.split == 'character' else [text]

  def ids(self, texts):
    """[int64[length]] for a list of strings: OOV tokens are 1; cut or padded with 0 to `sequence_length` if set."""
    index = self._index()
    rows = []
    for text in texts:
      ids = [index.get(t, 1) for t in self.tokens(text)]
      if self.sequence_length is not None:
        ids = (ids + [0] * self.sequence_length)[:self.sequence_length]
      rows.append(np.asarray(ids or [0], np.int64))
    return rows

  def _index(self):
    if getattr(self, '_cache', None) is None or len(self._cache) != len(self.vocabulary):
      self._cache = {token: i for i, token in enumerate(self.vocabulary) if i > 0}
    return self._cache

  def rule_json(self):
    """The rule without the vocabulary (which goes into its own file), as JSON text."""
    return json.dumps({'standardize': self.standardize, 'split': self.split,
                       'sequence_length': self.sequence_length, 'oov_id': 1, 'padding_id': 0}, indent=1) + '\n'


def _text_vectorization(model):
  """The model's `TextVectorization` layer, which must read the model's only (string) input directly."""
  layers = [l for l in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
            if isinstance(l, keras.layers.TextVectorization)]
  if len(layers) != 1 or len(model.inputs or []) != 1:
    raise ConfigError(f'split_string_model: model {model.name!r} has {len(layers)} TextVectorization layers and '
                      f'{len(model.inputs or [])} inputs; give a model with one string input read by one '
                      'TextVectorization')
  return layers[0]


def split_string_model(model):
  """(integer model, `TextRule`) of a functional or Sequential `model` whose only input (strings) goes into a
  `TextVectorization(output_mode='int')`: the integer model takes its ids (`int64[batch, length]`) and gives the
  model's outputs, the very layers of `model` (shared, not copied)."""
  layer = _text_vectorization(model)
  rule = TextRule.of_layer(layer)
  if isinstance(model, keras.Sequential):
    ids = keras.Input((rule.sequence_length,), dtype='int64', name='ids')
    x = ids
    for later in model.layers[model.layers.index(layer) + 1:]:
      x = later(x)
    return keras.Model(ids, x, name=f'{model.name}_ids'), rule
  nodes = export._graph_nodes(model)  # pylint: disable=protected-access
  node = next((n for n in nodes or [] if n.operation is layer), None)
  if node is None or [p.operation for p in node.parent_nodes] != [model.inputs[0]._keras_history.operation]:  # pylint: disable=protected-access
    raise ConfigError(f'split_string_model: in model {model.name!r}, {layer.name!r} must be a top-level layer that '
                      'reads the model\'s string input directly (subclassed models: build the integer model '
                      'yourself and use TextRule.of_layer)')
  return keras.Model(node.outputs[0], model.outputs, name=f'{model.name}_ids'), rule


def write_string_model(model, directory, kind='int8', fold=True):
  """Writes `model` (strings in) as model.tflite (the integer model, folded with `fold_projection` if `fold`, of
  `kind`, batch size 1), vocabulary.txt and text_rule.json into `directory` (each file atomically); returns the
  bytes of each and their `total`, the deployable size."""
  integer_model, rule = split_string_model(model)
  if fold:
    integer_model = export.fold_projection(integer_model)
  contents = {'model': export.to_tflite(integer_model, kind),
              'vocabulary': ''.join(t + '\n' for t in rule.vocabulary).encode('utf-8'),
              'rule': rule.rule_json().encode('utf-8')}
  if any('\n' in t for t in rule.vocabulary):
    raise ConfigError(f'write_string_model: the vocabulary of {model.name!r} has a token with a line break')
  os.makedirs(directory, exist_ok=True)
  sizes = {}
  for part, data in contents.items():
    with io_utils.atomic_path(os.path.join(directory, FILES[part])) as tmp:
      with open(tmp, 'wb') as f:
        f.write(data)
    sizes[part] = len(data)
  sizes['total'] = sum(sizes.values())
  return sizes


class StringModelRunner:
  """Runs a string model written by `write_string_model` with LiteRT: strings in, the model's outputs out."""

  def __init__(self, directory, num_threads=1):
    paths = {part: os.path.join(directory, name) for part, name in FILES.items()}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
      raise ConfigError(f'StringModelRunner({directory!r}): missing {", ".join(missing)} (write_string_model '
                        'writes them)')
    with open(paths['vocabulary'], encoding='utf-8') as f:
      vocabulary = f.read().split('\n')[:-1]
    with open(paths['rule'], encoding='utf-8') as f:
      settings = json.load(f)
    self.rule = TextRule(vocabulary, settings['standardize'], settings['split'], settings['sequence_length'])
    with open(paths['model'], 'rb') as f:
      self.runner = export.TfliteRunner(f.read(), num_threads=num_threads)

  def predict(self, texts):
    """float[len(texts), ...]: the model's outputs for a list of strings. Without a sequence length, each string
    runs at its own length: the Keras model's outputs for one string at a time (a batch pads to its longest)."""
    return self.runner.predict(self.rule.ids(list(texts)))
