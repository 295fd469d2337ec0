"""Checks of expanded sessions against seed 004: session and traffic shares, log10-volume KS distances,
and the volume-duration power law, each with a figure.

The tables are read in batches (memory bounded by the sample kept, not by the table). Two volumes
are checked per session: the **drawn** one (before reconciliation, recovered as bytes x drawn /
given of its cell x service: it tests the sampler against the mixture) and the **written** one
(after reconciliation: it shows how far the given volumes push sessions off the mixture).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
from scipy import stats

from appshot_model.core.plots import plt, png_bytes
from appshot_model.sessions.models import DURATION_FLOOR_S, SessionModel

#: Sessions kept (systematic sample over the table) for the KS and volume-duration checks.
CHECK_SAMPLE = 200_000


def read_ratio(reconciliation_path: str | os.PathLike, model: SessionModel, n_cells: int) -> np.ndarray:
    """drawn / given bytes ``[cells, services]`` from a reconciliation table (0 where nothing was given)."""
    table = pq.read_table(reconciliation_path, columns=["cell_id", "service", "given_bytes", "drawn_bytes"])
    services = table["service"].combine_chunks()
    index = np.array([model.services.index(s) for s in services.dictionary.to_pylist()])[services.indices.to_numpy()]
    ratio = np.zeros((n_cells, len(model.services)))
    given = table["given_bytes"].to_numpy()
    ratio[table["cell_id"].to_numpy(), index] = np.divide(table["drawn_bytes"].to_numpy(), given,
                                                          out=np.zeros_like(given), where=given > 0)
    return ratio


def _indices(column, names: tuple[str, ...]) -> np.ndarray:
    """Positions in ``names`` of a dictionary-encoded column's values."""
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    lookup = np.array([names.index(v) for v in column.dictionary.to_pylist()], dtype=np.int64)
    return lookup[column.indices.to_numpy()]


def sample_sessions(sessions_path: str | os.PathLike, model: SessionModel, ratio: np.ndarray,
                    sample: int = CHECK_SAMPLE) -> dict[str, np.ndarray]:
    """Per-service session counts and bytes over the whole table, and a systematic sample of sessions
    (service, app, duration, written and drawn bytes)."""
    file = pq.ParquetFile(sessions_path)
    step = max(1, file.metadata.num_rows // sample)
    counts = np.zeros(len(model.services), dtype=np.int64)
    volume = np.zeros(len(model.services))
    kept: dict[str, list[np.ndarray]] = {k: [] for k in ("service", "app", "duration_s", "bytes", "drawn")}
    offset = 0
    for batch in file.iter_batches(columns=["cell_id", "service", "app", "duration_s", "bytes"], batch_size=1 << 18):
        service = _indices(batch.column("service"), model.services)
        written = batch.column("bytes").to_numpy()
        counts += np.bincount(service, minlength=counts.size)
        volume += np.bincount(service, written, volume.size)
        take = np.arange((-offset) % step, batch.num_rows, step)
        offset += batch.num_rows
        cells = batch.column("cell_id").to_numpy()[take]
        kept["service"].append(service[take])
        kept["app"].append(_indices(batch.column("app"), model.apps)[take])
        kept["duration_s"].append(batch.column("duration_s").to_numpy()[take].astype(np.float64))
        kept["bytes"].append(written[take])
        kept["drawn"].append(written[take] * ratio[cells, service[take]])
    return {"counts": counts, "volume": volume, **{k: np.concatenate(v) for k, v in kept.items()}}


def check_sessions(model: SessionModel, sessions_path: str | os.PathLike, reconciliation_path: str | os.PathLike,
                   n_cells: int, cap_s: float, title: str = "") -> tuple[dict, dict[str, bytes]]:
    """Share errors, KS distances and power-law fit of an expanded city-hour; returns (results, PNGs)."""
    ratio = read_ratio(reconciliation_path, model, n_cells)
    data = sample_sessions(sessions_path, model, ratio)
    session_share = data["counts"] / data["counts"].sum()
    traffic_share = data["volume"] / data["volume"].sum()
    expected_sessions, expected_traffic = model.service_session_share(), model.service_traffic_share()
    implied = expected_sessions * model.service_mean_bytes()
    implied /= implied.sum()
    per_service = {}
    for i, service in enumerate(model.services):
        mine = data["service"] == i
        drawn, written = np.log10(data["drawn"][mine]), np.log10(data["bytes"][mine])
        cdf = lambda x, s=service: model.service_log10_cdf(s, x)  # noqa: E731
        duration = data["duration_s"][mine]
        law = model.log10_a[data["app"][mine]] + model.b[data["app"][mine]] * np.log10(duration)
        free = (duration > DURATION_FLOOR_S * 1.0001) & (duration < cap_s * 0.9999)
        per_service[service] = {
            "session_share": float(session_share[i]), "session_share_expected": float(expected_sessions[i]),
            "session_share_error_pp": float(100 * (session_share[i] - expected_sessions[i])),
            "traffic_share": float(traffic_share[i]), "traffic_share_seed004": float(expected_traffic[i]),
            "traffic_share_error_pp": float(100 * (traffic_share[i] - expected_traffic[i])),
            "traffic_share_implied_by_models": float(implied[i]),
            "sampled_sessions": int(mine.sum()),
            "ks_drawn": float(stats.kstest(drawn, cdf).statistic) if mine.any() else None,
            "ks_written": float(stats.kstest(written, cdf).statistic) if mine.any() else None,
            "capped_share": float(np.mean(duration >= cap_s * 0.9999)) if mine.any() else None,
            "floored_share": float(np.mean(duration <= DURATION_FLOOR_S * 1.0001)) if mine.any() else None,
            "power_law_offset_drawn_log10": float(np.median(np.abs(drawn - law)[free])) if free.any() else None,
            "power_law_offset_written_log10": float(np.median((written - law)[free])) if free.any() else None,
        }
    results = {
        "services": per_service,
        "max_session_share_error_pp": max(abs(v["session_share_error_pp"]) for v in per_service.values()),
        "max_traffic_share_error_pp": max(abs(v["traffic_share_error_pp"]) for v in per_service.values()),
        "max_ks_drawn": max(v["ks_drawn"] or 0.0 for v in per_service.values()),
        "max_ks_written": max(v["ks_written"] or 0.0 for v in per_service.values()),
    }
    figures = {"shares": shares_png(model.services, per_service, title),
               "volume_ks": volume_ks_png(model, data, per_service, title),
               "volume_duration": volume_duration_png(model, data, cap_s, title),
               "reconciliation": reconciliation_png(model.services, ratio, title)}
    return results, figures


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------

def _panels(n: int):
    cols = 5
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def shares_png(services: tuple[str, ...], per_service: dict, title: str = "") -> bytes:
    """Session and traffic shares per service: expanded vs seed 004."""
    x = np.arange(len(services))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, (what, ref, ref_name) in zip(axes, (("session_share", "session_share_expected", "seed 004"),
                                                ("traffic_share", "traffic_share_seed004", "seed 004")), strict=True):
        ax.bar(x - 0.2, [100 * per_service[s][what] for s in services], 0.4, label="expanded sessions")
        ax.bar(x + 0.2, [100 * per_service[s][ref] for s in services], 0.4, label=ref_name)
        ax.set_xticks(x, services, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(f"{what.replace('_', ' ')} (%)")
        ax.legend(fontsize=8)
    fig.suptitle(f"{title} session and traffic shares per service", fontsize=10)
    return png_bytes(fig)


def volume_ks_png(model: SessionModel, data: dict, per_service: dict, title: str = "") -> bytes:
    """Empirical CDF of log10 bytes per session (drawn and written) against the service's mixture."""
    fig, axes = _panels(len(model.services))
    grid = np.linspace(0, 11, 300)
    for i, (ax, service) in enumerate(zip(axes, model.services, strict=False)):
        mine = data["service"] == i
        for values, name in ((data["drawn"][mine], "drawn"), (data["bytes"][mine], "written")):
            x = np.sort(np.log10(values))
            ax.plot(grid, np.searchsorted(x, grid, side="right") / max(1, x.size), linewidth=1, label=name)
        ax.plot(grid, model.service_log10_cdf(service, grid), "k--", linewidth=1, label="mixture")
        info = per_service[service]
        ax.set_title(f"{service}\nKS drawn {info['ks_drawn'] or 0:.3f}, written {info['ks_written'] or 0:.3f}",
                     fontsize=8)
        ax.set_xlabel("log10 bytes per session", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title} session volume vs the seed-004 mixtures", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def volume_duration_png(model: SessionModel, data: dict, cap_s: float, title: str = "") -> bytes:
    """Duration vs volume (drawn and written) of sampled sessions, with each app's power law."""
    fig, axes = _panels(len(model.services))
    d = np.logspace(0, np.log10(cap_s), 50)
    for i, (ax, service) in enumerate(zip(axes, model.services, strict=False)):
        mine = np.flatnonzero(data["service"] == i)
        mine = mine[::max(1, mine.size // 1500)]
        log_d = np.log10(data["duration_s"][mine])
        ax.scatter(log_d, np.log10(data["drawn"][mine]), s=1, alpha=0.3, label="drawn")
        ax.scatter(log_d, np.log10(data["bytes"][mine]), s=1, alpha=0.3, label="written")
        for app in np.flatnonzero(model.app_service == i):
            ax.plot(np.log10(d), model.log10_a[app] + model.b[app] * np.log10(d), "k-", linewidth=1)
        ax.set_title(service, fontsize=8)
        ax.set_xlabel("log10 duration (s)", fontsize=7)
        ax.set_ylabel("log10 bytes", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, markerscale=5)
    fig.suptitle(f"{title} volume vs duration (black: power law volume = a d^b)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def reconciliation_png(services: tuple[str, ...], ratio: np.ndarray, title: str = "") -> bytes:
    """Distribution over cells of log10(drawn / given volume) per service (0 = the arrival model
    implies the given volume)."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    data = [np.log10(ratio[:, i][ratio[:, i] > 0]) for i in range(len(services))]
    ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False)
    ax.set_xticks(np.arange(1, len(services) + 1), services, rotation=45, ha="right", fontsize=8)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_ylabel("log10(drawn / given bytes)")
    ax.set_title(f"{title} volume implied by the arrival model vs given, per cell x service", fontsize=10)
    return png_bytes(fig)

