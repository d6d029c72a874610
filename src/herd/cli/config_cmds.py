"""`herd config` (the effective settings and where each came from) and `herd completion`."""

from __future__ import annotations

from typing import Any

import click

from herd.cli.app import cli, common, make_context

SHELLS = ("bash", "zsh", "fish")


@cli.command("config")
@common
def config_command(db: str | None, as_json: bool) -> None:
    """The effective settings: flags > herd.toml / [tool.herd] > defaults, with sources."""
    from herd import settings
    from herd.errors import NotFound
    from herd.run import agents

    ctx = make_context(db, as_json)
    found = settings.load()
    presets: dict[str, tuple[list[str], str]] = {
        name: (list(agent.argv), "built in") for name, agent in agents.BUILTIN.items()
    }
    where = str(found.file) if found.file else ""
    presets.update({name: (list(agent.argv), where) for name, agent in found.agents.items()})
    try:
        personal = ctx.store().herd_dir / "config.toml"
    except NotFound:
        personal = None  # outside a herd repository: no personal presets
    presets.update(
        {name: (list(agent.argv), str(personal)) for name, agent in agents.read_presets(personal).items()}
    )
    data: dict[str, Any] = {
        **found.to_json(),
        "agents": {
            name: {"argv": argv, "source": source} for name, (argv, source) in sorted(presets.items())
        },
    }

    def text() -> None:
        click.echo(f"settings file: {found.file or 'none (herd.toml or [tool.herd] in pyproject.toml)'}")
        for key, setting in found.values.items():
            value = (
                "-"
                if setting.value is None
                else str(setting.value).lower()
                if isinstance(setting.value, bool)
                else str(setting.value)
            )
            click.echo(f"  {key:<11} {value:<24} {setting.source}")
        click.echo("agents:")
        for name, (argv, source) in sorted(presets.items()):
            click.echo(f"  {name:<11} {source}: {' '.join(argv)}")
        click.echo("flags on the command line override these (herd run --help lists them)")

    ctx.emit(data, text)


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(herd completion bash)"                 (in ~/.bashrc)
    zsh:   eval "$(herd completion zsh)"                  (in ~/.zshrc)
    fish:  herd completion fish > ~/.config/fish/completions/herd.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three SHELLS
    click.echo(completer(cli, {}, "herd", "_HERD_COMPLETE").source())
