"""Leave-one-city-out evaluation driver (AppShot §VI-§VII): folds x methods x seeds over worker processes.

A *fold* is one held-out city x peak hour of a :class:`~appshot_model.evaluation.worlds.World`. Per fold,
:func:`prepare_fold` fits the fold's inputs once (attribute selection and normalisation on the other
cities, :func:`~appshot_model.evaluation.folds.fold_inputs`) and scores the "Data" row (split halves of the
real weekdays, no seed); it also computes the EMD(real map, uniform) denominators of NEMD, which every
method of the fold reuses. Per fold x method x seed, :func:`evaluate_method` trains the method on the other
cities, generates the held-out city and scores it. Training and generation seeds come from
``derive_seed(seed, world, held_out, hour, method, ...)``, so a row depends only on its own fold, method,
seed, settings and code, never on which other folds or methods ran, in which order or in which process.

:func:`run_loco` fans these tasks out over a :class:`concurrent.futures.ProcessPoolExecutor` (spawned
processes, one torch thread each, pinned to one core each where the OS allows): fold preparations first,
then the method tasks longest first. Torch results on the CPU can depend on the thread count, so every
worker uses :data:`EVALUATION_THREADS` threads, whatever the machine: a row is reproduced with the same
code, settings and thread count. Why a process pool rather than dask.distributed or Dagster's
multiprocess executor: ``docs/evaluation.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import json
import math
import multiprocessing
import os
import platform
import queue as queue_module
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.core.provenance import code_version, numerics
from appshot_model.core.seeds import derive_seed
from appshot_model.core.threads import THREADS_ENV, available_cores
from appshot_model.evaluation.baselines import BASELINES, METHODS, Budget, generate_method, method_spec, train_method
from appshot_model.evaluation.folds import fold_inputs
from appshot_model.evaluation.metrics import HEADLINE_METRICS, score
from appshot_model.evaluation.reference import DATA, split_snapshots
from appshot_model.evaluation.report import (compare_scores, maps_figure, metrics_figure, read_scores, results_markdown,
                                             seed_summary, share_error_figure, stochasticity_figure, write_scores)
from appshot_model.evaluation.worlds import World

#: Columns of the per-fold scores (one row per held-out city x hour x method x seed; ``data`` has no seed).
ROW_COLUMNS = ("world", "held_out", "hour", "method", "seed", *HEADLINE_METRICS)
#: Further per-row numbers kept beside the scores: diagnostics, the CPU seconds of each step in its worker (one
#: thread, so wall time on an idle core; the Data row's "train" is the fold's attribute selection and
#: normalisation, its NEMD includes the denominators every method reuses) and the task's wall seconds.
DETAIL_COLUMNS = ("pairwise_ssim_error", "share_error", "n_pairs", "n_nemd_pairs", "n_nemd_undefined",
                  "train_seconds", "generate_seconds", "score_seconds", "nemd_seconds", "wall_seconds")
TIME_COLUMNS = ("train_seconds", "generate_seconds", "score_seconds", "nemd_seconds", "wall_seconds")
DEFAULT_METHODS = ("appshot", *BASELINES)
DEFAULT_SEEDS = (0, 1, 2)
#: torch intra-op threads of every evaluation worker (rows are reproduced only with the same count).
EVALUATION_THREADS = 1
#: Relative cost of a method's training, and of scoring per 10,000 held-out cells (exact NEMD dominates):
#: only used to start the longest tasks first; results never depend on it.
TRAIN_COST = {"appshot": 10.0, "independent": 6.0, "pix2pix": 3.0, "cnn": 1.0, "fdas": 0.0}
SCORE_COST_PER_10K_CELLS = 4.0


@dataclass(frozen=True)
class LocoSettings:
    """What a leave-one-city-out run trains and how it scores.

    ``methods``: keys of :data:`~appshot_model.evaluation.baselines.METHODS` (an alias whose model is also
    listed is dropped); ``seeds``: evaluation seeds (one training and generation per method, fold and seed);
    ``steps``, ``batch_size``, ``features``: the training :class:`~appshot_model.evaluation.baselines.Budget`
    of every model (``None``: each method's default); ``samples``: generated snapshots per method, fold and
    seed; ``nemd_pairs``: real/generated map pairs per service scored with NEMD (``None``: every pair);
    ``nemd_method``/``nemd_block``: exact NEMD or the coarse block approximation
    (:func:`appshot_model.evaluation.emd.emd_grid`)."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    steps: int | None = None
    batch_size: int | None = None
    features: int | None = None
    samples: int = 10
    nemd_pairs: int | None = 1
    nemd_method: str = "exact"
    nemd_block: int = 2
    spearman_threshold: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.methods:
            raise AppshotInputError("no method to evaluate; give at least one of " + ", ".join(METHODS))
        for method in self.methods:
            method_spec(method)  # names the valid methods when unknown
        # an alias (e.g. appshot_l1_d1_d2 = appshot) is not trained again when its model is in the list
        object.__setattr__(self, "methods", tuple(m for m in self.methods if METHODS[m].same_as not in self.methods))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise AppshotInputError(f"seeds must be distinct integers >= 0, got {list(self.seeds)}")
        for name in ("steps", "batch_size", "features"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AppshotInputError(f"{name} must be >= 1 (or None for each method's default), got {value}")
        if self.samples < 2:
            raise AppshotInputError(f"samples must be >= 2 (HEMD compares count distributions), got {self.samples}")
        if self.nemd_pairs is not None and self.nemd_pairs < 1:
            raise AppshotInputError(f"nemd_pairs must be >= 1 (or None for every pair), got {self.nemd_pairs}")
        if self.nemd_method not in ("exact", "coarse") or self.nemd_block < 2:
            raise AppshotInputError(f"nemd_method must be 'exact' or 'coarse' with nemd_block >= 2, got "
                                    f"{self.nemd_method!r} / {self.nemd_block}")

    def budget(self) -> Budget:
        return Budget(steps=self.steps, batch_size=self.batch_size, features=self.features)

    def score_options(self) -> dict:
        """Keyword arguments of :func:`~appshot_model.evaluation.metrics.score` for every row."""
        return {"nemd_max_pairs": self.nemd_pairs, "nemd_method": self.nemd_method, "nemd_block": self.nemd_block}

    def record(self) -> dict:
        """Plain values for the run record (with the worker thread count a row depends on)."""
        return {**asdict(self), "methods": list(self.methods), "seeds": list(self.seeds),
                "torch_threads": EVALUATION_THREADS}


@dataclass(frozen=True, order=True)
class Fold:
    """One held-out city at one peak hour."""

    held_out: str
    hour: str

    @property
    def key(self) -> str:
        return f"{self.held_out}|{self.hour}"


@dataclass
class FoldReference:
    """What every method of a fold shares: training cities, selected attributes, normalisation, the Data
    row's scores and the cached NEMD denominators (EMD of real maps to uniform)."""

    fold: Fold
    training_cities: list[str]
    attributes: list[str]
    normalisation: dict
    scores: dict
    denominators: dict
    seconds: dict


@dataclass
class SampleDigest:
    """What the report keeps of a method's samples ``[n, s, y, x]``: the first sample ``[s, y, x]``, the total
    traffic of each sample ``[n, y, x]`` and each sample's service volumes ``[n, s]`` (traffic units)."""

    first: np.ndarray
    totals: np.ndarray
    volumes: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray) -> SampleDigest:
        x = np.asarray(samples)
        return cls(first=x[0].astype(np.float32), totals=x.sum(axis=1, dtype=np.float64).astype(np.float32),
                   volumes=x.sum(axis=(2, 3), dtype=np.float64))

    @staticmethod
    def pooled(digests: Sequence[SampleDigest]) -> SampleDigest:
        """Every seed's samples together (first sample of the first digest)."""
        return SampleDigest(digests[0].first, np.concatenate([d.totals for d in digests]),
                            np.concatenate([d.volumes for d in digests]))

    def total_maps(self) -> np.ndarray:
        """``[n, 1, y, x]``: the samples' total traffic as one-service snapshots (city totals, pixel values
        and hotspot counts of total traffic are the same as on the full samples)."""
        return self.totals[:, None]

    def volume_maps(self) -> np.ndarray:
        """``[n, s, 1, 1]``: each service's volume in a single cell (service shares are the same as on the
        full samples)."""
        return self.volumes[:, :, None, None]


@dataclass
class MethodOutcome:
    """One method x seed of a fold: scores (:func:`~appshot_model.evaluation.metrics.score`), seconds per
    step and the sample digest."""

    fold: Fold
    method: str
    seed: int
    scores: dict
    seconds: dict
    digest: SampleDigest


@dataclass
class LocoRun:
    """Everything a run produced: rows (:data:`ROW_COLUMNS` + :data:`DETAIL_COLUMNS`), the fold references,
    sample digests per fold and method (one per seed) and the run record (settings, world, code version,
    workers, wall time, load average)."""

    world: str
    rows: pd.DataFrame
    references: dict[Fold, FoldReference]
    digests: dict[Fold, dict[str, list[SampleDigest]]]
    record: dict = field(default_factory=dict)

    @property
    def scores(self) -> pd.DataFrame:
        """Only the :data:`ROW_COLUMNS` (the committed table)."""
        return self.rows[list(ROW_COLUMNS)]


# --------------------------------------------------------------------------------------------
# one fold, one method x seed (run in worker processes, or directly)


def real_snapshots(world: World, city: str, hour: str) -> np.ndarray:
    """A city's real weekday snapshots at ``hour`` as ``[t, s, y, x]`` (traffic units)."""
    return world.snapshots(city, hour).transpose("time", "service", "y", "x").values


def method_seeds(world: str, fold: Fold, method: str, seed: int) -> tuple[int, int]:
    """Training and generation seeds of one method x seed of a fold (independent of everything else run)."""
    names = (world, fold.held_out, fold.hour, method)
    return derive_seed(seed, *names, "train"), derive_seed(seed, *names, "generate")


def prepare_fold(world: World, fold: Fold, settings: LocoSettings) -> FoldReference:
    """Fit the fold's inputs on its training cities and score the Data row (caching NEMD denominators)."""
    clock = _Clock()
    train = [c for c in world.cities if c != fold.held_out]
    contexts = {c: world.context(c) for c in world.cities}
    snapshots = {c: world.snapshots(c, fold.hour) for c in world.cities}
    attributes, normalisation = fold_inputs(contexts, snapshots, train, settings.spearman_threshold)
    clock.lap("train_seconds")
    first, second = split_snapshots(real_snapshots(world, fold.held_out, fold.hour))
    denominators: dict = {}
    timings: dict = {}
    scores = score(first, second, emd_cache=denominators, timings=timings, **settings.score_options())
    clock.lap("score_seconds")
    seconds = clock.seconds(nemd_seconds=timings["nemd"])
    return FoldReference(fold, train, attributes, normalisation, scores, denominators, seconds)


def evaluate_method(world: World, reference: FoldReference, method: str, seed: int,
                    settings: LocoSettings) -> MethodOutcome:
    """Train ``method`` on the fold's training cities with ``seed``, generate the held-out city and score it."""
    fold = reference.fold
    clock = _Clock()
    train_seed, generate_seed = method_seeds(world.name, fold, method, seed)
    fitted = train_method(method, {c: world.context(c) for c in reference.training_cities},
                          {c: world.snapshots(c, fold.hour) for c in reference.training_cities},
                          reference.attributes, reference.normalisation, fold.hour, seed=train_seed,
                          budget=settings.budget())
    clock.lap("train_seconds")
    samples = generate_method(fitted, world.context(fold.held_out), settings.samples, generate_seed)
    clock.lap("generate_seconds")
    timings: dict = {}
    scores = score(real_snapshots(world, fold.held_out, fold.hour), samples, emd_cache=dict(reference.denominators),
                   timings=timings, **settings.score_options())
    clock.lap("score_seconds")
    seconds = clock.seconds(nemd_seconds=timings["nemd"])
    return MethodOutcome(fold, method, int(seed), scores, seconds, SampleDigest.of(samples))


class _Clock:
    """CPU seconds of this process per named step, and the wall seconds since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.laps = time.perf_counter(), time.process_time(), {}

    def lap(self, name: str) -> None:
        now = time.process_time()
        self.laps[name], self.cpu = now - self.cpu, now

    def seconds(self, **more: float) -> dict[str, float]:
        return {k: round(v, 3) for k, v in {**self.laps, **more, "wall_seconds": time.perf_counter() - self.wall}.items()}


def _row(world: str, fold: Fold, method: str, seed: int | None, scores: dict, seconds: dict) -> dict:
    row = {"world": world, "held_out": fold.held_out, "hour": fold.hour, "method": method, "seed": seed}
    row.update({m: float(scores[m]) for m in HEADLINE_METRICS})
    row.update({c: float(scores[c]) if c in scores else float(seconds.get(c, math.nan)) for c in DETAIL_COLUMNS})
    return row


# --------------------------------------------------------------------------------------------
# planning


def plan_folds(world: World, cities: Iterable[str] | None = None, hours: Iterable[str] | None = None) -> list[Fold]:
    """Folds of ``world`` for the held-out ``cities`` x ``hours`` asked for (default: all), hours in the
    world's order; unknown names are an error naming the valid ones."""
    cities = list(dict.fromkeys(cities or world.cities))
    hours = list(dict.fromkeys(hours or world.hours))
    for given, known, what in ((cities, world.cities, "city"), (hours, world.hours, "hour")):
        unknown = [v for v in given if v not in known]
        if unknown:
            raise AppshotInputError(f"unknown {what} {unknown} in world {world.name}; expected some of {list(known)}")
    return [Fold(city, hour) for hour in world.hours if hour in hours for city in sorted(cities)]


def _cells(world: World, city: str) -> int:
    context = world.context(city)
    return int(context.sizes["y"] * context.sizes["x"])


def _method_cost(world: World, fold: Fold, method: str) -> float:
    return (TRAIN_COST[method_spec(method).family]
            + SCORE_COST_PER_10K_CELLS * _cells(world, fold.held_out) / 1e4)


# --------------------------------------------------------------------------------------------
# worker processes

_WORKER_WORLD: World | None = None


def _start_worker(world: World, cores, pids) -> None:
    """Worker initialiser: report the process id, end with the parent (Linux), keep the world, use one torch
    (and BLAS/OpenMP) thread, pin to one core."""
    global _WORKER_WORLD
    pids.put(os.getpid())
    with contextlib.suppress(OSError, AttributeError):  # prctl(PR_SET_PDEATHSIG, SIGTERM): Linux only
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    os.environ[THREADS_ENV] = str(EVALUATION_THREADS)
    torch.set_num_threads(EVALUATION_THREADS)
    threadpool_limits(EVALUATION_THREADS)
    if cores is not None:
        core = cores.get()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core})
    _WORKER_WORLD = world


def _prepare_task(fold: Fold, settings: LocoSettings) -> FoldReference:
    return prepare_fold(_WORKER_WORLD, fold, settings)


def _method_task(reference: FoldReference, method: str, seed: int, settings: LocoSettings) -> MethodOutcome:
    return evaluate_method(_WORKER_WORLD, reference, method, seed, settings)


@dataclass(frozen=True)
class LocoProgress:
    """A task finished: ``fold``, what (``"data"`` or ``"<method> seed <n>"``), and the fold's tasks done /
    total."""

    fold: Fold
    what: str
    done: int
    total: int


class LocoTaskError(RuntimeError):
    """A fold task failed in a worker; the message names the fold, method and seed."""


def run_loco(world: World, settings: LocoSettings, folds: Sequence[Fold] | None = None, workers: int | None = None,
             on_progress: Callable[[LocoProgress], None] | None = None) -> LocoRun:
    """Every fold (default: all held-out cities x hours) x method x seed, on ``workers`` processes (default:
    the cores available). Rows are ordered by hour, held-out city, method (``data`` first) and seed."""
    folds = list(dict.fromkeys(folds if folds is not None else plan_folds(world)))
    if not folds:
        raise AppshotInputError("no fold to evaluate")
    known = plan_folds(world)
    strangers = [f.key for f in folds if f not in known]
    if strangers:
        raise AppshotInputError(f"folds {strangers} are not held-out city|hour pairs of world {world.name}")
    cores = available_cores()
    workers = len(cores) if workers is None else int(workers)
    if workers < 1:
        raise AppshotInputError(f"workers must be >= 1, got {workers}")
    per_fold = 1 + len(settings.methods) * len(settings.seeds)
    started, load_start = time.perf_counter(), _load_average()
    references: dict[Fold, FoldReference] = {}
    outcomes: dict[tuple[Fold, str, int], MethodOutcome] = {}
    done = {fold: 0 for fold in folds}
    context = multiprocessing.get_context("spawn")
    pin = context.Queue() if workers <= len(cores) else None  # more workers than cores: let the OS place them
    for core in (cores[:workers] if pin is not None else []):
        pin.put(core)
    # longest first: fold preparations (biggest held-out city first), then methods by estimated cost
    queue: list[tuple[float, int, tuple]] = []
    order = itertools.count()  # ties keep the order of submission
    for fold in folds:
        heapq.heappush(queue, (-1e9 - _cells(world, fold.held_out), next(order), ("prepare", fold)))
    pids = context.Queue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(world, pin, pids))
    running: dict[Future, tuple] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                _, _, task = heapq.heappop(queue)
                if task[0] == "prepare":
                    running[pool.submit(_prepare_task, task[1], settings)] = task
                else:
                    _, fold, method, seed = task
                    running[pool.submit(_method_task, references[fold], method, seed, settings)] = task
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    what = "fold preparation" if task[0] == "prepare" else f"{task[2]} seed {task[3]}"
                    raise LocoTaskError(f"{world.name} {task[1].key}: {what} failed: "
                                        f"{type(exc).__name__}: {exc}") from exc
                fold = task[1]
                if task[0] == "prepare":
                    references[fold] = result
                    for method in settings.methods:
                        for seed in settings.seeds:
                            heapq.heappush(queue, (-_method_cost(world, fold, method), next(order),
                                                   ("method", fold, method, seed)))
                    what = DATA
                else:
                    outcomes[(fold, task[2], task[3])] = result
                    what = f"{task[2]} seed {task[3]}"
                done[fold] += 1
                if on_progress:
                    on_progress(LocoProgress(fold, what, done[fold], per_fold))
    except BaseException:  # a failed task or an interrupt: stop at once, do not wait for running tasks
        pool.shutdown(wait=False, cancel_futures=True)
        _end_workers(pids)
        raise
    pool.shutdown(wait=True)
    wall = time.perf_counter() - started
    return _collect(world, settings, folds, references, outcomes, workers, wall, load_start)


def _end_workers(pids) -> None:
    """Terminate the worker processes whose ids the initialiser reported."""
    while True:
        try:
            pid = pids.get_nowait()
        except queue_module.Empty:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _collect(world: World, settings: LocoSettings, folds: list[Fold], references: dict[Fold, FoldReference],
             outcomes: dict[tuple[Fold, str, int], MethodOutcome], workers: int, wall: float,
             load_start: list[float] | None) -> LocoRun:
    rows, digests = [], {}
    hours = list(world.hours)
    for fold in sorted(folds, key=lambda f: (hours.index(f.hour), f.held_out)):
        reference = references[fold]
        rows.append(_row(world.name, fold, DATA, None, reference.scores, reference.seconds))
        digests[fold] = {}
        for method in settings.methods:
            for seed in settings.seeds:
                outcome = outcomes[(fold, method, seed)]
                rows.append(_row(world.name, fold, method, seed, outcome.scores, outcome.seconds))
                digests[fold].setdefault(method, []).append(outcome.digest)
    frame = pd.DataFrame(rows, columns=[*ROW_COLUMNS, *DETAIL_COLUMNS])
    frame["seed"] = frame["seed"].astype("Int64")
    record = {
        "world": world.name, "world_description": dict(getattr(world, "description", {}) or {}),
        "folds": [f.key for f in folds], "settings": settings.record(), "code": code_version(),
        "workers": workers, "wall_seconds": round(wall, 1),
        "task_cpu_seconds": round(float(np.nansum(frame[["train_seconds", "generate_seconds", "score_seconds"]])), 1),
        "machine": {"cores_available": len(available_cores()), "cpu_count": os.cpu_count(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_start": load_start, "load_average_end": _load_average()},
        "numerics": numerics(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return LocoRun(world.name, frame, references, digests, record)


# --------------------------------------------------------------------------------------------
# outputs


def fold_figures(world: World, fold: Fold, digests: dict[str, list[SampleDigest]]) -> dict[str, bytes]:
    """PNG bytes of one fold: real vs the first sample of each method (first seed), stochasticity histograms
    (paper Fig. 14) and service share errors (Fig. 12b) of every seed's samples together."""
    real = real_snapshots(world, fold.held_out, fold.hour)
    services = [str(s) for s in world.snapshots(fold.held_out, fold.hour).service.values]
    pooled = {method: SampleDigest.pooled(seeds) for method, seeds in digests.items()}
    title = f"{world.name}: {fold.held_out} held out, {fold.hour} peak"
    n_seeds = max(len(seeds) for seeds in digests.values())
    return {
        "maps": maps_figure(real[0], {m: d.first for m, d in pooled.items()}, services,
                            title=f"{title}: real vs one sample"),
        "stochasticity": stochasticity_figure(real.sum(axis=1, keepdims=True),
                                              {m: d.total_maps() for m, d in pooled.items()},
                                              title=f"{title} ({n_seeds} seed(s) pooled)"),
        "share_errors": share_error_figure(real.sum(axis=(2, 3), keepdims=True),
                                           {m: d.volume_maps() for m, d in pooled.items()}, services, title=title),
    }


def time_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per row by method, over folds and seeds: CPU seconds of each step (train, generate, score, of
    which NEMD) and the task's wall seconds; ``data`` is the fold preparation (:data:`DETAIL_COLUMNS`)."""
    table = rows.groupby("method", sort=False)[list(TIME_COLUMNS)].mean()
    table["rows"] = rows.groupby("method", sort=False).size()
    return table


def sort_rows(rows: pd.DataFrame, hours: Sequence[str]) -> pd.DataFrame:
    """Rows in the committed order: hour (``hours`` order), held-out city, method (``data`` first, then
    :data:`~appshot_model.evaluation.baselines.METHODS` order), seed."""
    methods = [DATA, *METHODS]
    key = pd.DataFrame({"hour": rows["hour"].map(list(hours).index), "held_out": rows["held_out"],
                        "method": rows["method"].map(lambda m: methods.index(m) if m in methods else len(methods)),
                        "seed": rows["seed"].fillna(-1).astype(int)})
    return rows.loc[key.sort_values(["hour", "held_out", "method", "seed"], kind="stable").index].reset_index(drop=True)


def run_description(record: dict) -> list[str]:
    """Markdown bullet lines of a run record: world, folds, budget, NEMD, threads, code version, CPU and library
    versions (when recorded), workers, time."""
    settings, code, machine = record["settings"], record["code"], record["machine"]
    nemd = "exact" if settings["nemd_method"] == "exact" else f"coarse block {settings['nemd_block']} (APPROXIMATE)"
    budget = ", ".join(f"{k} {settings[k]}" for k in ("batch_size", "features") if settings[k] is not None)
    return [
        f"- world: {record['world']} {json.dumps(record['world_description'], sort_keys=True)}",
        f"- folds: {len(record['folds'])}; methods: {', '.join(settings['methods'])}; seeds: {settings['seeds']}",
        (f"- budget: optimiser steps per model {json.dumps(record.get('steps_per_model'))}"
         f"{'; ' + budget if budget else ''}; {settings['samples']} samples; NEMD {nemd} on "
         f"{settings['nemd_pairs'] or 'every'} pair(s) per service; torch threads per worker {settings['torch_threads']}"),
        (f"- code: appshot_model sha256 {code['appshot_model_sha256'][:16]}..., git commit {code['git_commit']}"
         f"{' (working tree differs)' if code['git_dirty'] else ''}"),
        *([f"- numerics: {record['numerics']['cpu']}, torch {record['numerics']['torch_cpu_capability']} kernels; "
           + ", ".join(f"{k} {v}" for k, v in record["numerics"]["libraries"].items())] if "numerics" in record else []),
        (f"- {record['workers']} worker(s); wall time {record['wall_seconds']:.0f} s; CPU in tasks "
         f"{record['task_cpu_seconds']:.0f} s; load average at start {machine['load_average_start']}, at end "
         f"{machine['load_average_end']} ({machine['cores_available']} cores available)"
         f"{'; the sums over the parts below' if 'parts' in record else ''}"),
        *[(f"- part `{part['csv']}`: seeds {part['settings']['seeds']}, methods "
           f"{', '.join(part['settings']['methods'])}; git commit {part['code']['git_commit']}; {part['workers']} "
           f"worker(s), wall time {part['wall_seconds']:.0f} s, CPU in tasks {part['task_cpu_seconds']:.0f} s; "
           f"finished {part['finished_utc']}")
          for part in record.get("parts", [])],
    ]


def write_loco(run: LocoRun, csv_path: str | os.PathLike, world: World | None = None, figures: bool = True
               ) -> dict[str, Path]:
    """Write a run beside ``csv_path`` (each file atomically): ``<name>.csv`` the scores (:data:`ROW_COLUMNS`),
    ``<name>_details.csv`` every column, ``<name>_run.json`` the run record, ``<name>.md`` the Table II-style
    summary (mean over held-out cities and seeds, ± the spread over seeds) with the record and the time per
    method, and with ``figures`` ``<name>_figures/`` (per hour: metric bars; per fold, when ``world`` is given
    and the run has sample digests: maps, stochasticity, share errors). Returns the paths by kind."""
    csv_path = Path(csv_path)
    stem = csv_path.with_suffix("")
    paths = {"scores": write_scores(run.scores, csv_path),
             "details": write_scores(run.rows, stem.with_name(f"{stem.name}_details.csv"))}
    record = dict(run.record)
    steps = run.record["settings"]["steps"]
    record["steps_per_model"] = {m: 0 if METHODS[m].family == "fdas" else steps or METHODS[m].default_steps
                                 for m in run.record["settings"]["methods"]}
    paths["record"] = record_path(csv_path)
    with atomic_path(paths["record"]) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    summary = seed_summary(run.rows)
    lines = [
        (f"Per-fold scores: `{csv_path.name}` (one row per held-out city x hour x method x seed); details and "
         f"seconds per step: `{stem.name}_details.csv`; run record: `{paths['record'].name}`."), "",
        *run_description(record), "",
        results_markdown(summary, f"Leave-one-city-out fidelity ({run.world} world): mean over held-out cities, "
                                  "± standard deviation over seeds"),
        "## Seconds per row (mean over folds and seeds; CPU seconds per step, wall seconds per task)", "",
        time_table(run.rows).round(2).to_markdown(), ""]
    paths["summary"] = stem.with_suffix(".md")
    with atomic_path(paths["summary"]) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    if figures:
        folder = stem.with_name(f"{stem.name}_figures")
        for fold, digests in (run.digests.items() if world is not None else ()):
            for name, png in fold_figures(world, fold, digests).items():
                with atomic_path(folder / f"{name}_{fold.held_out}_{fold.hour}.png") as tmp:
                    tmp.write_bytes(png)
        for hour in dict.fromkeys(summary.index.get_level_values("hour")):
            with atomic_path(folder / f"metrics_{hour}.png") as tmp:
                tmp.write_bytes(metrics_figure(summary, hour, title=f"{run.world} world, {hour} peak "
                                                                   "(mean over held-out cities and seeds)"))
        paths["figures"] = folder
    return paths


def record_path(csv_path: str | os.PathLike) -> Path:
    """The run record written beside a scores CSV by :func:`write_loco`."""
    csv_path = Path(csv_path)
    return csv_path.with_name(f"{csv_path.stem}_run.json")


def check_reproduction(run: LocoRun, committed_csv: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Does ``run`` reproduce its rows of a committed scores CSV bit for bit? Returns ``(problems, notes)``:
    problems are rows missing or differing, and settings that differ from the committed run record (when
    it lies beside the CSV; a subset of methods, seeds and folds is fine); notes say what may explain a
    difference (another code version)."""
    committed = read_scores(committed_csv, ROW_COLUMNS)
    problems = compare_scores(run.scores, committed, ROW_COLUMNS[:5], HEADLINE_METRICS)
    notes = []
    path = record_path(committed_csv)
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        new = run.record
        for key in sorted(set(old["settings"]) | set(new["settings"])):
            if key not in ("methods", "seeds") and old["settings"].get(key) != new["settings"].get(key):
                problems.append(f"setting {key} is {new['settings'].get(key)!r} here but "
                                f"{old['settings'].get(key)!r} in {path.name}")
        old_world, new_world = _world_identity(old), _world_identity(new)
        if old_world != new_world:
            problems.append(f"world {new_world} differs from {old_world} in {path.name}")
        if old["code"]["appshot_model_sha256"] != new["code"]["appshot_model_sha256"]:
            notes.append(f"appshot_model sources differ from those of {path.name} (git commit "
                         f"{old['code'].get('git_commit')}); rows are only expected to match with the same code")
        if old.get("numerics") != new.get("numerics"):
            notes.append(f"CPU, torch's instruction set or library versions differ from those of {path.name} "
                         f"({old.get('numerics', 'not recorded')} there, {new['numerics']} here): trained methods' "
                         f"rows are only expected to match on the same")
    else:
        notes.append(f"no run record {path.name} beside {Path(committed_csv).name}: settings not checked")
    return problems, notes


def _world_identity(record: dict) -> dict:
    """A run record's world description without the data's folder (it may lie elsewhere; the rows are compared)."""
    return {k: v for k, v in (record.get("world_description") or {}).items() if k != "root"}


#: Run-record keys that may differ between the parts of a merged run (everything else must agree).
PART_KEYS = ("folds", "workers", "wall_seconds", "task_cpu_seconds", "machine", "finished_utc", "steps_per_model")


def merge_runs(csv_paths: Sequence[str | os.PathLike]) -> LocoRun:
    """One run from several runs written by :func:`write_loco` (e.g. the seeds of one evaluation run on different
    days). The parts must share the world, the code (``appshot_model`` sha256), the numerics and every setting but
    the methods and seeds; their Data rows must agree bit for bit and no method x seed row may appear twice. The
    merged record lists each part's record under ``parts``; its wall and CPU seconds are the parts' sums. Sample
    digests are not stored, so a merged run has no per-fold figures."""
    if len(csv_paths) < 2:
        raise AppshotInputError(f"merging needs at least two runs, got {len(csv_paths)}")
    frames, records = [], []
    for path in map(Path, csv_paths):
        details, record = path.with_name(f"{path.stem}_details.csv"), record_path(path)
        for needed in (details, record):
            if not needed.is_file():
                raise AppshotInputError(f"{needed} does not exist: {path} was not written by 'appshot evaluate'")
        frames.append(read_scores(details, [*ROW_COLUMNS, *DETAIL_COLUMNS]))
        records.append(json.loads(record.read_text(encoding="utf-8")))
    first = records[0]

    def shared(record: dict) -> dict:
        settings = {k: v for k, v in record["settings"].items() if k not in ("methods", "seeds")}
        return {"world": record["world"], "world_description": _world_identity(record), "settings": settings,
                "appshot_model_sha256": record["code"]["appshot_model_sha256"], "numerics": record.get("numerics")}

    theirs = shared(first)
    for path, record in zip(csv_paths[1:], records[1:], strict=True):
        mine = shared(record)
        for key in mine:
            if mine[key] != theirs[key]:
                raise AppshotInputError(f"{path}: {key} is {mine[key]!r}, but {theirs[key]!r} in {csv_paths[0]}; "
                                        "only runs of the same world, code, numerics and settings can be merged")
    rows = pd.concat(frames, ignore_index=True)
    keys = ["held_out", "hour", "method", "seed"]
    data = rows[rows["method"] == DATA]
    for (held_out, hour), group in data.groupby(["held_out", "hour"]):
        values = group[list(HEADLINE_METRICS)].to_numpy(float)
        if not all(np.array_equal(values[0], other, equal_nan=True) for other in values[1:]):
            raise AppshotInputError(f"the parts' Data rows of {held_out} {hour} differ: not the same world or scoring")
    methods = rows[rows["method"] != DATA]
    twice = methods[methods.duplicated(subset=keys, keep=False)]
    if len(twice):
        first_twice = twice.iloc[0]
        raise AppshotInputError(f"{len(twice) // 2} method x seed row(s) appear in more than one part, e.g. "
                                f"{first_twice['held_out']} {first_twice['hour']} {first_twice['method']} seed "
                                f"{first_twice['seed']}")
    hours = list(dict.fromkeys(f.split("|")[1] for r in records for f in r["folds"]))
    merged = sort_rows(pd.concat([data.drop_duplicates(subset=keys), methods], ignore_index=True), hours)
    record = {k: v for k, v in first.items() if k not in PART_KEYS}
    record["settings"] = {**first["settings"],
                          "methods": list(dict.fromkeys(m for r in records for m in r["settings"]["methods"])),
                          "seeds": sorted({s for r in records for s in r["settings"]["seeds"]})}
    record["folds"] = list(dict.fromkeys(f for r in records for f in r["folds"]))
    record["workers"] = max(r["workers"] for r in records)
    record["wall_seconds"] = round(sum(r["wall_seconds"] for r in records), 1)
    record["task_cpu_seconds"] = round(sum(r["task_cpu_seconds"] for r in records), 1)
    record["machine"] = first["machine"]
    record["parts"] = [{"csv": str(Path(p).name), **{k: r.get(k) for k in ("settings", "code", *PART_KEYS)}}
                       for p, r in zip(csv_paths, records, strict=True)]
    return LocoRun(first["world"], merged, {}, {}, record)
