"""Configs as the one source of their settings: a dataclass field carries its default, help text, choices and
whether it changes a run's identity (`setting`); the absl flags of a script are generated from the fields
(`define_flags`, `config_from_flags`), and an experiment plan turns a config back into a command line
(`config_argv`). No TensorFlow here.
"""

import dataclasses
import types
import typing

from absl import flags


def setting(default, help_text, choices=None, identity=True):
  """A config field: `help_text` for its flag, `choices` for an enum flag, and `identity`: whether a non-default
  value makes a different run (a different run name); paths and execution settings do not."""
  return dataclasses.field(default=default, metadata={'help': help_text, 'choices': choices, 'identity': identity})


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


def config_argv(config, script, python):
  """`[python, script, --flag=value...]` that makes `config` again: one flag per field that differs from the
  dataclass's default (lists comma-separated, booleans as --name / --noname)."""
  defaults = type(config)()
  argv = [python, script]
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if value == getattr(defaults, field.name) or value is None:
      continue
    if isinstance(value, bool):
      argv.append(f'--{field.name}' if value else f'--no{field.name}')
    elif isinstance(value, (tuple, list)):
      argv.append(f'--{field.name}={",".join(map(str, value))}')
    else:
      argv.append(f'--{field.name}={value!r}' if isinstance(value, float) else f'--{field.name}={value}')
  return argv
