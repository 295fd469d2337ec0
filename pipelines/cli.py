"""The ``appshot`` command line."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from appshot_model.errors import AppshotInputError

app = typer.Typer(help="appshot: synthetic per-service mobile traffic maps from public context.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)

DEFAULT_DAGSTER_HOME = ".dagster_home"


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``), created with the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if not config.exists() and template.exists():
        config.write_text(template.read_text())
    return home


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where outputs are written.")] = Path("data"),
    seed: Annotated[int, typer.Option(help="Seed of the demo world, training and generation.")] = 0,
    samples: Annotated[int, typer.Option(help="Generated snapshots per city and peak hour.")] = 10,
    config: Annotated[Path | None, typer.Option(help="YAML with model: and train: sections.")] = None,
) -> None:
    """Run the whole demo (simulated cities -> trained models -> generated snapshots) as Dagster runs."""
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions
    from pipelines.demo_run import run_demo
    from pipelines.resources import AppshotSettings

    home = ensure_dagster_home()
    try:
        settings = AppshotSettings(seed=seed, n_samples=samples, config_file=str(config) if config else None,
                                   data_dir=str(data_dir))
        defs = build_definitions(settings=settings)
    except AppshotInputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    started = time.perf_counter()
    with DagsterInstance.get() as instance, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console) as progress:
        task = progress.add_task("demo", total=None)

        def on_run(job: str, key: str | None, index: int, total: int) -> None:
            progress.update(task, total=total, completed=index, description=f"{job} {key or ''}")

        run_demo(defs, instance, on_run=on_run)
        progress.update(task, completed=progress.tasks[0].total)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    console.print(f"outputs: {data_dir.resolve()}  (assets/, generated/ GeoTIFFs, figures/)")
    console.print(f"Dagster runs recorded in DAGSTER_HOME={home}; browse them with `dagster dev`")


def main() -> None:
    app()
