"""absl flags shared by the harness scripts: the runner's flags and a comma-separated integer list."""

from absl import flags


class _IntListParser(flags.ListParser):
  """'1,2' -> [1, 2]: a comma-separated list of integers >= `minimum`; anything else is a parse error that absl
  reports with the flag's name."""

  def __init__(self, minimum):
    super().__init__()
    self.minimum = minimum

  def parse(self, argument):
    items = super().parse(argument)
    if not items or not all(item.strip().lstrip('-').isdigit() and int(item) >= self.minimum for item in items):
      raise ValueError(f'must be a comma-separated list of integers >= {self.minimum}, e.g. '
                       f'{self.minimum},{self.minimum + 1}')
    return [int(item) for item in items]


def define_int_list(name, default, help_text, minimum=0, flag_values=flags.FLAGS):
  """Defines --name as a comma-separated list of integers >= `minimum` (the value is a list of ints)."""
  flags.DEFINE(_IntListParser(minimum), name, default, help_text, flag_values=flag_values,
               serializer=flags.CsvListSerializer(','))


def define_runner_flags():
  """Defines the flags shared by the scripts that run a plan of experiments (`scripts/reproduce.py`,
  `scripts/ptb_table.py`): --jobs, --dry_run, --tables_only, --results_dir, --workdir."""
  flags.DEFINE_integer('jobs', 1, 'Runs at a time (each is its own process).')
  flags.DEFINE_bool('dry_run', False, 'Only list the runs.')
  flags.DEFINE_bool('tables_only', False, 'Only rebuild the tables (and figures) from the results there are.')
  flags.DEFINE_string('results_dir', 'results', 'Where result JSONs and tables go.')
  flags.DEFINE_string('workdir', 'checkpoints', 'Where run directories go.')
