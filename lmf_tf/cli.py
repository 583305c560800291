"""What every script shares: flags generated from a config dataclass, one-line errors and exit statuses.

Exit statuses: 0 done; 1 bad input or a failed run (one line `error: ...` on stderr); 2 a command-line usage error
(absl: an unknown flag or a value of the wrong type); 130 interrupted (Ctrl-C).
"""

import dataclasses
import types
import typing

from absl import flags, logging

from lmf_tf.errors import LmfError

_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_bool}


def _flag_type(field):
  """The Python type of a config field (`int`, `float | None` -> float, `tuple` -> list flag)."""
  kind = field.type
  if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
    kind = next(a for a in typing.get_args(kind) if a is not type(None))
  return kind


def define_flags(config_cls, flag_values=flags.FLAGS, skip=(), per_field_defaults=None):
  """Defines one absl flag per field of the dataclass `config_cls`, in field order: its default, its type, its help
  (`metadata['help']`) and, for an enum, its choices (`metadata['choices']`). `per_field_defaults`
  ({model: {field: value}}) adds "Default per model: ..." to the help of the fields it covers. Fields in `skip`
  get no flag."""
  defaults = config_cls()
  for field in dataclasses.fields(config_cls):
    if field.name in skip:
      continue
    help_text = field.metadata.get('help', field.name)
    per_model = {m: d[field.name] for m, d in (per_field_defaults or {}).items() if d.get(field.name) is not None}
    if per_model and getattr(defaults, field.name) is None:
      help_text += ' Default per model: ' + ', '.join(f'{m} {v:g}' if isinstance(v, float) else f'{m} {v}'
                                                        for m, v in per_model.items()) + '.'
    default = getattr(defaults, field.name)
    kind = _flag_type(field)
    if field.metadata.get('choices'):
      flags.DEFINE_enum(field.name, default, list(field.metadata['choices']), help_text, flag_values=flag_values)
    elif kind is tuple:
      flags.DEFINE_list(field.name, list(default), help_text, flag_values=flag_values)
    else:
      _DEFINE[kind](field.name, default, help_text, flag_values=flag_values)


def config_from_flags(config_cls, flag_values=flags.FLAGS, **overrides):
  """A `config_cls` from the parsed flags of `define_flags` (scripts only; library code never reads FLAGS)."""
  values = {}
  for field in dataclasses.fields(config_cls):
    if field.name in flag_values:
      value = flag_values[field.name].value
      values[field.name] = tuple(value) if _flag_type(field) is tuple else value
  return config_cls(**{**values, **overrides})


def run_or_exit(fn, *args, **kwargs):
  """Runs `fn`; an `LmfError` or a missing file becomes one line `error: <message>` and exit status 1, Ctrl-C
  status 130, with no traceback."""
  try:
    return fn(*args, **kwargs)
  except (LmfError, FileNotFoundError) as e:
    logging.debug('%s', e, exc_info=True)  # the full story stays in the run's log file
    raise SystemExit(f'error: {e}') from None
  except KeyboardInterrupt:
    raise SystemExit(130) from None
