"""Words per second of trained PTB language models at inference, measured side by side."""

from lmf_tf.lm import data as lm_data
from lmf_tf.lm import training as lm_training


def lm_inference_speed(checkpoint_dirs, words=10_000, repeats=3, batch_size=1):
  """Words per second of each trained LM (`lm_training.load_trained_lm`) on the first `words` test words, side by
  side: one warm-up pass, then `repeats` passes in which the models take turns; the fastest pass counts. On this
  shared 2-core machine a pass is sometimes stalled to 2-2.5x its time (other processes, the hypervisor), so
  noise only adds time; the minimum is the estimate that such stalls do not move (as `timeit` advises).

  A pass is `lm_training.evaluate_perplexity` over TBPTT windows of the model's `num_steps` with `batch_size`
  streams, the state carried, as at deployment of a next-word model. Returns {checkpoint_dir: {'words_per_second',
  'pass_seconds', 'words', 'perplexity'}}; the perplexity is of these words only (a check, not the result).
  """
  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  models, data = {}, {}
  for directory in checkpoint_dirs:
    model, config, _ = lm_training.load_trained_lm(directory)
    ids = lm_data.load_corpus(config.data_dir).test[:words + 1]
    models[directory] = model
    data[directory] = lm_data.tbptt_dataset(ids, batch_size, config.num_steps, drop_remainder=False).cache()
  passes = {directory: [] for directory in models}
  results = {}
  for repeat in range(repeats + 1):  # pass 0 is the warm-up
    for directory, model in models.items():
      measured = lm_training.evaluate_perplexity(model, data[directory])
      if repeat:
        passes[directory].append(measured['seconds'])
      results[directory] = {'words': measured['words'], 'perplexity': measured['perplexity']}
  for directory, seconds in passes.items():
    results[directory].update(pass_seconds=seconds,
                              words_per_second=results[directory]['words'] / min(seconds))
  return results
