"""Built-in model servers deployable by image name, each with default probes."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from berth.domain.spec import HttpGetAction, Probe, Probes
from berth.domain.validation import catalog_name


@dataclass(frozen=True)
class CatalogImage:
    name: str
    module: str
    description: str
    probes: Probes

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]


def _http_probe(path: str, period: float, failures: int) -> Probe:
    return Probe(http_get=HttpGetAction(path=path), period_seconds=period,
                 timeout_seconds=1, failure_threshold=failures)


CATALOG: dict[str, CatalogImage] = {
    "catalog/echo": CatalogImage(
        name="catalog/echo",
        module="berth.catalog.echo",
        description="Tiny HTTP model server that echoes its input (tests and benchmarks).",
        probes=Probes(
            startup=_http_probe("/healthz", 0.2, 100),
            readiness=_http_probe("/healthz", 1, 2),
            liveness=_http_probe("/healthz", 5, 3),
        ),
    ),
}


def catalog_entry(image: str) -> CatalogImage | None:
    """The built-in server `image` names: `catalog/echo`, also as `catalog/echo:latest` or
    with this Berth's version as its tag; None for any other image."""
    name = catalog_name(image)
    return CATALOG.get(name) if name is not None else None
