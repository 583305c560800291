"""The PTB language-model foundation: data, TBPTT windows, state carrying, perplexity, training."""

import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from lmf_tf.compression import model_size
from lmf_tf.lm import config as lm_config
from lmf_tf.lm import data as lm_data
from lmf_tf.lm import models as lm_models
from lmf_tf.lm import schedules as lm_schedules
from lmf_tf.lm import training as lm_training
from lmf_tf.errors import ConfigError, DataFormatError

WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', '<unk>', 'dog', 'ran', 'home']


def sentences(n, offset=0):
  """PTB-style lines (a leading and a trailing space) over WORDS, of 3 to 7 words."""
  return [' ' + ' '.join(WORDS[(i * 7 + j * (i % 3 + 1)) % len(WORDS)] for j in range(3 + (i + offset) % 5)) + ' '
          for i in range(offset, offset + n)]


def write_corpus(root, valid=None, test=None):
  root.mkdir(parents=True, exist_ok=True)
  (root / 'ptb.train.txt').write_text('\n'.join(sentences(60)) + '\n')
  (root / 'ptb.valid.txt').write_text('\n'.join(valid or sentences(12, 100)) + '\n')
  (root / 'ptb.test.txt').write_text('\n'.join(test or sentences(12, 200)) + '\n')
  return root


def tiny_config(tmp_path, **overrides):
  settings = dict(name='tiny', hidden_size=8, num_steps=3, batch_size=2, eval_batch_size=2, epochs=2, init_scale=0.3,
                  decay_after_epochs=1, data_dir=str(tmp_path / 'ptb'), workdir=str(tmp_path / 'ck'),
                  results_dir=str(tmp_path / 'results'))
  return lm_config.LmConfig(**{**settings, **overrides}).validate()


def tiny_model(vocab_size=10, hidden_size=8, dropout=0.0, seed=0):
  keras.utils.set_random_seed(seed)
  config = lm_config.LmConfig(name='tiny', hidden_size=hidden_size, dropout=dropout, init_scale=0.5)
  return lm_models.build_lm(config, vocab_size)


# Data and TBPTT windows.

def test_vocabulary_and_ids_from_a_tiny_corpus(tmp_path):
  corpus = lm_data.load_corpus(str(write_corpus(tmp_path / 'ptb')))
  vocabulary = corpus.vocabulary
  assert sorted(vocabulary.words) == sorted(WORDS + ['<eos>'])
  lines = sentences(60)
  assert corpus.sizes()['train'] == sum(len(line.split()) + 1 for line in lines)
  expected = [vocabulary.ids[w] for line in lines for w in line.split() + ['<eos>']]
  np.testing.assert_array_equal(corpus.train, expected)
  assert corpus.train.dtype == np.int32
  vocabulary.save(str(tmp_path / 'vocab.txt'))
  assert lm_data.LmVocabulary.load(str(tmp_path / 'vocab.txt')).words == vocabulary.words


def test_worked_example_of_the_windows():
  x = np.arange(10)  # streams [0..4], [5..9]
  windows = [(a.numpy().tolist(), b.numpy().tolist()) for a, b in lm_data.tbptt_dataset(x, 2, 2)]
  assert windows == [([[0, 1], [5, 6]], [[1, 2], [6, 7]]), ([[2, 3], [7, 8]], [[3, 4], [8, 9]])]


@pytest.mark.parametrize('num_tokens,batch_size,num_steps', [(103, 4, 5), (60, 3, 7), (41, 1, 6)])
def test_windows_cover_each_stream_once_in_order(num_tokens, batch_size, num_steps):
  ids = (np.arange(num_tokens) * 7919) % 1009  # distinct ids, not sorted: order errors show
  stream_len = num_tokens // batch_size
  expected_streams = [ids[r * stream_len:(r + 1) * stream_len] for r in range(batch_size)]
  for drop_remainder in (True, False):
    dataset = lm_data.tbptt_dataset(ids, batch_size, num_steps, drop_remainder)
    for _ in range(2):  # every epoch reads the same windows again
      windows = list(dataset.as_numpy_iterator())
      assert len(windows) == lm_data.num_windows(num_tokens, batch_size, num_steps, drop_remainder)
      assert all(x.shape == y.shape and x.shape[0] == batch_size for x, y in windows)
      assert all(x.shape[1] == num_steps for x, _ in (windows if drop_remainder else windows[:-1]))
      for r, stream in enumerate(expected_streams):
        # Row r of window i continues row r of window i - 1: concatenated, the rows give back stream r.
        inputs = np.concatenate([x[r] for x, _ in windows])
        targets = np.concatenate([y[r] for _, y in windows])
        covered = len(inputs)
        np.testing.assert_array_equal(inputs, stream[:covered])
        np.testing.assert_array_equal(targets, stream[1:covered + 1])
        if not drop_remainder:
          assert covered == stream_len - 1  # every target of the stream is predicted exactly once
        else:
          assert stream_len - 1 - num_steps < covered <= stream_len - 1
  # Without drop_remainder the windows read all B L tokens of the streams; only the N mod B < B last ones are left.
  full = lm_data.tbptt_dataset(ids, batch_size, num_steps, drop_remainder=False)
  windows = list(full.as_numpy_iterator())
  read = np.concatenate([np.concatenate([np.concatenate([x[r] for x, _ in windows]), windows[-1][1][r, -1:]])
                         for r in range(batch_size)])
  np.testing.assert_array_equal(read, ids[:batch_size * stream_len])
  assert num_tokens - len(read) < batch_size


def test_too_short_a_corpus_is_an_error():
  with pytest.raises(ConfigError, match='too few'):
    lm_data.tbptt_dataset(np.arange(10), 5, 2)


# Bad input, named by file and line.

@pytest.mark.parametrize('bad_line,message', [
    (' the cat saw a dog ', r"ptb\.valid\.txt:2: word 'saw' is not in the 11-word vocabulary"),
    ('', r'ptb\.valid\.txt:2: empty line'),
    (' the <eos> cat ', r'ptb\.valid\.txt:2: the token <eos> is reserved'),
])
def test_bad_valid_line_is_named_by_file_and_line(tmp_path, bad_line, message):
  root = write_corpus(tmp_path / 'ptb', valid=[' the cat ', bad_line, ' a dog '])
  with pytest.raises(DataFormatError, match=message):
    lm_data.load_corpus(str(root))


def test_unk_is_an_ordinary_word_and_non_utf8_is_named(tmp_path):
  root = write_corpus(tmp_path / 'ptb', valid=[' <unk> <unk> the ', ' dog '])
  corpus = lm_data.load_corpus(str(root))
  unk, eos = corpus.vocabulary.ids['<unk>'], corpus.vocabulary.ids['<eos>']
  assert corpus.valid.tolist() == [unk, unk, corpus.vocabulary.ids['the'], eos, corpus.vocabulary.ids['dog'], eos]
  (root / 'ptb.test.txt').write_bytes(b' the cat \n the \xff dog \n')
  with pytest.raises(DataFormatError, match=r'ptb\.test\.txt:2: not UTF-8'):
    lm_data.load_corpus(str(root))


@pytest.mark.slow  # starts TensorFlow in a subprocess (~3.5 s); test_script_reports_bad_data_line_and_exits_non_zero stays fast
def test_script_reports_a_bad_file_and_exits_1(tmp_path, repo_root):
  root = write_corpus(tmp_path / 'ptb', test=[' the cat ', ' a dog ', ' the zebra '])
  result = subprocess.run(
      [sys.executable, os.path.join(repo_root, 'scripts', 'train_lm.py'), f'--data_dir={root}',
       f'--workdir={tmp_path / "ck"}', f'--results_dir={tmp_path / "res"}', '--max_steps=1'],
      capture_output=True, text=True, timeout=120, env={**os.environ, 'PYTHONPATH': repo_root})
  assert result.returncode == 1
  assert re.search(r"error: \S*ptb\.test\.txt:3: word 'zebra' is not in", result.stderr), result.stderr[-2000:]
  assert not (tmp_path / 'res').exists()


# The real vendored PTB.

def test_real_ptb_files_vocabulary_and_token_counts(repo_root):
  data_dir = os.path.join(repo_root, 'data', 'ptb')
  provenance = open(os.path.join(data_dir, 'PROVENANCE.md'), encoding='utf-8').read()
  for name in lm_data.PTB_FILES.values():
    expected = re.search(rf'\| {re.escape(name)} \|.*`([0-9a-f]{{64}})`', provenance).group(1)
    with open(os.path.join(data_dir, name), 'rb') as f:
      assert hashlib.sha256(f.read()).hexdigest() == expected, name
  corpus = lm_data.load_corpus(data_dir)
  assert corpus.sizes() == {'train': 929_589, 'valid': 73_760, 'test': 82_430, 'vocab_size': 10_000}
  assert corpus.vocabulary.words[:3] == ['the', '<unk>', '<eos>']
  assert lm_data.num_windows(929_589, 20, 20) == 2_323  # the small config's epoch


# The model: state carried across windows.

def test_state_is_carried_across_windows():
  model = tiny_model()
  rng = np.random.default_rng(0)
  first, second = (rng.integers(0, 10, (3, 4)).astype(np.int32) for _ in range(2))
  _, state = model(first)
  carried, carried_state = model(second, initial_state=state)
  from_zero, _ = model(second)
  from_explicit_zero, _ = model(second, initial_state=model.zero_state(3))
  assert np.abs(np.asarray(carried) - np.asarray(from_zero)).max() > 1e-3
  np.testing.assert_allclose(from_zero, from_explicit_zero, atol=1e-6)
  both, both_state = model(np.concatenate([first, second], axis=1))
  np.testing.assert_allclose(both[:, 4:], carried, atol=1e-5)
  for (h1, c1), (h2, c2) in zip(carried_state, both_state):
    np.testing.assert_allclose(h1, h2, atol=1e-5)
    np.testing.assert_allclose(c1, c2, atol=1e-5)


def test_evaluation_over_windows_equals_one_pass_over_each_stream():
  # evaluate_perplexity carries the state from window to window (and through a shorter last window): it must give
  # the perplexity of one uninterrupted pass over every stream.
  model = tiny_model()
  ids = np.random.default_rng(1).integers(0, 10, 47).astype(np.int32)
  for batch_size, num_steps in ((1, 6), (2, 5)):
    result = lm_training.evaluate_perplexity(model, lm_data.tbptt_dataset(ids, batch_size, num_steps, False))
    streams = lm_data.streams(ids, batch_size)
    logits, _ = model(streams[:, :-1])
    cross_entropy = float(tf.reduce_mean(lm_training.token_cross_entropy(streams[:, 1:], logits)))
    assert result['words'] == streams[:, 1:].size
    assert result['perplexity'] == pytest.approx(math.exp(cross_entropy), rel=1e-5)


def test_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
  vocab_size = 37
  model = tiny_model(vocab_size)
  softmax = model.get_layer('softmax')
  for w in softmax.weights:
    w.assign(np.zeros(w.shape, np.float32))  # all-zero logits: p = 1 / V for every word
  ids = np.random.default_rng(2).integers(0, vocab_size, 200).astype(np.int32)
  result = lm_training.evaluate_perplexity(model, lm_data.tbptt_dataset(ids, 3, 7, drop_remainder=False))
  assert result['perplexity'] == pytest.approx(vocab_size, rel=1e-5)
  assert result['cross_entropy'] == pytest.approx(math.log(vocab_size), rel=1e-6)
  assert result['words'] == 3 * (200 // 3 - 1)


def test_configs_and_parameter_counts():
  assert lm_config.get_lm_config('small', epochs=2).epochs == 2
  assert lm_config.get_lm_config('large').dropout == 0.65
  assert lm_config.get_lm_config('small', max_steps=200).run_name == 'ptb_small_steps200_seed1'
  with pytest.raises(ConfigError, match="--config='huge'"):
    lm_config.get_lm_config('huge')
  with pytest.raises(ConfigError, match='--dropout'):
    lm_config.get_lm_config('medium', dropout=1.0)
  keras.utils.set_random_seed(0)
  assert lm_models.count_params(lm_models.build_lm(lm_config.get_lm_config('small'), 10_000)) == 4_651_600


def test_learning_rate_schedule_at_known_steps_and_serialization():
  schedule = lm_schedules.DelayedEpochDecay(1.0, 0.5, decay_after_epochs=4, steps_per_epoch=2323)
  expected = {0: 1.0, 9291: 1.0, 9292: 0.5, 11615: 0.25, 12 * 2323: 0.5 ** 9}
  for step, value in expected.items():
    assert float(schedule(step)) == pytest.approx(value, rel=1e-6), step
  again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
  assert isinstance(again, lm_schedules.DelayedEpochDecay) and again.get_config() == schedule.get_config()


# Training.

def test_one_training_step_changes_every_weight_and_stays_finite():
  model = tiny_model(dropout=0.3)
  config = lm_config.LmConfig(name='tiny', hidden_size=8, num_steps=5, batch_size=4)
  optimizer = lm_training.create_optimizer(config, steps_per_epoch=10)
  train_step = lm_training.make_train_step(model, optimizer)
  ids = np.arange(4 * 6) % 10  # every word appears, so every embedding row can move
  inputs, targets = next(iter(lm_data.tbptt_dataset(ids, 4, 5)))
  before = [w.numpy().copy() for w in model.trainable_weights]
  loss, state = train_step(inputs, targets, model.zero_state(4))
  assert np.isfinite(float(loss)) and float(loss) > 0
  assert len(state) == 2 and all(np.isfinite(t).all() for pair in state for t in pair)
  for w, old in zip(model.trainable_weights, before):
    assert np.isfinite(w.numpy()).all(), w.path
    assert not np.allclose(w.numpy(), old), f'{w.path} did not change'
  assert int(optimizer.iterations) == 1


@pytest.mark.slow  # a whole training run of the LM script
def test_train_lm_end_to_end_on_a_tiny_corpus(tmp_path, capsys):
  write_corpus(tmp_path / 'ptb')
  config = tiny_config(tmp_path)
  model, results = lm_training.train_lm(config)
  saved = json.loads((tmp_path / 'results' / 'ptb_tiny_seed1.json').read_text())
  assert saved == json.loads(json.dumps(results))
  windows = saved['data']['windows_per_epoch']
  assert saved['steps'] == 2 * windows and not saved['stopped_by_max_steps']
  assert [h['epoch'] for h in saved['history']] == [1, 2]
  assert [h['learning_rate'] for h in saved['history']] == pytest.approx([1.0, 0.5])  # decay after 1 epoch
  assert saved['history'][-1]['train_perplexity'] < saved['history'][0]['train_perplexity']
  assert saved['valid_perplexity'] == saved['history'][-1]['valid_perplexity']
  assert 1 < saved['test_perplexity'] < 11 and saved['train_words_per_second'] > 0
  assert saved['params'] == lm_models.count_params(model)
  sizes = saved['checkpoint_bytes']
  assert 4 * saved['params'] <= sizes['data_bytes'] <= 4 * saved['params'] + 4096
  assert sizes['total_bytes'] == sum(sizes[k] for k in ('data_bytes', 'index_bytes', 'meta_bytes'))
  assert sizes == model_size.checkpoint_size(saved['checkpoint_dir'], saved['params']).as_dict()
  # The checkpoint reloads into the same model.
  again, again_config, vocabulary = lm_training.load_trained_lm(saved['checkpoint_dir'])
  assert again_config == config and len(vocabulary) == saved['data']['vocab_size']
  for a, b in zip(model.weights, again.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # max_steps stops inside the first epoch and still evaluates and saves; on a terminal, with a progress bar.
  _, short = lm_training.train_lm(tiny_config(tmp_path, max_steps=3), show_progress=True)
  shown = capsys.readouterr().out
  assert '3/3' in shown and 'train_ppl' in shown
  assert short['run'] == 'ptb_tiny_steps3_seed1' and short['steps'] == 3 and short['stopped_by_max_steps']
  assert len(short['history']) == 1 and short['history'][0]['windows'] == 3


@pytest.mark.slow  # a training run stopped and resumed (as the other resume tests)
def test_interrupted_training_resumes_after_its_last_epoch(tmp_path, monkeypatch):
  write_corpus(tmp_path / 'ptb')
  _, whole = lm_training.train_lm(tiny_config(tmp_path, epochs=3, workdir=str(tmp_path / 'whole')))
  calls = {'n': 0}
  real_epoch = lm_training._train_epoch

  def crash_in_third_epoch(*args):
    calls['n'] += 1
    if calls['n'] == 3:
      raise KeyboardInterrupt('killed')
    return real_epoch(*args)

  config = tiny_config(tmp_path, epochs=3, workdir=str(tmp_path / 'cut'))
  monkeypatch.setattr(lm_training, '_train_epoch', crash_in_third_epoch)
  with pytest.raises(KeyboardInterrupt):
    lm_training.train_lm(config)
  state = json.loads((tmp_path / 'cut' / config.run_name / 'train' / 'state.json').read_text())
  assert state['progress']['step'] == 2 * whole['data']['windows_per_epoch'] and len(state['history']) == 2
  monkeypatch.setattr(lm_training, '_train_epoch', real_epoch)
  _, resumed = lm_training.train_lm(config)
  assert [h['epoch'] for h in resumed['history']] == [1, 2, 3] and resumed['steps'] == whole['steps']
  assert resumed['test_perplexity'] == pytest.approx(whole['test_perplexity'], rel=1e-5)
  assert [h['learning_rate'] for h in resumed['history']] == [h['learning_rate'] for h in whole['history']]
  # Another config in the same run directory is refused, naming what differs.
  with pytest.raises(ConfigError, match='learning_rate'):
    lm_training.train_lm(dataclasses.replace(config, learning_rate=0.5))
