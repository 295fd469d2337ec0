"""Names from the AppShot paper: services, contextual attributes, peak hours.

AppShot (Xu et al., IEEE TNSM 2022), section III and Table I.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from appshot_model.core.errors import AppshotInputError

#: The ten services of the AppShot dataset (section III), in the order used as model channels.
SERVICES: tuple[str, ...] = (
    "youtube",
    "instagram",
    "snapchat",
    "whatsapp",
    "netflix",
    "apple_store",
    "itunes",
    "facebook",
    "twitter",
    "google_play",
)

#: Population, 12 land-use classes and 14 point-of-interest categories (Table I), 27 in all.
POPULATION_ATTRIBUTES: tuple[str, ...] = ("population",)
LANDUSE_ATTRIBUTES: tuple[str, ...] = (
    "landuse_continuous_urban",
    "landuse_high_dense_urban",
    "landuse_medium_dense_urban",
    "landuse_low_dense_urban",
    "landuse_very_low_dense_urban",
    "landuse_isolated_structures",
    "landuse_green_urban",
    "landuse_industrial_commercial",
    "landuse_air_sea_ports",
    "landuse_leisure_facilities",
    "landuse_barren_lands",
    "landuse_sea",
)
POI_ATTRIBUTES: tuple[str, ...] = (
    "poi_tourism",
    "poi_cafe",
    "poi_parking",
    "poi_restaurant",
    "poi_post_police",
    "poi_traffic_signals",
    "poi_office",
    "poi_public_transport",
    "poi_shop",
    "poi_primary_roads",
    "poi_secondary_roads",
    "poi_motorways",
    "poi_railway_stations",
    "poi_tram_stops",
)
ATTRIBUTES: tuple[str, ...] = POPULATION_ATTRIBUTES + LANDUSE_ATTRIBUTES + POI_ATTRIBUTES

#: Road categories are lengths per cell (metres), not counts.
ROAD_ATTRIBUTES: tuple[str, ...] = ("poi_primary_roads", "poi_secondary_roads", "poi_motorways")

#: Average |Spearman| the paper reports per attribute (Table I), for reference in reports.
PAPER_AVERAGE_SCC: dict[str, float] = dict(
    zip(
        ATTRIBUTES,
        (
            0.639, 0.220, 0.180, 0.128, 0.254, 0.102, 0.051, 0.325, 0.252, 0.321, 0.322, 0.067,
            0.072, 0.135, 0.002, 0.2110, 0.1797, 0.118, 0.430, 0.343, 0.080, -0.018, -0.074,
            -0.009, 0.254, 0.371, 0.158,
        ),
        strict=True,
    )
)

#: Weekday peak hours (section IV): name -> hour of day at which the one-hour window starts.
PEAK_HOURS: dict[str, int] = {"morning": 8, "midday": 12, "evening": 17}


def check_names(given: Iterable[str], known: Sequence[str], what: str, where: str = "") -> list[str]:
    """Return ``given`` as a list, or raise naming every unknown entry and the accepted ones."""
    given = list(given)
    unknown = [name for name in given if name not in known]
    if unknown:
        place = f" in {where}" if where else ""
        raise AppshotInputError(
            f"unknown {what} {unknown}{place}; expected names from: {', '.join(known)}"
        )
    duplicated = sorted({name for name in given if given.count(name) > 1})
    if duplicated:
        raise AppshotInputError(f"duplicated {what} {duplicated}" + (f" in {where}" if where else ""))
    return given


def peak_hour(name: str) -> int:
    """Hour of day (0-23) that starts the named peak window."""
    if name not in PEAK_HOURS:
        raise AppshotInputError(f"unknown peak hour {name!r}; expected one of {sorted(PEAK_HOURS)}")
    return PEAK_HOURS[name]
