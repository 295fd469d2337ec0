"""The ``appshot`` command line."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from appshot_model.core.errors import AppshotInputError, AppshotStorageError

app = typer.Typer(help="appshot: synthetic per-service mobile traffic maps from public context.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)

DEFAULT_DAGSTER_HOME = ".dagster_home"


@app.callback()
def _quiet_api_status_warnings() -> None:
    """Dagster's beta/preview notes are for the developers of this code, not for people running it."""
    from dagster import BetaWarning, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``), created with the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if not config.exists() and template.exists():
        config.write_text(template.read_text())
    return home


def _run_with_progress(defs, plan_of, label: str, data_dir: Path) -> list[str]:
    """Run a stage plan on the instance in ``$DAGSTER_HOME``: one progress bar per stage job (its partitions
    done / total), Dagster's console output kept to warnings, every event of every run appended to
    ``<data_dir>/logs/<label>-<UTC time>.log`` (also kept in Dagster's event log)."""
    from dagster import DagsterInstance

    from pipelines.demo_run import run_plan

    plan = plan_of(defs)
    stages = list(dict.fromkeys(job for job, _ in plan))
    log_file = data_dir / "logs" / f"{label}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"full log of every run: {log_file.resolve()}")
    with DagsterInstance.get() as instance, Progress(
            TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[key]}"),
            TimeElapsedColumn(), console=console) as progress:
        tasks = {job: progress.add_task(job, total=sum(1 for j, _ in plan if j == job), key="", start=False)
                 for job in stages}
        current: list[str] = []

        def on_run(job: str, key: str | None, index: int, total: int) -> None:
            if current:  # the previous run has finished
                progress.advance(tasks[current[0]])
                progress.update(tasks[current[0]], key="")
                if progress.tasks[tasks[current[0]]].finished:
                    progress.stop_task(tasks[current[0]])
            current[:] = [job] if job else []
            if job:
                progress.start_task(tasks[job])
                progress.update(tasks[job], key=str(key or ""))

        try:
            return run_plan(defs, instance, plan, on_run=on_run, quiet=True, log_file=log_file)
        finally:
            console.print(f"full log of every run: {log_file.resolve()}")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where outputs are written.")] = Path("data"),
    seed: Annotated[int, typer.Option(help="Seed of the demo world, training and generation.")] = 0,
    samples: Annotated[int, typer.Option(help="Generated snapshots per city and peak hour.")] = 10,
    config: Annotated[Path | None, typer.Option(help="YAML with model: and train: sections.")] = None,
) -> None:
    """Run the whole demo (simulated cities -> trained models -> generated snapshots -> release) as Dagster runs."""
    from assets.resources import AppshotSettings
    from pipelines.definitions import build_definitions
    from pipelines.demo_run import demo_plan

    home = ensure_dagster_home()
    try:
        settings = AppshotSettings(seed=seed, n_samples=samples, config_file=str(config) if config else None,
                                   progress_bars=False,
                                   data_dir=str(data_dir))
        defs = build_definitions(settings=settings)
    except AppshotInputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    started = time.perf_counter()
    _run_with_progress(defs, demo_plan, "demo", data_dir)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    console.print(f"outputs: {data_dir.resolve()}  (assets/, generated/ GeoTIFFs, figures/)")
    console.print(f"Dagster runs recorded in DAGSTER_HOME={home}; browse them with `dagster dev`")


def _demo_world(seed: int, root: Path):
    from appshot_model.evaluation.worlds import demo_world

    return demo_world(seed=seed)


def _spectragan_world(seed: int, root: Path):
    from appshot_model.evaluation.worlds import spectragan_world

    return spectragan_world(root)


#: Worlds ``appshot evaluate --world`` knows: name -> builder taking the world seed and the SpectraGAN data root.
WORLDS = {"demo": _demo_world, "spectragan": _spectragan_world}


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option(help="Scores CSV (one row per held-out city x hour x method x seed); beside it "
                                           "<name>_details.csv, <name>_run.json, the summary <name>.md and "
                                           "<name>_figures/.")] = Path("data/evaluation/demo_loco.csv"),
    world: Annotated[str, typer.Option(help="World to evaluate on: " + ", ".join(WORLDS) + ".")] = "demo",
    world_seed: Annotated[int, typer.Option(help="Seed of the simulated demo world.")] = 0,
    spectragan_root: Annotated[Path, typer.Option(help="Folder of the SpectraGAN release (world spectragan).")] = Path(
        "../shared/data/spectragan"),
    seeds: Annotated[int, typer.Option(help="Seeds 0..N-1 per method and fold (training and generation).")] = 3,
    seed: Annotated[list[int] | None, typer.Option(
        help="Run only this seed (repeatable; overrides --seeds), e.g. to rerun one row.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes, one torch thread each (default: the cores available).")] = None,
    steps: Annotated[int | None, typer.Option(
        help="Training budget: optimiser steps per model (batch: 4 tiles for AppShot, 64 patches for the "
             "patch-based methods). Default: each method's own (AppShot and its "
             "ablations 1000; CNN, Pix2Pix 600; independent 100 per service model; FDaS none).")] = None,
    samples: Annotated[int, typer.Option(help="Generated snapshots per method, held-out city, hour and seed.")] = 10,
    method: Annotated[list[str] | None, typer.Option(
        help="Method to evaluate (repeatable): appshot, fdas, cnn, pix2pix, independent, an appshot_* ablation, "
             "or 'baselines' / 'ablations' / 'all'. Default: appshot and the four baselines.")] = None,
    city: Annotated[list[str] | None, typer.Option(help="Held-out city (repeatable; default: every city).")] = None,
    hour: Annotated[list[str] | None, typer.Option(help="Peak hour (repeatable; default: all three).")] = None,
    nemd: Annotated[str, typer.Option(
        help="'exact' NEMD, or 'coarse' (APPROXIMATE: EMD between 2 x 2 block sums; measured error in "
             "docs/evaluation.md).")] = "exact",
    nemd_pairs: Annotated[int, typer.Option(
        help="Real/generated pairs per method and service scored with NEMD (exact: about 3-5 s each at 97 x 123).")] = 1,
    compare: Annotated[Path | None, typer.Option(
        help="A committed scores CSV: check that every row of this run reproduces its row there bit for bit "
             "(exit 1 if not).")] = None,
    figures: Annotated[bool, typer.Option(help="Write the per-fold and per-hour figures.")] = True,
    unseen: Annotated[bool, typer.Option(
        help="Also train AppShot (seed 0, the run's budget) on every city with traffic and map the world's "
             "context-only cities (spectragan: Dresden) at each hour of the run: "
             "<name>_figures/unseen_<city>_<hour>.png.")] = True,
) -> None:
    """Leave-one-city-out evaluation: for each held-out city x peak hour, fit attribute selection and normalisation
    on the other cities, train every method with every seed, generate the held-out city and score it beside the
    Data reference; folds x methods x seeds run in parallel worker processes. Writes the per-row scores and the
    Table II-like summary (mean over cities and seeds, ± spread over seeds)."""
    from appshot_model.evaluation.baselines import ABLATIONS, BASELINES, METHODS
    from appshot_model.evaluation.loco import (LocoSettings, LocoTaskError, check_reproduction, plan_folds, run_loco,
                                               write_loco)

    groups = {"baselines": list(BASELINES), "ablations": list(ABLATIONS), "all": list(METHODS)}
    methods = list(dict.fromkeys(m for name in (method or ["appshot", "baselines"]) for m in groups.get(name, [name])))
    if world not in WORLDS:
        raise _fail(f"unknown world {world!r}; expected one of {list(WORLDS)}")
    if seeds < 1 or (workers is not None and workers < 1):
        raise _fail(f"--seeds and --workers must be >= 1 (got {seeds}, {workers})")
    if nemd not in ("exact", "coarse"):
        raise _fail(f"--nemd must be 'exact' or 'coarse', got {nemd!r}")
    if compare is not None and not compare.is_file():
        raise _fail(f"--compare file {compare} does not exist")
    try:
        settings = LocoSettings(methods=tuple(methods), seeds=tuple(seed) if seed else tuple(range(seeds)),
                                steps=steps, samples=samples, nemd_pairs=nemd_pairs, nemd_method=nemd)
        with console.status(f"building the {world} world..."):
            the_world = WORLDS[world](world_seed, spectragan_root)
        folds = plan_folds(the_world, city, hour)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    console.print(f"{len(folds)} fold(s) x {len(settings.methods)} method(s) x {len(settings.seeds)} seed(s) on "
                  f"{workers or 'every available'} worker(s)")
    with Progress(TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[key]}"), TimeElapsedColumn(), console=console) as progress:
        bars = {fold: progress.add_task(fold.key, total=1 + len(settings.methods) * len(settings.seeds), key="")
                for fold in folds}
        try:
            run = run_loco(the_world, settings, folds, workers,
                           on_progress=lambda p: progress.update(bars[p.fold], completed=p.done, key=p.what))
        except LocoTaskError as exc:
            raise _fail(exc, 1) from None
    try:
        paths = write_loco(run, out, the_world, figures=figures)
    except AppshotStorageError as exc:
        raise _fail(exc, 1) from None
    console.print(f"evaluation finished in {run.record['wall_seconds']:.0f} s on {run.record['workers']} worker(s); "
                  f"scores: {paths['scores'].resolve()} (summary {paths['summary'].name}, record "
                  f"{paths['record'].name})")
    typer.echo(paths["summary"].read_text())
    if unseen and figures:
        _map_unseen_cities(the_world, [h for h in the_world.hours if any(f.hour == h for f in folds)], paths["figures"],
                           samples, settings.budget())
    if compare is not None:
        problems, notes = check_reproduction(run, compare)
        for note in notes:
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
        if problems:
            console.print(f"[bold red]{len(problems)} difference(s) from {compare}:[/]")
            for problem in problems:
                console.print(f"  - {problem}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print(f"all {len(run.rows)} rows reproduce {compare} exactly")


@app.command("evaluate-merge")
def evaluate_merge(
    parts: Annotated[list[Path], typer.Argument(help="Scores CSVs written by 'appshot evaluate' (each with its "
                                                     "_details.csv and _run.json beside it).")],
    out: Annotated[Path, typer.Option(help="Merged scores CSV; beside it <name>_details.csv, <name>_run.json, the "
                                           "summary <name>.md and the per-hour metric figures.")] = Path(
        "data/evaluation/demo_loco.csv"),
    figures: Annotated[bool, typer.Option(help="Write the per-hour metric figures.")] = True,
) -> None:
    """Merge evaluation runs of the same world, code, numerics and settings (e.g. seeds run on different days) into
    one scores table and summary. The parts' Data rows must agree and no method x seed row may appear twice."""
    from appshot_model.evaluation.loco import merge_runs, write_loco

    try:
        run = merge_runs(parts)
        paths = write_loco(run, out, figures=figures)
    except (AppshotInputError, AppshotStorageError) as exc:
        raise _fail(exc) from None
    console.print(f"merged {len(parts)} runs: {len(run.rows)} rows, seeds {run.record['settings']['seeds']}; "
                  f"scores: {paths['scores'].resolve()}")
    typer.echo(paths["summary"].read_text())


def _map_unseen_cities(world, hours: list[str], folder: Path, samples: int, budget) -> None:
    """Generate and map every context-only city of ``world`` at ``hours`` (figures in ``folder``; AppShot trained
    with the run's ``budget``)."""
    from appshot_model.core.io import atomic_path
    from appshot_model.evaluation.unseen import generate_unseen

    for city in sorted(getattr(world, "unseen", {})):
        for hour in hours:
            with console.status(f"training on {', '.join(world.cities)} and generating {city} ({hour})..."):
                result = generate_unseen(world, city, hour, seed=0, samples=samples, budget=budget)
            path = folder / f"unseen_{city}_{hour}.png"
            with atomic_path(path) as tmp:
                tmp.write_bytes(result.figure(world.name))
            console.print(f"{city} ({hour}, context only): {samples} samples generated; map {path}")


release_app = typer.Typer(help="Build and verify versioned release folders of generated snapshots.",
                          no_args_is_help=True, add_completion=False)
app.add_typer(release_app, name="release")


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    """Print an error without a traceback and return the exit to raise."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _report_publication(result) -> None:
    verb = "already published (identical content), nothing written" if result.already_published else "published"
    console.print(f"release {result.release_id} {verb}: {result.path}")
    console.print(f"{len(result.manifest['files'])} files, "
                  f"{sum(f['bytes'] for f in result.manifest['files'].values()) / 1e6:.2f} MB, "
                  f"content sha256 {result.manifest['content_sha256'][:16]}...")


@app.command()
def generate(
    model: Annotated[Path, typer.Option(help="Trained model artefact folder (model.json + weights).")],
    region: Annotated[Path, typer.Option(help="Region YAML file (name, boundary, CRS, context sources).")],
    out: Annotated[Path, typer.Option(help="New (or empty) folder for the release-style output.")],
    hour: Annotated[str, typer.Option(help="Peak hour: morning, midday or evening.")] = "morning",
    samples: Annotated[int, typer.Option(help="Number of snapshots to generate.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the generator (same seed -> same bytes).")] = 0,
    allow_missing_layers: Annotated[bool, typer.Option(
        help="Generate even when the region has no source for a layer the model needs (it stays all zeros).")] = False,
    dask_address: Annotated[str | None, typer.Option(
        help="Generate chunked on the dask.distributed cluster at this address (e.g. tcp://host:8786); without "
             "it, regions of 500 x 500 cells or more use a local cluster, smaller ones local threads.")] = None,
    hours: Annotated[str | None, typer.Option(
        help="Hourly series instead of peak snapshots: hours of day, e.g. 0-23 or 8,12,17. --model is then an "
             "hour-conditioned model, a folder of per-hour models 00..23, or the DG series model (the dg_model "
             "asset's folder); writes <out>/<region>-hourly.nc.")] = None,
    days: Annotated[int, typer.Option(help="With --hours: days of series to generate.")] = 7,
    start: Annotated[str, typer.Option(help="With --hours: first day of the series (YYYY-MM-DD).")] = "2026-03-02",
    rho: Annotated[float | None, typer.Option(
        help="With --hours and an AppShot model: hour-to-hour correlation of the generator's noise (default: the "
             "demo world's calibrated value; 0 = independent hours).")] = None,
) -> None:
    """Generate synthetic snapshots (or, with --hours, hourly series) for a region from its context, without Dagster.

    Loads the model, builds the region's context cube, checks that it has every attribute the
    model needs, generates, and writes COGs + NetCDF + grid + STAC + dataset card + manifest
    (with --hours: one NetCDF [time, service, y, x] with a CF time axis and the CRS)."""
    from appshot_model.release.build import generate_for_region

    if hours is not None:
        _generate_series(model, region, out, hours, days, start, seed, rho, allow_missing_layers)
        return
    try:
        result = generate_for_region(model, region, hour, samples, seed, out, progress=True,
                                     allow_missing_layers=allow_missing_layers, dask_address=dask_address)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    except AppshotStorageError as exc:
        raise _fail(exc, 1) from None
    except ImportError as exc:
        raise _fail(f"the model/region code this command needs is not available: {exc}", 1) from None
    _report_publication(result)


def _generate_series(model: Path, region: Path, out: Path, hours: str, days: int, start: str, seed: int,
                     rho: float | None, allow_missing_layers: bool) -> None:
    """``appshot generate --hours``: the region's hourly series as one NetCDF in ``out``."""
    from appshot_model.model.hours import parse_hours
    from appshot_model.series.region import generate_region_series, series_file
    from appshot_model.series.stitched import DEFAULT_RHO

    try:
        path = series_file(out, region)
        series = generate_region_series(model, region, parse_hours(hours), days, start, seed,
                                        DEFAULT_RHO if rho is None else rho, path, progress=True,
                                        allow_missing_layers=allow_missing_layers)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    except AppshotStorageError as exc:
        raise _fail(exc, 1) from None
    console.print(f"hourly series written: {path} ({series.sizes['time']} hours x {series.sizes['service']} services "
                  f"x {series.sizes['y']} x {series.sizes['x']} cells, "
                  + (f"noise rho {series.attrs['noise_rho']:g})" if "noise_rho" in series.attrs
                     else f"{series.attrs['method']})"))


@release_app.command("build")
def release_build(
    run_dir: Annotated[Path, typer.Option(help="Asset folder of a pipeline run (holds generated_snapshots/, "
                                               "trained_model/, context_cube/).")] = Path("data/assets"),
    releases: Annotated[Path, typer.Option(help="Folder holding the published releases.")] = Path("data/releases"),
    city: Annotated[list[str] | None, typer.Option(help="Only these cities (repeatable).")] = None,
    hour: Annotated[list[str] | None, typer.Option(help="Only these peak hours (repeatable).")] = None,
    fidelity: Annotated[Path | None, typer.Option(help="Fidelity table (JSON or CSV) for the dataset card.")] = None,
    title: Annotated[str, typer.Option(help="Title of the dataset card.")] = "",
    series: Annotated[bool, typer.Option(help="Include the hourly series of the released cities that the run "
                                              "folder holds (hourly_series/, dg_series/).")] = True,
) -> None:
    """Gather every generated city x peak hour of a run (and the cities' hourly series) into one versioned release
    folder."""
    from appshot_model.release import publish_release
    from appshot_model.release.build import parts_from_run_dir, read_fidelity, series_from_run_dir

    try:
        parts = parts_from_run_dir(run_dir, city, hour)
        hourly = series_from_run_dir(run_dir, sorted({p.city for p in parts})) if series else []
        result = publish_release(parts, releases, fidelity=read_fidelity(fidelity), title=title, progress=True,
                                 series=hourly)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    except AppshotStorageError as exc:
        raise _fail(exc, 1) from None
    _report_publication(result)


@release_app.command("verify")
def release_verify(
    release_dir: Annotated[Path, typer.Argument(help="A release folder (holding manifest.json).")],
    regenerate: Annotated[bool, typer.Option(help="Also regenerate sample 0 of every part from the recorded "
                                                  "model and seed and compare byte for byte.")] = True,
) -> None:
    """Check every file against the manifest, the STAC catalog and COGs, and regeneration."""
    from appshot_model.release import verify_release

    try:
        with console.status("verifying..."):
            report = verify_release(release_dir, regenerate=regenerate)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    if not report.ok:
        console.print(f"[bold red]release {report.release_id} FAILED verification[/] ({release_dir}):")
        for problem in report.problems:
            console.print(f"  - {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"release {report.release_id} OK: {report.files_checked} files match the manifest, "
                  f"{report.stac_objects} STAC objects valid, {report.cogs_checked} COGs valid"
                  + (f", regenerated byte-identical: {', '.join(report.regenerated)}" if report.regenerated else ""))


@app.command()
def show(
    release_dir: Annotated[Path, typer.Argument(help="A release folder.")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: <release>-map.html beside it).")] = None,
    city: Annotated[str | None, typer.Option(help="City to show (default: the first).")] = None,
    hour: Annotated[str | None, typer.Option(help="Peak hour to show (default: the first).")] = None,
    sample: Annotated[int, typer.Option(help="Sample index to show.")] = 0,
    tiles: Annotated[str | None, typer.Option(help="Base-map tile URL template, only referenced in the HTML "
                                                   "(default: no base map).")] = None,
) -> None:
    """Write an interactive HTML map (one layer per service) of one generated snapshot."""
    from appshot_model.release.show import write_map_html

    target = out or release_dir.absolute().parent / f"{release_dir.absolute().name}-map.html"
    try:
        path = write_map_html(release_dir, target, city=city, hour=hour, sample=sample, tiles=tiles)
    except AppshotInputError as exc:
        raise _fail(exc) from None
    console.print(f"map written: {path}")


from pipelines.sessions_cli import sessions_app  # noqa: E402  (registered after the main commands)

app.add_typer(sessions_app, name="sessions")


def main() -> None:
    app()
