"""``outreach experiments``: the sample size an experiment needs, decided before it starts."""

from __future__ import annotations

import click

from ..report.stats import sample_size


@click.group()
def experiments() -> None:
    """Experiments on journey steps (docs/JOURNEYS.md, "Experiments")."""


@experiments.command("size")
@click.option("--baseline", required=True, type=float, help="The control's rate now, e.g. 0.10.")
@click.option("--effect", required=True, type=float, help="The smallest change worth finding, e.g. 0.02.")
@click.option("--power", default=0.8, show_default=True, type=float, help="Chance to find such a change.")
def size(baseline: float, effect: float, power: float) -> None:
    """Sends per arm for a fixed-horizon test at 95 % (two-sided): put it in sample_size."""
    try:
        n = sample_size(baseline, effect, power)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(
        f"{n} sends per arm ({baseline:.1%} -> {baseline + effect:.1%}, 95 % two-sided, power {power:.0%})"
    )
