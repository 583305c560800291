"""Probe (not part of the library): does LiteRT Quantizer (ai-edge-quantizer, formerly AI Edge Quantizer) quantize
the embedding table, to int8 or int4? docs/budget.md, "What is not built yet".

Two steps, two environments (the quantizer is not among lmf_tf's requirements):

    .venv/bin/python scripts/probes/litert_quantizer.py export /tmp/bag.tflite      # float32, the 45 KB plan's shapes
    python3 -m venv /tmp/aqenv && /tmp/aqenv/bin/pip install -c requirements.lock ai-edge-quantizer==0.10.0
    /tmp/aqenv/bin/python scripts/probes/litert_quantizer.py quantize /tmp/bag.tflite

The model has the shapes of CLINC150's 45 KB plan (a 2,002 x 10 table, a 10 x 64 hidden layer, 150 classes) with
random weights: the probe is about what each recipe stores, not accuracy. Prints each recipe's bytes, or its error.
"""

import sys


def export(path):
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import export as lmf_export  # pylint: disable=g-import-not-at-top
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Embedding(2002, 10, mask_zero=True, name='words')(ids)
  x = keras.layers.GlobalAveragePooling1D()(x)
  x = keras.layers.Dense(64, activation='relu')(x)
  model = keras.Model(ids, keras.layers.Dense(150, activation='softmax')(x))
  for kind in ('float32', 'int8'):
    print(f'converter {kind}: {len(lmf_export.to_tflite(model, kind)):,} bytes')
  lmf_export.write_tflite(model, path, 'float32')


def entry(operation, bits, compute):
  return {'regex': '.*', 'operation': operation, 'algorithm_key': 'min_max_uniform_quantize',
          'op_config': {'weight_tensor_config': {'num_bits': bits, 'symmetric': True, 'granularity': 'CHANNELWISE',
                                                 'dtype': 'INT'},
                        'compute_precision': compute, 'explicit_dequantize': compute == 'FLOAT',
                        'skip_checks': False, 'min_weight_elements': 0}}


def quantize(path):
  from ai_edge_quantizer import quantizer, recipe  # pylint: disable=g-import-not-at-top
  recipes = {name: getattr(recipe, name)() for name in ('dynamic_wi8_afp32', 'dynamic_wi4_afp32')}
  recipes.update({f'GATHER int{bits} ({compute})': [entry('GATHER', bits, compute)]
                  for bits in (8, 4) for compute in ('INTEGER', 'FLOAT')})
  for name, quantization in recipes.items():
    try:
      model = quantizer.Quantizer(path)
      model.load_quantization_recipe(quantization)
      print(f'{name}: {len(model.quantize().quantized_model):,} bytes')
    except ValueError as e:
      print(f'{name}: refused: {str(e).split(". Error")[0]}')


if __name__ == '__main__':
  {'export': export, 'quantize': quantize}[sys.argv[1]](sys.argv[2])
