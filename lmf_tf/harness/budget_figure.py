"""The budget front's figure: test accuracy of the shipped files against deployable bytes (log x), one panel per
data set, with the LSTM rows of Tables 2-3 (paper recipe, recovery recipes, 8-bit; their Keras accuracy) drawn
beside it, and the front of plans whose words are hashed (no vocabulary file) where there is one, dashed. Rows of
the tables more than `BELOW` points under the front's lowest point are left off the scale, and counted; the hashed
front is drawn whole."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top

MARKERS = {'paper recipe': ('o', 'tab:gray'), 'recovery recipes': ('s', 'tab:orange'), '8-bit': ('^', 'tab:green')}
BELOW = 8.0
TITLES = {'sst2': 'SST-2 (binary sentiment)', 'clinc150': 'CLINC150 (150 intents, in-scope)'}


def draw(front, reference, path, hashed=None):
  """Writes the PNG to `path` atomically; returns `path`. `front`: the front of plans with a vocabulary file, or
  None; `hashed`: the front of plans whose words are hashed (no vocabulary file), drawn dashed, or None."""
  drawn = [f for f in (front, hashed) if f is not None]
  datasets = [d for d in TITLES if any(d in set(f['dataset']) for f in drawn)] or list(TITLES)
  fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.6), squeeze=False)
  for ax, dataset in zip(axes[0], datasets):
    rows = front[front['dataset'] == dataset].sort_values('deployable_bytes') if front is not None else None
    if rows is not None:
      ax.errorbar(rows['deployable_bytes'], rows['test_mean'], yerr=rows['test_std'], fmt='-D', color='tab:blue',
                  label='budget front: plan chosen on dev, shipped file run by LiteRT', capsize=3, zorder=3)
    floor = (rows['test_mean'].min() if rows is not None and len(rows) else 50.0) - BELOW
    if hashed is not None:
      words = hashed[hashed['dataset'] == dataset].sort_values('deployable_bytes')
      ax.errorbar(words['deployable_bytes'], words['test_mean'], yerr=words['test_std'], fmt='--v',
                  color='tab:purple', label='words hashed, no vocabulary file (chosen on dev, LiteRT)', capsize=3,
                  zorder=2)
      floor = min([floor] + [m - s - 1 for m, s in zip(words['test_mean'], words['test_std'])])  # all of it shown
    hidden = 0
    for budget in (rows if rows is not None else words)['budget_bytes']:
      ax.axvline(budget, color='tab:blue', lw=0.5, ls=':', alpha=0.5)
    if reference is not None and len(reference):
      for group, (marker, color) in MARKERS.items():
        ref = reference[(reference['dataset'] == dataset) & (reference['group'] == group)]
        hidden += int((ref['test_mean'] < floor).sum())
        ref = ref[ref['test_mean'] >= floor]
        if len(ref):
          ax.scatter(ref['deployable_bytes'], ref['test_mean'], marker=marker, color=color, s=22,
                     label=f'{group} (Tables 2-3, Keras accuracy)', alpha=0.8)
    ax.set_ylim(bottom=floor)
    if hidden:
      ax.text(0.01, 0.98, f'{hidden} rows of Tables 2-3 below {floor:.0f}% not shown', transform=ax.transAxes,
              fontsize=7, color='gray', va='top')
    ax.set_xscale('log')
    ax.set_xlabel('deployable bytes: TFLite file + vocabulary file (log)')
    ax.set_ylabel('test accuracy (%), mean ± std over 3 seeds')
    ax.set_title(TITLES.get(dataset, dataset))
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8, loc='lower right')
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, format='png', dpi=110, bbox_inches='tight')
  plt.close(fig)
  return path
