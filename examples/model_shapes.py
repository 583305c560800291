"""lmf_tf on models nobody here wrote: each shape of examples/user_models.py (a custom layer holding a token and a
position embedding, Conv1D with dropout, BiLSTM, strings in, a subclassed model) trained with
`OnlineCompression(reduction=90)` in its `fit`, saved, reloaded in a fresh process, folded, exported to TFLite
int8 and run with LiteRT.

    python examples/model_shapes.py            # SST-2 (data/sst2), 2 + 2 epochs; about 4 min on 2 CPU cores
    python examples/model_shapes.py --quick    # a synthetic task of 1,000 tokens, seconds (tests/test_model_shapes.py)
    python examples/model_shapes.py --position_table   # TFLite bytes with the position table factorized or not

Prints one row per model: Keras test accuracy, the same after the reload (it must be identical), LiteRT int8
accuracy, the embeddings compressed and left alone, and the sizes (docs/library.md, "Your model's shape").
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

import lmf_tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import user_models  # pylint: disable=g-import-not-at-top,wrong-import-position

SST2 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'sst2')


# Adam's rate on the synthetic task (2 epochs), where 2e-3 (SST-2's) learns too slowly.
QUICK_LEARNING_RATES = {'transformer': 5e-3}


def synthetic_data(n_train=1000, n_test=400, vocab=1000, maxlen=20, seed=0):
  """A sentiment-like task: each text has 2-4 words of its class (w2-w50 positive, w51-w99 negative) among filler
  words (w100-); returns {'train'|'test': (texts, int32[n, maxlen] ids, labels)} with ids = word number."""
  rng = np.random.default_rng(seed)

  def split(n):
    labels = rng.integers(0, 2, n)
    texts, ids = [], np.zeros((n, maxlen), np.int32)
    for i, label in enumerate(labels):
      length = rng.integers(8, maxlen + 1)
      words = rng.integers(100, vocab, length)
      cues = rng.integers(2, 51, rng.integers(2, 5)) + (49 if label == 0 else 0)
      words[rng.choice(length, len(cues), replace=False)] = cues
      ids[i, :length] = words
      texts.append(' '.join(f'w{w}' for w in words))
    return texts, ids, labels.astype(np.int64)

  return {'train': split(n_train), 'test': split(n_test)}, {'vocab': vocab, 'dim': 16, 'maxlen': maxlen}


def sst2_data(maxlen=48, max_tokens=20_000):
  """SST-2 sentences (train 6,920, test 1,821) as texts and as ids of a TextVectorization adapted on train."""
  splits = {}
  for name in ('train', 'test'):
    with open(os.path.join(SST2, f'{name}.tsv'), encoding='utf-8') as f:
      rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
    splits[name] = ([t for t, _ in rows], np.array([int(l) for _, l in rows], np.int64))
  vectorize = keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=maxlen)
  vectorize.adapt(splits['train'][0])
  data = {name: (texts, vectorize(texts).numpy().astype(np.int32), labels) for name, (texts, labels) in splits.items()}
  return data, {'vocab': vectorize.vocabulary_size(), 'dim': 32, 'maxlen': maxlen}


def string_tensor(texts):
  """string[n, 1]: a string model's input."""
  return tf.constant(list(texts))[:, None]


def outputs_of(model, inputs):
  """The model's outputs for all `inputs` in one call (no `predict` function to trace)."""
  return keras.ops.convert_to_numpy(model(inputs, training=False))


def train_and_save(name, data, sizes, folder, epochs=2, at_epoch=1, batch_size=32, save_before=False,
                   learning_rate=2e-3):
  """Trains shape `name` with the swap at `at_epoch`, saves `<name>.keras`, `<name>.npz` (test inputs, labels,
  Keras outputs) and, with `save_before`, `<name>_before.keras` (the model just before the swap); returns the
  embeddings compressed and left alone."""
  keras.utils.set_random_seed(1)
  texts, ids, labels = data['train']
  builder = user_models.BUILDERS[name]
  model = (builder(sizes['vocab'], sizes['dim'], sizes['maxlen'], texts) if name == 'strings'
           else builder(sizes['vocab'], sizes['dim'], sizes['maxlen']))
  model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss='sparse_categorical_crossentropy',
                metrics=['accuracy'])
  inputs = string_tensor(texts) if name == 'strings' else ids
  before = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: save_before and epoch == at_epoch
                                          and model.save(os.path.join(folder, f'{name}_before.keras')))
  online = lmf_tf.OnlineCompression(reduction=90, at_epoch=at_epoch, verbose=0)
  model.fit(inputs, labels, batch_size=batch_size, epochs=epochs, callbacks=[before, online], verbose=0)
  test_texts, test_ids, test_labels = data['test']
  outputs = outputs_of(model, string_tensor(test_texts) if name == 'strings' else test_ids)
  model.save(os.path.join(folder, f'{name}.keras'))
  np.savez(os.path.join(folder, f'{name}.npz'), inputs=np.array(test_texts) if name == 'strings' else test_ids,
           labels=test_labels, outputs=outputs,
           params=model.count_params())
  return {'compressed': [f'{r.layer} {r.vocab_size}x{r.dim} -> k={r.rank}' for r in online.reports],
          'left alone': [f'{l.name} {l.input_dim}x{l.output_dim}' for l in online.left_alone]}


def int8_size(model, name, sizes):
  """Bytes of the int8 TFLite export of a (string-free) model."""
  signature = [((sizes['maxlen'],), 'int32')] if name == 'subclassed' else None
  return len(lmf_tf.to_tflite(model, 'int8', input_signature=signature))


def reload_and_ship(name, folder, sizes):
  """In a fresh process: loads `<name>.keras`, compares its outputs with the saved ones, folds it, exports it to
  TFLite int8 and runs it with LiteRT; returns the measurements."""
  saved = np.load(os.path.join(folder, f'{name}.npz'))
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    model = keras.saving.load_model(os.path.join(folder, f'{name}.keras'))
  inputs, labels = saved['inputs'], saved['labels']
  outputs = outputs_of(model, string_tensor(inputs.tolist()) if name == 'strings' else inputs)
  result = {'keras accuracy': float(np.mean(saved['outputs'].argmax(-1) == labels)),
            'reloaded max difference': float(np.abs(outputs - saved['outputs']).max()),
            'params': int(saved['params']), 'reloaded params': model.count_params(),
            '.keras bytes': os.path.getsize(os.path.join(folder, f'{name}.keras')),
            'optimizer not reloaded': [str(w.message) for w in caught if 'Skipping variable loading' in str(w.message)]}
  if name == 'strings':
    parts = lmf_tf.strings.write_string_model(model, os.path.join(folder, 'strings_shipped'))
    shipped = lmf_tf.strings.StringModelRunner(os.path.join(folder, 'strings_shipped')).predict(inputs.tolist())
    result.update({'tflite int8 bytes': parts['model'], 'deployable bytes': parts['total']})
  else:
    signature = [((sizes['maxlen'],), 'int32')] if name == 'subclassed' else None
    flatbuffer = lmf_tf.to_tflite(lmf_tf.fold_projection(model), 'int8', input_signature=signature)
    shipped = lmf_tf.TfliteRunner(flatbuffer).predict(list(inputs))
    result.update({'tflite int8 bytes': len(flatbuffer), 'deployable bytes': len(flatbuffer)})
  before_path = os.path.join(folder, f'{name}_before.keras')
  if os.path.exists(before_path):  # the int8 file of the model before the swap, for comparison
    before = keras.saving.load_model(before_path)
    result['before the swap: tflite int8 bytes'] = int8_size(
        lmf_tf.strings.split_string_model(before)[0] if name == 'strings' else before, name, sizes)
  result['tflite int8 accuracy'] = float(np.mean(shipped.argmax(-1) == labels))
  return result


def ship_all(folder, names):
  """Runs `reload_and_ship` for every name in one fresh Python process; returns {name: measurements}."""
  with open(os.path.join(folder, 'sizes.json'), encoding='utf-8') as f:
    sizes = json.load(f)
  return {name: reload_and_ship(name, folder, sizes) for name in names}


def run(quick, folder, names=tuple(user_models.BUILDERS)):
  """Trains and saves every shape here, then reloads and ships them in one fresh process; returns the table rows."""
  data, sizes = synthetic_data() if quick else sst2_data()
  with open(os.path.join(folder, 'sizes.json'), 'w', encoding='utf-8') as f:
    json.dump(sizes, f)
  epochs, at_epoch = (2, 1) if quick else (4, 2)
  start = time.time()
  trained = {name: train_and_save(name, data, sizes, folder, epochs, at_epoch, save_before=not quick,
                                  learning_rate=QUICK_LEARNING_RATES.get(name, 1e-2) if quick else 2e-3)
             for name in names}
  print(f'trained and saved in {time.time() - start:.1f} s', file=sys.stderr)
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(lmf_tf.__file__)),
                                                                   os.environ.get('PYTHONPATH')]))}
  result = subprocess.run([sys.executable, os.path.abspath(__file__), '--ship_dir', folder, '--names', *names],
                          capture_output=True, text=True, env=env, timeout=600)
  if result.returncode:
    raise RuntimeError(f'the fresh process failed:\n{result.stderr[-4000:]}')
  with open(os.path.join(folder, 'shipped.json'), encoding='utf-8') as f:
    shipped = json.load(f)
  return {name: {**trained[name], **shipped[name]} for name in names}


def position_table_bytes(vocab=13_821, dim=32, maxlen=48):
  """TFLite bytes of the transformer (random weights) with its token embedding factorized at R = 90, and with its
  position embedding factorized too: {'token only' | 'token and position': {kind: bytes}}."""
  sizes = {}
  for label, layers in (('token only', ['token_emb']), ('token and position', ['token_emb', 'pos_emb'])):
    keras.utils.set_random_seed(1)
    model = user_models.transformer(vocab, dim, maxlen)
    model(np.ones((1, maxlen), np.int32))
    rng = np.random.default_rng(0)  # non-zero weights: the converter drops all-zero biases
    model.set_weights([rng.uniform(-1, 1, w.shape).astype(w.dtype) for w in model.get_weights()])
    lmf_tf.compress_model(model, reduction=90, layers=layers)
    sizes[label] = {kind: len(lmf_tf.to_tflite(model, kind)) for kind in ('float32', 'int8')}
  return sizes


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='the synthetic task instead of SST-2')
  parser.add_argument('--position_table', action='store_true', help='only the TFLite bytes of the transformer with '
                      'and without its position embedding factorized')
  parser.add_argument('--ship_dir', help=argparse.SUPPRESS)  # the fresh process's part
  parser.add_argument('--names', nargs='*', default=list(user_models.BUILDERS), help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.ship_dir:
    shipped = ship_all(args.ship_dir, args.names)
    with open(os.path.join(args.ship_dir, 'shipped.json'), 'w', encoding='utf-8') as f:
      json.dump(shipped, f, indent=1)
    return
  if args.position_table:
    print(position_table_bytes())
    return
  start = time.time()
  with tempfile.TemporaryDirectory(prefix='lmf_tf_shapes_') as folder:
    rows = run(args.quick, folder, tuple(args.names))
  print(f'\n{"synthetic task" if args.quick else "SST-2 test (1,821 sentences)"}, OnlineCompression(reduction=90)')
  for name, row in rows.items():
    print(f'\n{name}:')
    for key, value in row.items():
      print(f'  {key:28} {value:,.4f}' if isinstance(value, float) else f'  {key:28} {value:,}'
            if isinstance(value, int) else f'  {key:28} {value}')
  print(f'\nwall time {time.time() - start:.0f} s')


if __name__ == '__main__':
  main()
