"""The privacy gate before a release: ``privacy_audit`` measures, for every generated city x peak hour
of the run, how close the model's output is to the real days it was trained on
(:mod:`appshot_model.evaluation.privacy`), and its blocking check ``privacy_gate`` stops the release
assets downstream when any city x hour is blocked.

Thin: the run's parts are found like the release finds them (``parts_from_run_dir``); members are the
city's real snapshots on the dates the model records in ``training_dates``, non-members the city's
other real weekday snapshots of that hour (the dates ``AppshotSettings.privacy_holdout_fraction`` kept
out of training).
"""

import dataclasses
from pathlib import Path

from dagster import (AssetCheckResult, AssetChecksDefinition, AssetCheckSeverity, AssetExecutionContext,
                     AssetsDefinition, MetadataValue, asset, asset_check)

from appshot_model.core.cube import read_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.privacy import (BLOCKED, PrivacyAudit, audit_city_hour, audit_table, blocked_message,
                                              member_mask)
from appshot_model.release import build as release_build
from appshot_model.release.build import parts_from_run_dir
from assets.resources import AppshotSettings, PrivacySettings

PEAK_TRAFFIC = "peak_traffic"


def audit_run(assets_dir: Path, privacy: PrivacySettings) -> list[dict]:
    """Audit of every generated city x hour under ``assets_dir``, each with the model hash and seed of the
    generated snapshots it judged. The attack's significance level is ``privacy.alpha`` divided by the
    number of city x hours, so that the chance of blocking a release that leaks nothing stays below
    ``alpha``."""
    parts = parts_from_run_dir(assets_dir)
    # alpha holds for the whole release: Bonferroni over its city x hours
    thresholds = dataclasses.replace(privacy.thresholds(), alpha=privacy.alpha / len(parts))
    models: dict[str, object] = {}
    audits: list[dict] = []
    for part in parts:
        if part.hour not in models:
            models[part.hour] = release_build.load_model(assets_dir / release_build.TRAINED / part.hour)
        model = models[part.hour]
        real = read_cube(assets_dir / PEAK_TRAFFIC / part.city / f"{part.hour}.nc")
        real = real.sel(service=model.services).transpose("time", "service", "y", "x")
        members = member_mask(real["time"].values, model.training_dates.get(part.city, []))
        generated = part.snapshots.sel(service=model.services).transpose("sample", "service", "y", "x")
        audit = audit_city_hour(part.city, part.hour, generated.values, real.values[members], real.values[~members],
                                model.normalisation.traffic_max, thresholds)
        audits.append({**audit.to_dict(), "model_hash": str(part.snapshots.attrs["model_hash"]), "seed": part.seed})
    return audits


def _audits(rows: list[dict]) -> list[PrivacyAudit]:
    return [PrivacyAudit.from_dict({k: v for k, v in r.items() if k not in ("model_hash", "seed")}) for r in rows]


def card_rows(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """(city, hour) -> the figures the dataset card shows."""
    return {(row["city"], row["hour"]): row for row in audit_table(_audits(rows))}


def audit_markdown(rows: list[dict]) -> str:
    """The per city x hour table as Markdown."""
    table = audit_table(_audits(rows))
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row.values()) + " |" for row in table]
    return "\n".join(lines)


def audit_of_part(rows: list[dict], city: str, hour: str, model_hash: str, seed: int) -> dict:
    """The card figures of one city x hour; an error unless the audit judged these very snapshots and
    did not block them."""
    found = [r for r in rows if (r["city"], r["hour"]) == (city, hour)]
    if not found or (found[0]["model_hash"], found[0]["seed"]) != (model_hash, seed):
        raise AppshotInputError(f"privacy_audit has no verdict on the current generated snapshots of {city} x {hour} "
                                f"(model {model_hash[:12]}, seed {seed}); materialise privacy_audit first")
    if found[0]["status"] == BLOCKED:
        raise AppshotInputError(f"privacy gate blocks {city} x {hour}: {'; '.join(found[0]['reasons'])}")
    return card_rows(found)[(city, hour)]


def build_privacy_assets(assets_dir: str | None = None) -> list[AssetsDefinition | AssetChecksDefinition]:
    """``privacy_audit`` (unpartitioned, reads the run folder ``assets_dir``, default ``<data_dir>/assets``)
    and its blocking check ``privacy_gate``."""

    @asset(group_name="release", kinds={"numpy"}, deps=["generated_snapshots", "peak_traffic", "trained_model"])
    def privacy_audit(context: AssetExecutionContext, settings: AppshotSettings, privacy: PrivacySettings) -> list:
        """Per generated city x peak hour: DCR ratio (generated vs held-out real days, distance to the closest
        training day) and the ROC-AUC of a membership-inference attack, with the gate's verdict."""
        rows = audit_run(Path(assets_dir) if assets_dir else Path(settings.data_dir) / "assets", privacy)
        context.add_output_metadata({"audit": MetadataValue.md(audit_markdown(rows)),
                                     "blocked": sum(r["status"] == BLOCKED for r in rows),
                                     "thresholds": MetadataValue.json(privacy.thresholds().__dict__)})
        return rows

    @asset_check(asset=privacy_audit, blocking=True,
                 description="Fails (and stops the release downstream) when any city x peak hour is blocked.")
    def privacy_gate(privacy_audit: list) -> AssetCheckResult:
        audits = _audits(privacy_audit)
        message = blocked_message(audits)
        return AssetCheckResult(passed=not message, severity=AssetCheckSeverity.ERROR,
                                description=message or f"{len(audits)} city x hour(s) pass or are unmeasured",
                                metadata={"blocked": MetadataValue.text(message or "none"),
                                          "audit": MetadataValue.md(audit_markdown(privacy_audit))})

    return [privacy_audit, privacy_gate]
