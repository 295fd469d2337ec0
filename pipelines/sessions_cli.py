"""``appshot sessions ...``: session-level expansion (seed 004) and its two use cases, on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from appshot_model.core.errors import AppshotInputError

console = Console(stderr=True)
sessions_app = typer.Typer(help="Session level (seed 004): expand traffic into Parquet sessions; slicing and vRAN "
                                "use cases.", no_args_is_help=True, add_completion=False)


def fail(exc: Exception, code: int = 2) -> typer.Exit:
    """Print an error without a traceback and return the exit to raise."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def save_table(rows: list[dict], columns: tuple[str, ...], out: Path, figure: Path | None, png: bytes,
               line: Callable[[dict], str]) -> None:
    """Write the result table as CSV and, when asked, its figure; print one ``line`` per row."""
    from appshot_model.sessions.run import write_rows

    write_rows(rows, columns, out)
    if figure is not None:
        figure.parent.mkdir(parents=True, exist_ok=True)
        figure.write_bytes(png)
    for row in rows:
        console.print(line(row), highlight=False)
    console.print(f"written: {out}" + (f" and {figure}" if figure else ""))


def progress_bar() -> Progress:
    """A rich progress bar on stderr."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


@sessions_app.command("expand")
def sessions_expand(
    cube: Annotated[Path, typer.Option(help="NetCDF cube: generated (sample, service, y, x) or hourly "
                                            "(time, service, y, x), in bit/s.")],
    city: Annotated[str, typer.Option(help="City name (the partition key of the output).")],
    out: Annotated[Path, typer.Option(help="Root of the sessions/, cells/, reconciliation/ tables.")] = Path(
        "data/sessions"),
    index: Annotated[int, typer.Option(help="Sample (or time step) of the cube to expand.")] = 0,
    hour: Annotated[str | None, typer.Option(help="Peak hour of a generated cube (default: its peak_hour).")] = None,
    date: Annotated[str | None, typer.Option(help="Local date of a generated snapshot (YYYY-MM-DD; default: "
                                                  "2026-03-02, the demo world's first Monday).")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone (default: from the grid centre).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (same seed -> same Parquet bytes).")] = 0,
    coefficients: Annotated[Path | None, typer.Option(help="Folder of the seed-004 CSVs (default: "
                                                           "$APPSHOT_SESSION_COEFFICIENTS or shared/data).")] = None,
) -> None:
    """Expand one snapshot into transport sessions (one Parquet row each) and check them against seed 004."""
    from appshot_model.core.cube import read_cube
    from appshot_model.sessions.run import DEFAULT_DATE, expand_cube

    try:
        summary, _ = expand_cube(read_cube(cube), city, out, seed, index=index, hour=hour, date=date or DEFAULT_DATE,
                                 timezone=timezone, coefficients_dir=coefficients,
                                 figures_dir=out / "figures", progress=True,
                                 log=lambda m: console.print(f"[yellow]warning:[/] {m}", highlight=False))
    except AppshotInputError as exc:
        raise fail(exc) from None
    checks = summary["checks"]
    summary_path = out / "summaries" / f"{city}_{summary['hour']}.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True))
    console.print(f"{summary['sessions']:,} sessions in {summary['seconds']:.1f} s ({summary['rows_per_s']:,} rows/s): "
                  f"{summary['paths']['sessions']}")
    console.print(f"per-cell volume error max {summary['max_cell_volume_error']:.2e}; arrival model implies "
                  f"{summary['implied_over_given_drawn']:.1f} x the given volume (factor applied per cell x service)")
    console.print(f"session-share error max {checks['max_session_share_error_pp']:.3f} pp, traffic-share error max "
                  f"{checks['max_traffic_share_error_pp']:.2f} pp, KS drawn max {checks['max_ks_drawn']:.3f}, "
                  f"written max {checks['max_ks_written']:.3f}; figures in {out / 'figures'}, summary {summary_path}")


@sessions_app.command("slicing")
def sessions_slicing(
    run_dir: Annotated[Path, typer.Option(help="Asset folder of a run (holds generated_snapshots/).")] = Path(
        "data/assets"),
    out: Annotated[Path, typer.Option(help="CSV to write (method,sla_met,std).")] = Path(
        "data/sessions/slicing_capacity.csv"),
    work_dir: Annotated[Path | None, typer.Option(help="Where the session tables go (default: sessions/ beside the "
                                                       "run's asset folder, as the assets do).")] = None,
    city: Annotated[list[str] | None, typer.Option(help="Only these cities (repeatable).")] = None,
    hour: Annotated[list[str] | None, typer.Option(help="Only these peak hours (repeatable).")] = None,
    replicates: Annotated[int, typer.Option(help="Planning expansions per city x hour.")] = 100,
    max_cells: Annotated[int, typer.Option(help="Cells sized per city x hour, spread evenly over the load ranks "
                                                "(a large number: all).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the expansions.")] = 0,
    figure: Annotated[Path | None, typer.Option(help="PNG of SLA met per service and method.")] = None,
) -> None:
    """Seed 004 Table 2 on generated data: slice capacity from session-level models vs two category benchmarks."""
    from appshot_model.sessions.run import SLICING_COLUMNS, slicing_from_run_dir
    from appshot_model.sessions.slicing import slicing_png

    try:
        with progress_bar() as progress:
            task = progress.add_task("slicing", total=None)
            rows = slicing_from_run_dir(run_dir, work_dir or run_dir.absolute().parent / "sessions", seed, city, hour,
                                        replicates, max_cells,
                                        on_part=lambda c, h: progress.update(task, description=f"slicing {c} {h}",
                                                                             advance=1))
        save_table(rows, SLICING_COLUMNS, out, figure, slicing_png(rows) if figure else b"",
                   lambda r: f"{r['method']:9s} SLA met {100 * r['sla_met']:6.2f} %  std over services "
                             f"{100 * r['std']:5.2f}  capacity vs sessions {r['capacity_vs_sessions']:.2f}")
    except AppshotInputError as exc:
        raise fail(exc) from None


@sessions_app.command("vran")
def sessions_vran(
    city: Annotated[str, typer.Option(help="Demo city whose simulated day is used (or the name for --cube).")
                    ] = "liege",
    cube: Annotated[Path | None, typer.Option(help="Hourly cube (time, service, y, x) instead of the demo city.")
                    ] = None,
    day: Annotated[int, typer.Option(help="Day of the cube (0 = first; the demo world starts on a Monday).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the demo world and of the expansion.")] = 0,
    out: Annotated[Path, typer.Option(help="CSV to write (demand,energy_kwh,overload_minutes_share).")] = Path(
        "data/sessions/vran_energy.csv"),
    figure: Annotated[Path | None, typer.Option(help="PNG of throughput and servers over the day.")] = None,
) -> None:
    """Seed 004 §6.2: vRAN server energy over a day, session-level vs smooth hourly demand."""
    from appshot_model.core.cube import read_cube
    from appshot_model.sessions.run import VRAN_COLUMNS, vran_day
    from appshot_model.traffic.demo import DEMO_CITIES, simulate_context, simulate_traffic

    try:
        if cube is not None:
            traffic = read_cube(cube)
        else:
            known = {c.name: c for c in DEMO_CITIES}
            if city not in known:
                raise AppshotInputError(f"unknown demo city {city!r}; expected one of {sorted(known)} or --cube")
            with console.status(f"simulating {city}..."):
                traffic = simulate_traffic(known[city], simulate_context(known[city], seed), seed, days=day + 1)
        with progress_bar() as progress:
            task = progress.add_task(f"vRAN {city}: expanding hours", total=24)
            rows, png = vran_day(traffic, city, day, seed, progress=lambda n: progress.advance(task, n))
        save_table(rows, VRAN_COLUMNS, out, figure, png,
                   lambda r: f"{r['demand']:17s} {r['energy_kwh']:8.3f} kWh  overload in "
                             f"{100 * r['overload_minutes_share']:5.1f} % of minutes  max servers {max(r['servers'])}")
    except AppshotInputError as exc:
        raise fail(exc) from None

