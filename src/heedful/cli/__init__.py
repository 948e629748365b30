"""The `heedful` command: one sub-command per stage, thin over the library.

Each stage's commands live in their own module and register on `app`; errors
raised as `HeedfulError` become a one-line message on stderr and the error's
exit code, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from heedful.cli.common import app, err_console
from heedful.errors import HeedfulError

# Importing a command module registers its commands (heavy imports stay inside them).
from heedful.cli import store_cmds  # noqa: E402,F401
from heedful.cli import train_cmds  # noqa: E402,F401
from heedful.cli import io_cmds  # noqa: E402,F401
from heedful.cli import server_cmds  # noqa: E402,F401
from heedful.cli import build_cmds  # noqa: E402,F401
from heedful.cli import annotate_cmds  # noqa: E402,F401
from heedful.cli import eval_cmds  # noqa: E402,F401
from heedful.cli import generate_cmds  # noqa: E402,F401
from heedful.cli import infer_cmds  # noqa: E402,F401
from heedful.cli import demo_cmds  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except HeedfulError as e:
        err_console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as e:  # click's own usage errors carry an exit code
        code = getattr(e, "exit_code", None)
        if code is None:
            raise
        if hasattr(e, "show"):
            e.show()
        sys.exit(code)
