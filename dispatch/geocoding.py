"""Turning addresses into coordinates through a (self-hosted) Nominatim server.

The importer asks a ``Geocoder`` for rows that give an address but no coordinates. The one real
implementation talks to Nominatim through geopy, spaced out by geopy's ``RateLimiter`` and backed
by a ``GeocodeCache`` so an address is asked about once, ever: the cache is a small JSON file in
the instance folder (a table would need a migration for what is only a memo of a remote answer).

Configuration (``dispatch.config``): ``NOMINATIM_URL`` (e.g. ``http://127.0.0.1:8080``; unset
means "no geocoder"), ``NOMINATIM_USER_AGENT``, ``NOMINATIM_MIN_DELAY`` (seconds between
requests, default 1), ``NOMINATIM_TIMEOUT`` (seconds), ``NOMINATIM_COUNTRY_CODES`` (e.g. "cn")
and ``GEOCODE_CACHE`` (a file path; default ``<instance>/geocode_cache.json``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from dispatch import config as app_config
from dispatch.errors import DispatchError, ValidationError

DEFAULT_USER_AGENT = "dispatch-optimizer (after-sales field service)"
DEFAULT_MIN_DELAY_SECONDS = 1.0
DEFAULT_TIMEOUT_SECONDS = 10.0
CACHE_FILE_NAME = "geocode_cache.json"

Coordinates = tuple[float, float]


class GeocodingError(DispatchError):
    """The geocoding service failed (unreachable, timed out, or answered with an error)."""


class Geocoder(Protocol):
    """Anything that finds the coordinates of an address."""

    def locate(self, address: str) -> Coordinates | None:
        """Return (lat, lon) of ``address``, or None when it cannot be found.

        Raises ``GeocodingError`` when the service itself fails.
        """
        ...


def normalise_address(address: str) -> str:
    """Return the cache key of ``address``: surrounding and repeated blanks removed."""
    return " ".join(address.split())


class GeocodeCache:
    """Addresses already geocoded, in memory and, when ``path`` is given, in a JSON file.

    Only found addresses are kept: a miss may be fixed on the server later and must be asked again.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, Coordinates] = self._read() if self.path else {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, address: str) -> Coordinates | None:
        """Return the cached coordinates of ``address``, or None if it was never found."""
        return self._entries.get(normalise_address(address))

    def put(self, address: str, coordinates: Coordinates) -> None:
        """Remember the coordinates of ``address`` (and write the file, if there is one)."""
        self._entries[normalise_address(address)] = (float(coordinates[0]), float(coordinates[1]))
        if self.path is not None:
            self._write()

    def _read(self) -> dict[str, Coordinates]:
        assert self.path is not None
        if not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): (float(v[0]), float(v[1])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            # A damaged memo only costs a few extra requests; never block an import over it.
            return {}

    def _write(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: [lat, lon] for k, (lat, lon) in sorted(self._entries.items())}
        # Write then rename, so a crash never leaves half a file behind.
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".geocode-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, ensure_ascii=False, indent=1)
        os.replace(tmp, self.path)


class NominatimGeocoder:
    """A geocoder asking a Nominatim server through geopy, rate-limited and cached."""

    def __init__(
        self,
        url: str,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        min_delay_seconds: float = DEFAULT_MIN_DELAY_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        country_codes: str | None = None,
        cache: GeocodeCache | None = None,
    ) -> None:
        scheme, domain = split_server_url(url)
        self.url = url
        self.cache = cache if cache is not None else GeocodeCache()
        self.country_codes = country_codes or None
        self.requests = 0
        nominatim = Nominatim(domain=domain, scheme=scheme, user_agent=user_agent, timeout=timeout)
        # Errors must surface: geopy's default would turn a dead server into "address not found".
        self._geocode = RateLimiter(
            nominatim.geocode,
            min_delay_seconds=min_delay_seconds,
            max_retries=0,
            swallow_exceptions=False,
        )

    def locate(self, address: str) -> Coordinates | None:
        """Return (lat, lon) of ``address`` from the cache or the server; None if not found."""
        cached = self.cache.get(address)
        if cached is not None:
            return cached
        self.requests += 1
        try:
            found = self._geocode(normalise_address(address), exactly_one=True,
                                  country_codes=self.country_codes)
        except GeopyError as exc:
            raise GeocodingError(
                f"the geocoding service at {self.url} failed: {exc}",
                f"地理编码服务 {self.url} 出错：{exc}",
            ) from exc
        if found is None:
            return None
        coordinates = (float(found.latitude), float(found.longitude))
        self.cache.put(address, coordinates)
        return coordinates


def split_server_url(url: str) -> tuple[str, str]:
    """Return (scheme, domain-with-port-and-path) of a Nominatim base URL, as geopy wants them."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            f"{url!r} is not an http(s) URL such as http://127.0.0.1:8080",
            f"{url!r} 不是 http(s) 地址（例如 http://127.0.0.1:8080）",
            field="NOMINATIM_URL",
        )
    return parts.scheme, parts.netloc + parts.path.rstrip("/")


def geocoder_from_config(config: Mapping[str, Any] | None = None) -> NominatimGeocoder | None:
    """Return the configured geocoder, or None when ``NOMINATIM_URL`` is not set."""
    merged = app_config.load_config() if config is None else config
    url = merged.get("NOMINATIM_URL")
    if not url:
        return None
    cache_path = merged.get("GEOCODE_CACHE") or (
        Path(str(merged.get("INSTANCE_PATH") or app_config.instance_path())) / CACHE_FILE_NAME
    )
    return NominatimGeocoder(
        str(url),
        user_agent=str(merged.get("NOMINATIM_USER_AGENT") or DEFAULT_USER_AGENT),
        min_delay_seconds=_number(merged, "NOMINATIM_MIN_DELAY", DEFAULT_MIN_DELAY_SECONDS),
        timeout=_number(merged, "NOMINATIM_TIMEOUT", DEFAULT_TIMEOUT_SECONDS),
        country_codes=merged.get("NOMINATIM_COUNTRY_CODES") or None,
        cache=GeocodeCache(cache_path),
    )


def _number(merged: Mapping[str, Any], key: str, default: float) -> float:
    value = merged.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{value!r} is not a number", f"{value!r} 不是数字", field=key
        ) from exc
    if number < 0:
        raise ValidationError(f"{number} must not be negative", f"{number} 不能为负数", field=key)
    return number
