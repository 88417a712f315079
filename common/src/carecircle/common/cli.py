"""The ``carecircle`` command.

Each component contributes its sub-commands through the ``carecircle.cli`` entry
point group (see each component's ``pyproject.toml``), so an edge box that has only
the gateway installed gets ``carecircle gateway …`` and nothing that needs FastAPI,
psycopg or scikit-learn.  Commands are loaded only when used.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import click

from carecircle.common import __version__
from carecircle.common.errors import CareCircleError
from carecircle.common.logs import configure_logging
from carecircle.common.settings import CareCircleSettings, load_settings

S = TypeVar("S", bound=CareCircleSettings)


@dataclass(frozen=True)
class CliContext:
    """What the root command hands to every sub-command."""

    config_file: Path | None

    def settings(self, cls: type[S], **flags: Any) -> S:
        """Build ``cls`` from flags, environment and the TOML file, and configure logging."""
        settings = load_settings(cls, self.config_file, flags)
        configure_logging(settings.log_level, settings.log_format)
        return settings


pass_cli = click.make_pass_decorator(CliContext)


class _PluginGroup(click.Group):
    """A group whose sub-commands come from installed components' entry points."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="carecircle.cli")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtin = super().get_command(ctx, cmd_name)
        if builtin is not None:
            return builtin
        ep = self._plugins().get(cmd_name)
        if ep is None:
            return None
        command = ep.load()
        if not isinstance(command, click.Command):
            raise click.ClickException(f"entry point {ep.value} is not a click command")
        return command


@click.group(cls=_PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CARECIRCLE_CONFIG",
    help="TOML settings file with one table per deployable ([platform], [gateway], [sim], …).",
)
@click.version_option(__version__, prog_name="carecircle")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """CareCircle: smart elderly-care IoT platform for the 15-minute care circle.

    Settings come from flags, CARECIRCLE_* environment variables, or a TOML file.
    """
    ctx.obj = CliContext(config_file=config_file)


def run(argv: list[str] | None = None) -> None:
    """Console entry point: errors become one clear line and a non-zero exit, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="carecircle", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except CareCircleError as err:
        click.echo(f"carecircle: error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
