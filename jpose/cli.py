"""How every jpose command answers a user's mistake: one line, exit status 2.

A mistake is a bad flag, a missing or wrong path, a bad config, or data that is missing
or corrupt. The line names the command, the file or field at fault, what is wrong and
what to do. Anything else is a bug and keeps its traceback.

  if __name__ == "__main__":
    cli.run("jpose.prepare", main)
"""

import ast
import re
import sys
from typing import Callable

from absl import app
from absl import flags

from jpose import compile_cache
from jpose import file_errors

USAGE_EXIT_STATUS = 2


class UsageError(Exception):
  """A user's mistake: `what` is the file or field at fault, then the problem and the fix."""

  def __init__(self, what: str, problem: str, fix: str = ""):
    super().__init__(f"{what}: {problem}" + (f"; {fix}" if fix else ""))
    self.what = what


def message(error: BaseException) -> str:
  """The error's text on one line: a KeyError's own message, not its repr."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  for _ in range(3):  # ml_collections nests a KeyError's repr in the next one's message
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
      try:
        text = str(ast.literal_eval(text))
      except (SyntaxError, ValueError):
        break
  return " ".join(text.split())


_CONFIG_LOAD = re.compile(r"Failed loading config file.*?Attempted.*?:\s*(\S+)\s+(.*)", re.S)


def user_mistake(error: BaseException) -> str | None:
  """The one line for a user's mistake, or None for a bug."""
  if isinstance(error, UsageError):
    return message(error)
  if isinstance(error, file_errors.SourceFileError):
    return f"{message(error)}; check or replace that file"
  if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        FileExistsError, PermissionError)):
    text = message(error)
    if error.filename and str(error.filename) not in text:
      text = f"{error.filename}: {text}"
    return f"{text}; check the path"
  if isinstance(error, OSError) and "config file" in str(error):
    # ml_collections' config_flags: the file named by --config did not load.
    found = _CONFIG_LOAD.search(str(error))
    if found:
      return (f"--config {found.group(1)}: {' '.join(found.group(2).split())}; "
              "give an existing config file such as configs/martinez.py")
    return f"--config: {message(error)}"
  if isinstance(error, (KeyError, ValueError)) and message(error).startswith("config."):
    return message(error)
  return None


def fail(command: str, line: str) -> None:
  print(f"{command}: {line}", file=sys.stderr, flush=True)
  sys.exit(USAGE_EXIT_STATUS)


def parse_flags(command: str) -> Callable[[list[str]], list[str]]:
  """absl flag parsing that reports a bad flag or config override in one line."""

  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
      text = message(e)
      if isinstance(e, flags.Error) and e.__cause__ is not None:
        text = text.split(": ", 1)[0] + ": " + message(e.__cause__)  # unwrap a KeyError's repr
      fail(command, f"bad flag or config override: {text}; see {command.replace('.', '/')}.py "
           "or --helpfull for the flags")
    return []

  return parse


def guarded(command: str, main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """`main` with each user mistake turned into one line and exit status 2."""

  def wrapped(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      fail(command, message(e))
    except Exception as e:  # pylint: disable=broad-except
      line = user_mistake(e)
      if line is None:
        raise  # a bug: keep the traceback
      fail(command, line)

  return wrapped


def run(command: str, main: Callable[[list[str]], None], required: tuple[str, ...] = (),
        cache_compiles: bool = True) -> None:
  """absl's app.run with one-line answers to user mistakes; `required` flags are checked.
  With `cache_compiles`, JAX's persistent compilation cache is on (`compile_cache`), so a
  rerun loads its compiled programs from disk."""

  def checked(argv):
    missing = [name for name in required if flags.FLAGS[name].value is None]
    if missing:
      fail(command, ", ".join(f"--{name}" for name in missing) + ": missing; "
           f"give {'them' if len(missing) > 1 else 'it'} (see --help)")
    if cache_compiles:
      compile_cache.enable()
    return main(argv)

  app.run(guarded(command, checked), flags_parser=parse_flags(command))
