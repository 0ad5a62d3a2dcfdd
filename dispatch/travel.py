"""Travel times and distances between places, as the integer matrices the solver consumes.

Providers turn a list of (lat, lon) points into two square int32 matrices: durations in seconds
and distances in metres, row = from, column = to, zero diagonal. The default estimates roads
from great-circle distance, a detour factor and an average speed; the OSRM provider asks a
configured OSRM server's table service; the cache avoids recomputing the same day's matrix.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from dispatch.errors import DispatchError, ValidationError

log = logging.getLogger(__name__)

# geopy's great_circle uses the same mean Earth radius, so the two agree closely.
EARTH_RADIUS_M = 6_371_009.0
INT32_MAX = np.iinfo(np.int32).max

Point = tuple[float, float]
Matrices = tuple[NDArray[np.int32], NDArray[np.int32]]


class TravelError(DispatchError):
    """Travel times could not be obtained (e.g. the routing server is down or refuses)."""


class TravelProvider(Protocol):
    """Anything that gives travel matrices for a list of (lat, lon) points."""

    def matrices(self, points: Sequence[Point]) -> Matrices:
        """Return (durations in seconds, distances in metres), both int32 n x n."""
        ...


def validate_points(points: Sequence[Point]) -> NDArray[np.float64]:
    """Return the points as an (n, 2) float array; raise ValidationError naming a bad point."""
    if len(points) == 0:
        return np.zeros((0, 2))
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _not_pairs() from exc
    if array.ndim != 2 or array.shape[1] != 2:
        raise _not_pairs()
    bad_lat = ~(np.isfinite(array[:, 0]) & (np.abs(array[:, 0]) <= 90.0))
    bad_lon = ~(np.isfinite(array[:, 1]) & (np.abs(array[:, 1]) <= 180.0))
    if bad_lat.any():
        i = int(np.argmax(bad_lat))
        raise ValidationError(f"latitude {array[i, 0]} is outside -90..90",
                              f"纬度 {array[i, 0]} 超出 -90..90 范围", field="lat", row=i)
    if bad_lon.any():
        i = int(np.argmax(bad_lon))
        raise ValidationError(f"longitude {array[i, 1]} is outside -180..180",
                              f"经度 {array[i, 1]} 超出 -180..180 范围", field="lon", row=i)
    return array


def _not_pairs() -> ValidationError:
    return ValidationError("each point must be a (lat, lon) pair of numbers",
                           "每个点必须是（纬度，经度）数值对", field="points")


def great_circle_metres(origins: NDArray[np.float64],
                        destinations: NDArray[np.float64]) -> NDArray[np.float64]:
    """Great-circle distances in metres between every origin and every destination."""
    # Chord length between unit vectors from one matrix product, then the arc: the same value
    # as the haversine formula, with no trigonometry on the n x n matrix except one arcsin.
    dot = _unit_vectors(origins) @ _unit_vectors(destinations).T
    half_chord_sq = np.clip((1.0 - dot) * 0.5, 0.0, 1.0)
    return (2.0 * EARTH_RADIUS_M) * np.arcsin(np.sqrt(half_chord_sq))


def _unit_vectors(points: NDArray[np.float64]) -> NDArray[np.float64]:
    lat = np.radians(points[:, 0])
    lon = np.radians(points[:, 1])
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def _to_int32(values: NDArray[np.float64]) -> NDArray[np.int32]:
    return np.minimum(np.rint(values), INT32_MAX).astype(np.int32)


@dataclass(frozen=True)
class GreatCircleProvider:
    """Road estimates: great-circle distance x detour factor, driven at an average speed.

    ``min_seconds`` is a floor for any trip between two distinct places (parking, stairs).
    """

    speed_kmh: float = 25.0
    detour_factor: float = 1.35
    min_seconds: int = 0

    def __post_init__(self) -> None:
        if not (self.speed_kmh > 0 and math.isfinite(self.speed_kmh)):
            raise ValidationError(f"speed {self.speed_kmh} km/h must be positive",
                                  f"速度 {self.speed_kmh} km/h 必须为正数", field="speed_kmh")
        if not (self.detour_factor >= 1.0 and math.isfinite(self.detour_factor)):
            raise ValidationError(f"detour factor {self.detour_factor} must be at least 1",
                                  f"绕行系数 {self.detour_factor} 不能小于 1",
                                  field="detour_factor")
        if self.min_seconds < 0:
            raise ValidationError(f"minimum trip {self.min_seconds} s must not be negative",
                                  f"最短行程 {self.min_seconds} 秒不能为负", field="min_seconds")

    def matrices(self, points: Sequence[Point]) -> Matrices:
        """Return (durations in seconds, distances in metres) for all pairs of points."""
        array = validate_points(points)
        metres = great_circle_metres(array, array) * self.detour_factor
        np.fill_diagonal(metres, 0.0)  # rounding can leave centimetres between a point and itself
        return self.durations_for(metres), _to_int32(metres)

    def durations_for(self, metres: NDArray[np.float64]) -> NDArray[np.int32]:
        """Seconds to drive the given road distances; zero stays zero."""
        seconds = metres / (self.speed_kmh / 3.6)
        if self.min_seconds:
            seconds = np.where(metres > 0.0, np.maximum(seconds, self.min_seconds), 0.0)
        return _to_int32(seconds)


@dataclass
class OsrmReport:
    """What the last OSRM call did: requests sent, and pairs OSRM could not route."""

    requests: int = 0
    unreachable_pairs: int = 0


class OsrmProvider:
    """Travel matrices from an OSRM server's table service.

    Large tables are split into blocks of at most ``max_coordinates`` coordinates per request
    (OSRM's ``--max-table-size``, 100 by default). Pairs OSRM cannot route (null in its answer,
    e.g. a point on an island with no road) get the great-circle estimate times
    ``unreachable_penalty``; how many is logged and kept in ``last_report``.
    """

    def __init__(self, base_url: str, profile: str = "driving", timeout: float = 10.0,
                 max_coordinates: int = 100, unreachable_penalty: float = 3.0,
                 fallback: GreatCircleProvider | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError(f"OSRM URL {base_url!r} must start with http:// or https://",
                                  f"OSRM 地址 {base_url!r} 必须以 http:// 或 https:// 开头",
                                  field="osrm_url")
        if max_coordinates < 2:
            raise ValidationError("max_coordinates must be at least 2",
                                  "max_coordinates 至少为 2", field="max_coordinates")
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.timeout = timeout
        self.max_coordinates = max_coordinates
        self.unreachable_penalty = unreachable_penalty
        self.fallback = fallback or GreatCircleProvider()
        self.last_report = OsrmReport()

    def matrices(self, points: Sequence[Point]) -> Matrices:
        """Return (durations in seconds, distances in metres) for all pairs of points."""
        array = validate_points(points)
        n = len(array)
        durations = np.full((n, n), np.nan)
        distances = np.full((n, n), np.nan)
        report = OsrmReport()
        for sources in self.blocks(n):
            for targets in self.blocks(n):
                self.fill_block(array, sources, targets, durations, distances)
                report.requests += 1
        report.unreachable_pairs = self.patch_unreachable(array, durations, distances)
        self.last_report = report
        if report.unreachable_pairs:
            log.warning("OSRM could not route %d of %d pairs; estimated them instead",
                        report.unreachable_pairs, n * (n - 1))
        np.fill_diagonal(durations, 0.0)
        np.fill_diagonal(distances, 0.0)
        return _to_int32(durations), _to_int32(distances)

    def blocks(self, n: int) -> list[range]:
        """Index ranges of at most half the coordinate budget: a block pair fits one request."""
        size = max(1, self.max_coordinates // 2)
        return [range(start, min(start + size, n)) for start in range(0, n, size)]

    def fill_block(self, array: NDArray[np.float64], sources: range, targets: range,
                   durations: NDArray[np.float64], distances: NDArray[np.float64]) -> None:
        """Ask OSRM for one block of the table and copy it into the matrices."""
        same = sources == targets
        indices = list(sources) if same else list(sources) + list(targets)
        src_pos = range(len(sources))
        dst_pos = src_pos if same else range(len(sources), len(indices))
        answer = self.request(array[indices], src_pos, dst_pos)
        rows = slice(sources.start, sources.stop)
        cols = slice(targets.start, targets.stop)
        durations[rows, cols] = self.table(answer, "durations", len(sources), len(targets))
        distances[rows, cols] = self.table(answer, "distances", len(sources), len(targets))

    def request(self, coords: NDArray[np.float64], sources: range,
                destinations: range) -> dict[str, Any]:
        """Send one table request and return OSRM's JSON answer, or raise TravelError."""
        url = self.table_url(coords, sources, destinations)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise self.refused(exc.code, self.error_text(exc)) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TravelError(
                f"The OSRM server at {self.base_url} cannot be reached: {reason}",
                f"无法连接 OSRM 路径服务 {self.base_url}：{reason}",
            ) from exc
        except ValueError as exc:
            raise self.refused(200, f"answer is not JSON ({exc})") from exc
        if not isinstance(answer, dict) or answer.get("code") != "Ok":
            code = answer.get("code") if isinstance(answer, dict) else None
            message = answer.get("message", "") if isinstance(answer, dict) else ""
            raise self.refused(200, f"{code}: {message}")
        return answer

    def table_url(self, coords: NDArray[np.float64], sources: range,
                  destinations: range) -> str:
        """The table-service URL for these coordinates (OSRM wants lon,lat)."""
        path = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in coords)
        query = {"annotations": "duration,distance"}
        if sources != destinations or len(sources) != len(coords):
            query["sources"] = ";".join(map(str, sources))
            query["destinations"] = ";".join(map(str, destinations))
        profile = urllib.parse.quote(self.profile, safe="")
        encoded = urllib.parse.urlencode(query, safe=";,")
        return f"{self.base_url}/table/v1/{profile}/{path}?{encoded}"

    def refused(self, status: int, detail: str) -> TravelError:
        """The error for an answer that came back but was not a table."""
        return TravelError(
            f"The OSRM server at {self.base_url} refused the table request "
            f"(HTTP {status}, {detail})",
            f"OSRM 路径服务 {self.base_url} 拒绝了距离表请求（HTTP {status}，{detail}）",
        )

    @staticmethod
    def error_text(exc: urllib.error.HTTPError) -> str:
        """OSRM's own code and message from an error answer, when it sent JSON."""
        try:
            body = json.loads(exc.read().decode("utf-8"))
            return f"{body.get('code')}: {body.get('message', '')}"
        except (ValueError, AttributeError, OSError):
            return str(exc.reason)

    def table(self, answer: dict[str, Any], key: str, rows: int,
              cols: int) -> NDArray[np.float64]:
        """One annotation of the answer as floats, nulls as NaN; checks the shape."""
        raw = answer.get(key)
        if not isinstance(raw, list) or len(raw) != rows or any(
                not isinstance(r, list) or len(r) != cols for r in raw):
            raise self.refused(200, f"'{key}' is missing or not a {rows} x {cols} table")
        return np.array([[np.nan if v is None else float(v) for v in row] for row in raw])

    def patch_unreachable(self, array: NDArray[np.float64], durations: NDArray[np.float64],
                          distances: NDArray[np.float64]) -> int:
        """Replace unroutable pairs by a penalised estimate; return how many pairs there were."""
        missing = np.isnan(durations) | np.isnan(distances)
        np.fill_diagonal(missing, False)
        count = int(missing.sum())
        if count:
            rows, cols = np.nonzero(missing)
            metres = great_circle_metres(array, array)[rows, cols]
            metres *= self.fallback.detour_factor * self.unreachable_penalty
            distances[rows, cols] = metres
            durations[rows, cols] = self.fallback.durations_for(metres)
        return count


class CachedProvider:
    """Remembers the last ``maxsize`` matrices, keyed by the set of rounded points.

    The same places in another order are served from the cache too: the cached matrices are
    permuted to the order asked for.
    """

    def __init__(self, inner: TravelProvider, maxsize: int = 16, decimals: int = 5) -> None:
        if maxsize < 1:
            raise ValidationError("cache size must be at least 1", "缓存大小至少为 1",
                                  field="maxsize")
        self.inner = inner
        self.maxsize = maxsize
        self.decimals = decimals
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[Point, ...], Matrices] = OrderedDict()
        self._lock = threading.Lock()

    def matrices(self, points: Sequence[Point]) -> Matrices:
        """Return (durations in seconds, distances in metres), from the cache when possible."""
        array = validate_points(points)
        rounded = [(round(float(lat), self.decimals), round(float(lon), self.decimals))
                   for lat, lon in array]
        key = tuple(sorted(set(rounded)))
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if cached is None:
            cached = self.inner.matrices(list(key))
            with self._lock:
                self.misses += 1
                self._entries[key] = cached
                self._entries.move_to_end(key)
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        position = {point: i for i, point in enumerate(key)}
        order = np.array([position[p] for p in rounded], dtype=np.intp)
        durations, distances = cached
        return durations[np.ix_(order, order)], distances[np.ix_(order, order)]


@lru_cache(maxsize=64)
def provider_for(outlet_speed_kmh: float, detour_factor: float,
                 osrm_url: str | None = None) -> TravelProvider:
    """The cached provider for an outlet: OSRM when a server is configured, else great-circle.

    The same arguments give the same provider object, so its cache serves repeated solves.
    """
    estimate = GreatCircleProvider(speed_kmh=outlet_speed_kmh, detour_factor=detour_factor)
    inner: TravelProvider = estimate
    if osrm_url:
        inner = OsrmProvider(osrm_url, fallback=estimate)
    return CachedProvider(inner)
