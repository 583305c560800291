"""Compress a trained PTB language model, fine-tune it, and measure it (Grachev, Ignatov, Savchenko 2017).

`compress_lm(config)` loads the model that `lm_training.train_lm` saved, applies one method, fine-tunes the result
with SGD on the training set (choosing the epoch by valid perplexity, the state before fine-tuning included), and
reports valid and test perplexity, parameters, checkpoint bytes and words per second, like `train_lm`.

The methods (§3 of the paper), each a reusable piece of `lmf_tf`:
  - 'lowrank' (§3.3): the truncated SVD W ≈ (U_k Σ_k)(V_kᵀ) of the embedding (`CompressibleEmbedding`), the
    softmax (`lowrank.LowRankDense`) and the LSTM input and recurrent matrices (`lowrank.LowRankLSTM`), with ranks
    per matrix or from one reduction R for every chosen matrix (`LmFactorization.from_reduction`);
  - 'prune' (§3.1): magnitude pruning of every weight matrix to a target sparsity, fine-tuned under the fixed mask
    (`pruning`), and stored sparsely (packed mask + non-zero values) so the checkpoint shrinks;
  - 'quantize' (§3.2): post-training b-bit fixed-point quantization of every matrix (`quantization`, the classifier
    baseline), stored as integers; not fine-tuned (the 8-bit model loses almost nothing, so there is nothing to
    regain, and training through the rounding would need a straight-through estimator);
  - 'tt' (§3.4): the embedding and softmax as tensor-train matrices (`tt_layers`), initialised by TT-SVD.
"""

import dataclasses
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import io_utils, results
from lmf_tf.compression import model_size, pruning, quantization
from lmf_tf.compression.factorization import truncated_svd
from lmf_tf.compression.rank import validate_rank
from lmf_tf.errors import ConfigError
from lmf_tf.lm import data as lm_data
from lmf_tf.lm import models as lm_models
from lmf_tf.lm import training as lm_training
from lmf_tf.lm.config import LmCompressionConfig, LmFactorization
from lmf_tf.lm.schedules import DelayedEpochDecay

def factorization_for(config, vocab_size, hidden_size):
  """The `LmFactorization` that `config` ('lowrank' or 'tt') asks for."""
  if config.method == 'tt':
    return LmFactorization(
        embedding_tt_rank=config.tt_rank if 'embedding' in config.matrices else None,
        softmax_tt_rank=config.tt_rank if 'softmax' in config.matrices else None, tt_cores=config.tt_cores)
  base = (LmFactorization.from_reduction(config.reduction, vocab_size, hidden_size, config.matrices)
          if config.reduction is not None else LmFactorization())
  overrides = {name: getattr(config, name) for name in ('embedding_rank', 'softmax_rank', 'lstm_input_rank',
                                                        'lstm_recurrent_rank') if getattr(config, name) is not None}
  for name, rank in overrides.items():
    shape = {'embedding_rank': (vocab_size, hidden_size), 'softmax_rank': (hidden_size, vocab_size)}.get(
        name, (hidden_size, 4 * hidden_size))
    validate_rank(rank, *shape, name=f'--{name}')
  return dataclasses.replace(base, **overrides)


def _svd_factors(matrix, rank):
  svd = truncated_svd(np.asarray(matrix), rank)
  return svd.left, svd.right


def factorized_copy(model, factorization, lm_config):
  """A new `LstmLanguageModel` with the matrices of `factorization` in low-rank (truncated SVD) or TT (TT-SVD) form
  and every other weight copied from the dense, trained `model`."""
  new = lm_models.build_lm(lm_config, model.vocab_size, factorization=factorization)
  embedding = model.word_embedding.full_matrix()
  if factorization.embedding_tt_rank is not None:
    new.word_embedding.cores_from(embedding)
  elif factorization.embedding_rank is not None:
    left, right = _svd_factors(embedding, factorization.embedding_rank)
    new.word_embedding.low_rank_embeddings.assign(left)
    new.word_embedding.projection.assign(right)
  else:
    new.word_embedding.embeddings.assign(embedding)
  for old_lstm, new_lstm in zip(model.lstms, new.lstms):
    kernel, recurrent, bias = (w.numpy() for w in (old_lstm.cell.kernel, old_lstm.cell.recurrent_kernel,
                                                   old_lstm.cell.bias))
    if factorization.factorizes_lstm:
      new_lstm.set_from_lstm(kernel, recurrent, bias, _svd_factors)
    else:
      new_lstm.set_weights([kernel, recurrent, bias])
  kernel, bias = model.softmax.kernel.numpy(), model.softmax.bias.numpy()
  if factorization.softmax_tt_rank is not None:
    new.softmax.cores_from(kernel)
    new.softmax.bias.assign(bias)
  elif factorization.softmax_rank is not None:
    new.softmax.set_factors(*_svd_factors(kernel, factorization.softmax_rank), bias)
  else:
    new.softmax.set_weights([kernel, bias])
  return new


def pruning_targets(model, matrices):
  """`weight_dict` names of the weight matrices of `matrices` (embedding, softmax, lstm), biases excluded."""
  layers = {'embedding': [model.word_embedding], 'softmax': [model.softmax], 'lstm': list(model.lstms)}
  wanted = {id(w) for m in matrices for layer in layers[m] for w in layer.weights}
  return [name for name, w in model_size.weight_dict(model).items() if len(w.shape) >= 2 and id(w) in wanted]


def _stored_numbers(model, masks=None):
  """Numbers the checkpoint keeps: every weight entry, less the pruned zeros."""
  total = lm_models.count_params(model)
  if masks:
    total -= sum(int(np.sum(~m)) for m in masks.values())
  return total


def compress_lm(config: LmCompressionConfig, show_progress=False):
  """Compresses the LM in `config.baseline_dir` by `config.method`, fine-tunes it and measures it (with
  `show_progress`, a progress bar within each fine-tuning epoch).

  Writes, atomically:
    <workdir>/<run>/final/: the compressed model's checkpoint (dense weights; for 'prune' the packed masks and
      non-zero values; for 'quantize' the integers and scales) and config.json (with `storage`), and vocab.txt;
    <results_dir>/<run>.json: the baseline's and this run's perplexities, parameters, checkpoint bytes, words per
      second, the fine-tuning history and its wall time.
  Returns:
    (model, results dict).
  """
  config = config.validate()
  baseline, lm_config, vocabulary = lm_training.load_trained_lm(config.baseline_dir)
  baseline_meta = io_utils.read_json(os.path.join(config.baseline_dir, 'config.json'), 'checkpoint config')
  baseline_run = os.path.basename(os.path.dirname(os.path.abspath(config.baseline_dir)))
  run_name = config.run_name(baseline_run)
  with io_utils.run_lock(os.path.join(config.workdir, run_name)):
    return _compress_lm(config, baseline, lm_config, vocabulary, baseline_meta, baseline_run, run_name, show_progress)


def _compress_lm(config, baseline, lm_config, vocabulary, baseline_meta, baseline_run, run_name, show_progress):
  wall_start = time.time()
  keras.utils.set_random_seed(config.seed)
  lm_config = dataclasses.replace(lm_config, seed=config.seed, workdir=config.workdir,
                                  results_dir=config.results_dir)
  corpus = lm_data.load_corpus(lm_config.data_dir)
  if len(corpus.vocabulary) != len(vocabulary):
    raise ConfigError(f'{config.baseline_dir}: the model has a vocabulary of {len(vocabulary)}, the corpus in '
                      f'{lm_config.data_dir} one of {len(corpus.vocabulary)}')
  sizes = corpus.sizes()
  train_data = lm_data.tbptt_dataset(corpus.train, lm_config.batch_size, lm_config.num_steps)
  steps_per_epoch = lm_data.num_windows(sizes['train'], lm_config.batch_size, lm_config.num_steps)
  valid_data, test_data = (lm_data.tbptt_dataset(ids, lm_config.eval_batch_size, lm_config.num_steps,
                                                 drop_remainder=False) for ids in (corpus.valid, corpus.test))

  masks, quantized, factorization = None, None, None
  if config.method in ('lowrank', 'tt'):
    factorization = factorization_for(config, baseline.vocab_size, baseline.hidden_size)
    model = factorized_copy(baseline, factorization, lm_config)
  else:
    model = baseline
    if config.method == 'prune':
      masks = pruning.magnitude_masks(model, config.sparsity, names=pruning_targets(model, config.matrices))
      pruning.apply_masks(model, masks)
    else:
      quantized = quantization.quantize_model(model, config.bits)
  logging.info('Compressed by %s: %d stored numbers (baseline %d).', config.tag, _stored_numbers(model, masks),
               lm_models.count_params(baseline))

  before = lm_training.evaluate_perplexity(model, valid_data)
  history = [{'epoch': 0, 'step': 0, 'valid_perplexity': before['perplexity']}]
  logging.info('Before fine-tuning: valid ppl %.2f.', before['perplexity'])
  best = (before['perplexity'], 0, [w.numpy() for w in model.weights])
  fine_tune_seconds = 0.0
  progress = lm_training.Progress()
  epochs = 0 if config.method == 'quantize' else config.fine_tune_epochs
  if epochs:
    start = time.time()
    optimizer = keras.optimizers.SGD(
        DelayedEpochDecay(config.fine_tune_learning_rate, config.fine_tune_lr_decay, 1, steps_per_epoch),
        global_clipnorm=lm_config.max_grad_norm)
    train_step = lm_training.make_train_step(model, optimizer, masks)
    total_steps = min(epochs * steps_per_epoch, config.max_steps or math.inf)
    for epoch in range(epochs):
      epoch_history = []
      valid = lm_training.train_epochs(model, train_step, optimizer, train_data, valid_data, lm_config,
                                       steps_per_epoch, total_steps, progress, epoch_history, epochs=1,
                                       show_progress=show_progress)
      if valid is None:
        break
      history.append({**epoch_history[0], 'epoch': epoch + 1})
      if valid['perplexity'] < best[0]:
        best = (valid['perplexity'], epoch + 1, [w.numpy() for w in model.weights])
    fine_tune_seconds = time.time() - start
  for variable, value in zip(model.weights, best[2]):
    variable.assign(value)
  valid = {'perplexity': best[0], 'epoch': best[1]}
  test = lm_training.evaluate_perplexity(model, test_data)

  run_dir = os.path.join(config.workdir, run_name)
  final_dir = os.path.join(run_dir, 'final')
  vocab_path = os.path.join(run_dir, 'vocab.txt')
  vocabulary.save(vocab_path)
  storage = 'sparse' if masks else 'quantized' if quantized else 'dense'
  checkpoint = (pruning.sparse_checkpoint(model, masks) if masks else
                quantization.quantized_checkpoint(model, quantized) if quantized else None)
  metadata = {'config': dataclasses.asdict(lm_config), 'model': model.get_config(), 'storage': storage,
              'vocabulary': os.path.relpath(vocab_path, final_dir), 'compression': dataclasses.asdict(config)}
  size = model_size.save_inference_checkpoint(model, final_dir, metadata, checkpoint=checkpoint)
  baseline_results_path = os.path.join(config.results_dir, baseline_run + '.json')
  baseline_result = results.load(baseline_results_path) if os.path.exists(baseline_results_path) else None
  baseline_bytes = model_size.checkpoint_size(config.baseline_dir).total_bytes
  result = results.LmResult(**{
      'run': run_name,
      'task': 'ptb_lm_compression',
      'baseline_run': baseline_run,
      'baseline_dir': os.path.abspath(config.baseline_dir),
      'compression': dataclasses.asdict(config),
      'method': config.method,
      'level': config.tag,
      'factorization': dataclasses.asdict(factorization) if factorization else None,
      'sparsity': pruning.sparsity_of(model, masks) if masks else None,
      'params': _stored_numbers(model, masks),
      'baseline_params': lm_models.count_params(baseline) if factorization else lm_models.count_params(model),
      'storage': storage,
      'valid_perplexity_before_fine_tuning': before['perplexity'],
      'history': history,
      'chosen_epoch': best[1],
      'valid_perplexity': valid['perplexity'],
      'test_perplexity': test['perplexity'],
      'test': test,
      'baseline_valid_perplexity': baseline_result.valid_perplexity if baseline_result else None,
      'baseline_test_perplexity': baseline_result.test_perplexity if baseline_result else None,
      'checkpoint_bytes': size.as_dict(),
      'baseline_checkpoint_bytes': baseline_bytes,
      'size_ratio': baseline_bytes / size.total_bytes,
      'fine_tune_steps': progress.step,
      'fine_tune_seconds': round(fine_tune_seconds, 1),
      'train_words_per_second': progress.timed_words / max(progress.timed_seconds, 1e-9) if progress.step else None,
      'checkpoint_dir': os.path.abspath(final_dir),
      'wall_seconds': round(time.time() - wall_start, 1),
      'environment': results.environment(),
  })
  path = results.write(result, config.results_dir)
  logging.info('%s: valid ppl %.2f (epoch %d), test ppl %.2f; %d stored numbers, checkpoint %d bytes (%.2fx smaller '
               'than the baseline); fine-tuning %.0fs; wrote %s.', run_name, valid['perplexity'], best[1],
               test['perplexity'], result.params, size.total_bytes, result.size_ratio, fine_tune_seconds,
               path)
  return model, dataclasses.asdict(result)
