"""`setlist canary decide` and `setlist canary load`: the delivery workflow's two gates, the same
commands here as in CI (.github/workflows/delivery.yml) and against any running service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from setlist.cli.common import app, console, fmt
from setlist.monitor.canary import Thresholds, decide, load_test, observe

canary_app = typer.Typer(
    help="Canary analysis and the load test, from the services' own /metrics.",
    no_args_is_help=True,
)
app.add_typer(canary_app, name="canary")

EXIT = {"promote": 0, "rollback": 1, "wait": 3}
_DEFAULTS = Thresholds()


@canary_app.command("decide")
def decide_command(
    stable: Annotated[str, typer.Option(help="The stable version's base URL (or /metrics URL).")],
    canary: Annotated[str, typer.Option(help="The canary's base URL (or /metrics URL).")],
    stable_arm: Annotated[
        str | None, typer.Option(help="A/B arm of the stable URL to judge; default: every arm.")
    ] = None,
    canary_arm: Annotated[
        str | None, typer.Option(help="A/B arm of the canary URL to judge; default: every arm.")
    ] = None,
    window: Annotated[
        float, typer.Option(min=0, help="Seconds between two scrapes; 0: since start-up.")
    ] = 0.0,
    min_requests: Annotated[int, typer.Option(min=1)] = _DEFAULTS.min_requests,
    max_error_rate: Annotated[float, typer.Option(min=0, max=1)] = _DEFAULTS.max_error_rate,
    max_error_rate_increase: Annotated[
        float, typer.Option(min=0, max=1)
    ] = _DEFAULTS.max_error_rate_increase,
    max_p99_ratio: Annotated[float, typer.Option(min=1)] = _DEFAULTS.max_p99_ratio,
    p99_slack: Annotated[float, typer.Option(min=0, help="Seconds.")] = _DEFAULTS.p99_slack_s,
    max_listen_through_drop: Annotated[
        float, typer.Option(min=0, max=1)
    ] = _DEFAULTS.max_listen_through_drop,
    min_impressions: Annotated[int, typer.Option(min=1)] = _DEFAULTS.min_impressions,
    out: Annotated[Path | None, typer.Option(help="Write the decision as JSON here.")] = None,
) -> None:
    """Promote (exit 0), roll back (exit 1) or wait for more traffic (exit 3)."""
    thresholds = Thresholds(
        min_requests=min_requests,
        max_error_rate=max_error_rate,
        max_error_rate_increase=max_error_rate_increase,
        max_p99_ratio=max_p99_ratio,
        p99_slack_s=p99_slack,
        max_listen_through_drop=max_listen_through_drop,
        min_impressions=min_impressions,
    )
    canary_figures, stable_figures = observe(
        stable, canary, stable_arm=stable_arm, canary_arm=canary_arm, window_s=window
    )
    decision = decide(canary_figures, stable_figures, thresholds)
    table = Table("check", "canary", "stable", "limit", "passed", "note")
    for check in decision.checks:
        table.add_row(
            check.name,
            fmt(check.canary),
            fmt(check.stable),
            fmt(check.limit),
            "yes" if check.passed else "NO",
            check.note,
        )
    console.print(table)
    if out is not None:
        out.write_text(decision.to_json() + "\n")
    console.print(f"verdict: {decision.verdict}")
    raise typer.Exit(EXIT[decision.verdict])


@canary_app.command("load")
def load_command(
    url: Annotated[str, typer.Option(help="The service's base URL.")],
    path: Annotated[
        list[str] | None,
        typer.Option(help="GET paths, {user} filled with a load-test user id; repeatable."),
    ] = None,
    requests: Annotated[int, typer.Option(min=1)] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
    max_error_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.01,
    max_p99: Annotated[float, typer.Option(min=0, help="Seconds.")] = 0.5,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
) -> None:
    """A short load test; exit 1 when the error rate or p99 passes its threshold."""
    result = load_test(
        url,
        path or ["/v1/users/{user}/recommendations", "/v1/model"],
        requests=requests,
        concurrency=concurrency,
        max_error_rate=max_error_rate,
        max_p99_s=max_p99,
    )
    if out is not None:
        out.write_text(result.to_json() + "\n")
    console.print(
        f"{result.requests:,} requests in {result.duration_s:.1f} s: error rate "
        f"{result.error_rate:.4f} (max {max_error_rate}), p50 {result.p50_s * 1000:.1f} ms, "
        f"p99 {result.p99_s * 1000:.1f} ms (max {max_p99 * 1000:.0f} ms), statuses "
        f"{result.statuses}"
    )
    console.print("passed" if result.passed else "FAILED")
    raise typer.Exit(0 if result.passed else 1)
