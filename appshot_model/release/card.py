"""Dataset card of a release: Markdown for people, JSON for programs.

The card says what the data is (SYNTHETIC model output, not measurements), how it was generated
(model hash, seeds, sample counts), which context it was generated from and under which
licences, the fidelity table when one is given, the privacy gate's figures per city x hour when
the parts were audited, the cities' hourly series with their AC-L1 when the release holds them, and how to
cite AppShot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from appshot_model.core.io import atomic_path
from appshot_model.core.names import PEAK_HOURS
from appshot_model.release.layout import CARD_JSON, CARD_MD, SERIES_METHODS, ReleasePart, SeriesPart, series_path

CITATION_TEXT = ('C. Xu et al., "Generating Realistic City-Scale, Service-Level Mobile Traffic '
                 'Snapshots", IEEE Transactions on Network and Service Management (TNSM), 2022.')
CITATION_BIBTEX = """@article{xu2022appshot,
  author  = {Xu, C. and others},
  title   = {Generating Realistic City-Scale, Service-Level Mobile Traffic Snapshots},
  journal = {IEEE Transactions on Network and Service Management},
  year    = {2022}
}"""
SYNTHETIC_NOTICE = ("SYNTHETIC DATA. Every traffic value in this release was produced by a generative "
                    "model (the AppShot conditional GAN) from public context; none is a measurement "
                    "of any operator's network.")
SERIES_NOTICE = " The hourly series marked `dg` come from a DoppelGANger-style per-cell series model instead."
PRIVACY_COLUMNS = ("members", "held_out", "dcr_ratio", "attack_auc", "attack_p_value", "status")
OSM_LICENCE = {"name": "OpenStreetMap", "licence": "ODbL-1.0",
               "attribution": "(c) OpenStreetMap contributors"}


def _part_record(part: ReleasePart, recorded_model_files: Mapping[str, str]) -> dict:
    grid = part.snapshots
    hour_start = PEAK_HOURS.get(part.hour)
    return {
        "city": part.city,
        "peak_hour": part.hour,
        "window": f"{hour_start:02d}:00-{hour_start + 1:02d}:00" if hour_start is not None else "",
        "label": "synthetic",
        "statement": part.label_statement,
        "samples": part.n_samples,
        "seed": part.seed,
        "model_hash": str(part.snapshots.attrs["model_hash"]),
        "model_dir": str(part.model_dir) if part.model_dir else "",
        "model_files": dict(recorded_model_files),
        "units": str(part.snapshots.attrs["units"]),
        "services": part.services,
        "grid": {"crs": grid.rio.crs.to_string() if grid.rio.crs else "", "height": int(grid.sizes["y"]),
                 "width": int(grid.sizes["x"])},
        "context_sources": list(part.context_sources),
        "privacy": dict(part.privacy),
    }


def _series_record(part: SeriesPart) -> dict:
    times = pd.DatetimeIndex(part.series.time.values)
    attrs = part.series.attrs
    return {"city": part.city, "method": part.method, "generator": SERIES_METHODS[part.method],
            "file": series_path(part.city, part.method).as_posix(), "hours": len(times),
            "first_hour": f"{times[0]:%Y-%m-%d %H:%M}", "last_hour": f"{times[-1]:%Y-%m-%d %H:%M}",
            "services": [str(v) for v in part.series.service.values], "units": str(attrs.get("units", "")),
            "seed": int(attrs.get("seed", -1)),
            "acl1": {k.removeprefix("acl1_"): float(v) for k, v in attrs.items() if k.startswith("acl1_")}}


def card_dict(release_id: str, release_date: str, parts: Sequence[ReleasePart],
              model_files: Mapping[str, Mapping[str, str]], fidelity: Mapping[str, Sequence[Mapping]] | None,
              title: str = "", series: Sequence[SeriesPart] = ()) -> dict:
    """The JSON card. ``model_files``: hour -> {file in the release: sha256}; ``fidelity``:
    hour (or any key) -> table rows (dicts of metric name -> value); ``series``: the cities' hourly series."""
    sources: list[dict] = []
    for part in parts:
        for source in part.context_sources:
            if source not in sources:
                sources.append(dict(source))
    return {
        "title": title or f"appshot synthetic per-service mobile traffic ({release_id})",
        "release_id": release_id,
        "release_date": release_date,
        "label": "synthetic",
        "notice": SYNTHETIC_NOTICE + (SERIES_NOTICE if any(p.method == "dg" for p in series) else ""),
        "description": ("Per-service mobile traffic snapshots on a 250 m grid at weekday peak hours, "
                        "generated for each city from its context (population, land use, points of "
                        "interest) by an AppShot model trained on other data."),
        "generator": {"model": "AppShot conditional GAN (Xu et al., IEEE TNSM 2022)",
                      "software": "appshot"},
        "parts": [_part_record(p, model_files.get(p.hour, {})) for p in parts],
        "context_sources": sources,
        "licence": {"data": "CC-BY-4.0 for the synthetic values; context-derived layers keep the "
                            "licences of their sources listed under context_sources",
                    "sources": sources},
        "fidelity": {str(k): [dict(r) for r in rows] for k, rows in fidelity.items()} if fidelity else None,
        "series": [_series_record(p) for p in series],
        "citation": {"text": CITATION_TEXT, "bibtex": CITATION_BIBTEX},
    }


def _markdown_table(rows: Sequence[Mapping]) -> list[str]:
    if not rows:
        return ["(empty table)"]
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def _series_markdown(series: Sequence[Mapping]) -> list[str]:
    if not series:
        return []
    rows = [{"city": r["city"], "method": r["method"], "file": f"`{r['file']}`", "hours": r["hours"],
             "from": r["first_hour"], "to": r["last_hour"], "services": len(r["services"]), "units": r["units"],
             "seed": r["seed"], **{f"AC-L1 {k}": v for k, v in r["acl1"].items()}} for r in series]
    return ["## Hourly series", "",
            "Synthetic hourly traffic per cell and service, NetCDF `[time, service, y, x]` with a CF time axis and "
            "the CRS. AC-L1 (docs/hourly.md): mean over cells of the L1 distance between the autocorrelation "
            "functions of the city's real and synthetic total traffic (0 = same; `data` = the real series' two "
            "halves, `naive` = the nearest training cell's weekly profile + noise), as measured by the pipeline "
            "when it generated the series. These files are checked against the manifest's checksums; "
            "`verify` regenerates only the snapshots.", "", *_markdown_table(rows), ""]


def card_markdown(card: Mapping) -> str:
    """Render the JSON card as Markdown."""
    out = [f"# {card['title']}", "", f"> **{card['notice']}**", "",
           f"- Release: `{card['release_id']}` ({card['release_date']})", f"- Label: **{card['label']}**", "",
           "## What it is", "", card["description"], "", "## How it was generated", "",
           f"Model: {card['generator']['model']}, software: {card['generator']['software']}.", ""]
    out += ["| city | peak hour | samples | seed | model hash | units | statement |",
            "|---|---|---|---|---|---|---|"]
    for part in card["parts"]:
        out.append(f"| {part['city']} | {part['peak_hour']} {part['window']} | {part['samples']} | {part['seed']} "
                   f"| `{part['model_hash'][:16]}` | {part['units']} | {part['statement']} |")
    out += ["", "Each part was generated by `generate_snapshots(model, context, n_samples, seed)`; "
            "`appshot release verify` regenerates a sample from the copied model and the seed and "
            "compares it byte for byte.", ""]
    for part in card["parts"]:
        if part["model_files"]:
            out.append(f"Model files for {part['city']}/{part['peak_hour']} (recorded from `{part['model_dir']}`):")
            out += [f"- `{name}` sha256 `{digest}`" for name, digest in part["model_files"].items()]
            out.append("")
    out += ["## Source context and licences", ""]
    if card["context_sources"]:
        out += [f"- {s.get('name', '?')}: {s.get('licence', 'licence not recorded')}"
                + (f" — {s['attribution']}" if s.get("attribution") else "") for s in card["context_sources"]]
    else:
        out.append("- not recorded")
    out += ["", f"Licence of this release: {card['licence']['data']}.", "", "## Fidelity", ""]
    if card["fidelity"]:
        for key, rows in card["fidelity"].items():
            out += [f"### {key}", "", *_markdown_table(rows), ""]
    else:
        out += ["No fidelity table was provided with this release (in the pipeline: the `evaluation_report` "
                "asset had not been materialised when it was built).", ""]
    out += _series_markdown(card.get("series") or [])
    audited = [p for p in card["parts"] if p.get("privacy")]
    if audited:
        out += ["## Privacy", "",
                "Privacy gate (docs/privacy.md): DCR ratio = median distance of generated snapshots to the closest "
                "training day / the same for held-out real days (1: no closer than fresh data); attack AUC = "
                "ROC-AUC of a membership-inference attack telling training days from held-out days (0.5: "
                "cannot tell).", "",
                *_markdown_table([{"city": p["city"], "peak hour": p["peak_hour"],
                                   **{k: p["privacy"].get(k) for k in PRIVACY_COLUMNS}} for p in audited]), ""]
    out += ["## Citation", "", "If you use this dataset, cite AppShot:", "", card["citation"]["text"], "",
            "```bibtex", card["citation"]["bibtex"], "```", ""]
    return "\n".join(out)


def write_card(root: str | Path, card: Mapping) -> None:
    """Write ``card.json`` and ``card.md`` into ``root``."""
    root = Path(root)
    with atomic_path(root / CARD_JSON) as tmp:
        tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    with atomic_path(root / CARD_MD) as tmp:
        tmp.write_text(card_markdown(card))
