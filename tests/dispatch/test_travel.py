"""Travel matrices: the great-circle estimate, the OSRM table client and the cache."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from geopy.distance import great_circle

from dispatch.errors import DispatchError, ValidationError
from dispatch.travel import (
    CachedProvider,
    GreatCircleProvider,
    OsrmProvider,
    TravelError,
    provider_for,
)

# A few Qingdao places: 香港中路, 台东, 李村, 黄岛长江路, 城阳.
QINGDAO = [(36.0660, 120.3950), (36.0870, 120.3560), (36.1560, 120.4250),
           (35.9650, 120.1950), (36.3070, 120.3960)]


def test_great_circle_matches_geopy() -> None:
    """With no detour, distances agree with geopy's great_circle within 0.5 %."""
    _, distances = GreatCircleProvider(detour_factor=1.0).matrices(QINGDAO)
    for i, a in enumerate(QINGDAO):
        for j, b in enumerate(QINGDAO):
            if i != j:
                expected = great_circle(a, b).meters
                assert distances[i, j] == pytest.approx(expected, rel=0.005)


def test_long_distance_matches_geopy() -> None:
    """A long pair (Qingdao to Beijing) is still within 0.5 % of geopy."""
    points = [(36.0660, 120.3950), (39.9042, 116.4074)]
    _, distances = GreatCircleProvider(detour_factor=1.0).matrices(points)
    assert distances[0, 1] == pytest.approx(great_circle(*points).meters, rel=0.005)


def test_matrices_are_symmetric_int32_with_zero_diagonal() -> None:
    """Both matrices are int32, symmetric, and zero from a place to itself."""
    durations, distances = GreatCircleProvider().matrices(QINGDAO)
    for matrix in (durations, distances):
        assert matrix.dtype == np.int32
        assert matrix.shape == (5, 5)
        assert (matrix == matrix.T).all()
        assert (np.diag(matrix) == 0).all()
        assert (matrix[~np.eye(5, dtype=bool)] > 0).all()


def test_detour_factor_scales_distance_and_time() -> None:
    """Doubling the detour factor doubles distances and durations."""
    d1, m1 = GreatCircleProvider(detour_factor=1.2).matrices(QINGDAO)
    d2, m2 = GreatCircleProvider(detour_factor=2.4).matrices(QINGDAO)
    np.testing.assert_allclose(m2, 2 * m1, atol=1)
    np.testing.assert_allclose(d2, 2 * d1, atol=1)


def test_speed_sets_duration() -> None:
    """Duration is road distance over speed: 30 km/h covers 500 m per minute."""
    durations, distances = GreatCircleProvider(speed_kmh=30.0).matrices(QINGDAO)
    np.testing.assert_allclose(durations, distances / (30 / 3.6), atol=1)
    slower, _ = GreatCircleProvider(speed_kmh=15.0).matrices(QINGDAO)
    np.testing.assert_allclose(slower, 2 * durations, atol=1)


def test_min_seconds_floors_short_trips_only() -> None:
    """A minimum trip time lifts short trips between distinct places, never the diagonal."""
    points = [(36.0660, 120.3950), (36.0661, 120.3950), (36.1560, 120.4250)]
    plain, _ = GreatCircleProvider().matrices(points)
    floored, _ = GreatCircleProvider(min_seconds=120).matrices(points)
    assert plain[0, 1] < 120
    assert floored[0, 1] == 120
    assert floored[0, 2] == plain[0, 2]
    assert (np.diag(floored) == 0).all()


def test_empty_point_list_gives_empty_matrices() -> None:
    """No points give two 0 x 0 matrices."""
    durations, distances = GreatCircleProvider().matrices([])
    assert durations.shape == distances.shape == (0, 0)


def test_bad_latitude_names_the_point() -> None:
    """A latitude outside -90..90 is a ValidationError naming the row and the field."""
    with pytest.raises(ValidationError) as info:
        GreatCircleProvider().matrices([(36.0, 120.0), (96.0, 120.0)])
    assert info.value.row == 1 and info.value.field == "lat"


def test_bad_provider_settings_are_rejected() -> None:
    """A zero speed or a detour factor below 1 is refused, naming the setting."""
    with pytest.raises(ValidationError, match="speed_kmh"):
        GreatCircleProvider(speed_kmh=0)
    with pytest.raises(ValidationError, match="detour_factor"):
        GreatCircleProvider(detour_factor=0.9)


# ----- OSRM ------------------------------------------------------------------------------------

class FakeOsrm:
    """A tiny OSRM table service: duration = 100 s x index gap, distance = 1 km x index gap.

    Points are recognised by their longitude's integer part (the test gives lon = index + 100).
    Any pair touching the point with index ``island`` is unroutable (null).
    """

    def __init__(self, island: int | None = None, answer: dict[str, Any] | None = None,
                 status: int = 200) -> None:
        self.island = island
        self.answer = answer
        self.status = status
        self.requests: list[int] = []

    def table(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        coords = path.split("/table/v1/driving/")[1].split(";")
        ids = [round(float(c.split(",")[0])) - 100 for c in coords]
        self.requests.append(len(ids))
        sources = [int(i) for i in query["sources"][0].split(";")] if "sources" in query \
            else range(len(ids))
        targets = [int(i) for i in query["destinations"][0].split(";")] if "destinations" in query \
            else range(len(ids))

        def cell(s: int, t: int, unit: int) -> int | None:
            a, b = ids[s], ids[t]
            if a != b and self.island in (a, b):
                return None
            return unit * abs(a - b)

        return {"code": "Ok",
                "durations": [[cell(s, t, 100) for t in targets] for s in sources],
                "distances": [[cell(s, t, 1000) for t in targets] for s in sources]}


@pytest.fixture
def osrm() -> Iterator[tuple[FakeOsrm, str]]:
    """A fake OSRM server on 127.0.0.1, on a free port, for the test's duration."""
    fake = FakeOsrm()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)  # urlparse would cut at ";"
            body = fake.answer if fake.answer is not None else fake.table(
                parsed.path, urllib.parse.parse_qs(parsed.query))
            data = json.dumps(body).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def line_points(n: int) -> list[tuple[float, float]]:
    """n points the fake server knows by index: lat 36, lon 100 + index."""
    return [(36.0, 100.0 + i) for i in range(n)]


def test_osrm_table_is_read_into_int_matrices(osrm: tuple[FakeOsrm, str]) -> None:
    """The server's durations and distances come back as int32 matrices, in one request."""
    fake, url = osrm
    provider = OsrmProvider(url)
    durations, distances = provider.matrices(line_points(4))
    expected = np.abs(np.subtract.outer(range(4), range(4)))
    np.testing.assert_array_equal(durations, 100 * expected)
    np.testing.assert_array_equal(distances, 1000 * expected)
    assert durations.dtype == distances.dtype == np.int32
    assert fake.requests == [4]
    assert provider.last_report.unreachable_pairs == 0


def test_osrm_null_pairs_fall_back_to_penalised_estimate(osrm: tuple[FakeOsrm, str]) -> None:
    """Unroutable pairs get the great-circle estimate times the penalty, and are counted."""
    fake, url = osrm
    fake.island = 2
    points = line_points(4)
    fallback = GreatCircleProvider(speed_kmh=30.0, detour_factor=1.3)
    provider = OsrmProvider(url, fallback=fallback, unreachable_penalty=3.0)
    durations, distances = provider.matrices(points)
    estimate_d, estimate_m = fallback.matrices(points)
    assert provider.last_report.unreachable_pairs == 6  # (2, x) and (x, 2) for x in 0, 1, 3
    assert distances[0, 2] == pytest.approx(3 * estimate_m[0, 2], abs=2)
    assert durations[2, 3] == pytest.approx(3 * estimate_d[2, 3], abs=2)
    assert durations[0, 1] == 100  # routable pairs keep OSRM's answer
    assert durations[2, 2] == 0


def test_osrm_large_tables_are_chunked(osrm: tuple[FakeOsrm, str]) -> None:
    """A table larger than max_coordinates is split into requests that each fit, same result."""
    fake, url = osrm
    provider = OsrmProvider(url, max_coordinates=4)
    durations, _ = provider.matrices(line_points(7))
    expected = 100 * np.abs(np.subtract.outer(range(7), range(7)))
    np.testing.assert_array_equal(durations, expected)
    assert max(fake.requests) <= 4
    assert provider.last_report.requests == len(fake.requests) == 16  # 4 blocks x 4 blocks


def test_osrm_server_down_raises_travel_error() -> None:
    """A server that does not answer gives a TravelError (a DispatchError) naming the URL."""
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OsrmProvider(f"http://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(TravelError) as info:
        provider.matrices(line_points(3))
    assert isinstance(info.value, DispatchError)
    assert f"127.0.0.1:{port}" in info.value.message("en")
    assert "OSRM" in info.value.message("zh")


def test_osrm_error_answer_raises_travel_error(osrm: tuple[FakeOsrm, str]) -> None:
    """An OSRM error answer (HTTP 400, code InvalidQuery) is reported with OSRM's code."""
    fake, url = osrm
    fake.answer = {"code": "InvalidQuery", "message": "Query string malformed"}
    fake.status = 400
    with pytest.raises(TravelError, match="InvalidQuery"):
        OsrmProvider(url).matrices(line_points(3))


def test_osrm_malformed_table_raises_travel_error(osrm: tuple[FakeOsrm, str]) -> None:
    """An answer whose table has the wrong shape is refused rather than misread."""
    fake, url = osrm
    fake.answer = {"code": "Ok", "durations": [[0]], "distances": [[0]]}
    with pytest.raises(TravelError, match="durations"):
        OsrmProvider(url).matrices(line_points(3))


def test_osrm_url_must_be_http() -> None:
    """A URL without http:// or https:// is rejected when the provider is made."""
    with pytest.raises(ValidationError, match="osrm_url"):
        OsrmProvider("localhost:5000")


# ----- cache -----------------------------------------------------------------------------------

class CountingProvider:
    """A provider that counts how often it is asked."""

    def __init__(self) -> None:
        self.inner = GreatCircleProvider()
        self.calls = 0

    def matrices(self, points: Any) -> Any:
        self.calls += 1
        return self.inner.matrices(points)


def test_cache_reuses_the_same_points() -> None:
    """Asking twice for the same points computes once and gives equal matrices."""
    counting = CountingProvider()
    cache = CachedProvider(counting)
    first = cache.matrices(QINGDAO)
    second = cache.matrices(QINGDAO)
    assert counting.calls == 1 and cache.hits == 1
    np.testing.assert_array_equal(first[0], second[0])


def test_cache_serves_another_order_permuted() -> None:
    """The same places in another order are a cache hit, with rows and columns permuted."""
    counting = CountingProvider()
    cache = CachedProvider(counting)
    durations, _ = cache.matrices(QINGDAO)
    order = [3, 0, 4, 1, 2]
    permuted, _ = cache.matrices([QINGDAO[i] for i in order])
    assert counting.calls == 1
    np.testing.assert_array_equal(permuted, durations[np.ix_(order, order)])


def test_cache_evicts_least_recently_used() -> None:
    """Beyond maxsize, the least recently used set of points is computed again."""
    counting = CountingProvider()
    cache = CachedProvider(counting, maxsize=2)
    a, b, c = QINGDAO[:2], QINGDAO[1:3], QINGDAO[2:4]
    cache.matrices(a)
    cache.matrices(b)
    cache.matrices(a)  # a is now the most recent
    cache.matrices(c)  # evicts b
    cache.matrices(a)
    assert counting.calls == 3
    cache.matrices(b)
    assert counting.calls == 4


def test_cached_matrices_cannot_be_corrupted_by_callers() -> None:
    """Changing a returned matrix does not change what the cache returns next time."""
    cache = CachedProvider(GreatCircleProvider())
    durations, _ = cache.matrices(QINGDAO)
    durations[0, 1] = -1
    again, _ = cache.matrices(QINGDAO)
    assert again[0, 1] > 0


def test_provider_for_without_osrm_is_a_shared_cached_estimate() -> None:
    """Without an OSRM URL the factory gives a cached great-circle provider, the same object
    for the same outlet settings."""
    provider = provider_for(27.0, 1.4)
    assert isinstance(provider, CachedProvider)
    assert isinstance(provider.inner, GreatCircleProvider)
    assert provider.inner.speed_kmh == 27.0 and provider.inner.detour_factor == 1.4
    assert provider_for(27.0, 1.4) is provider


def test_provider_for_with_osrm_url_uses_osrm(osrm: tuple[FakeOsrm, str]) -> None:
    """With an OSRM URL the factory asks that server, falling back with the outlet's settings."""
    fake, url = osrm
    provider = provider_for(25.0, 1.35, url)
    assert isinstance(provider, CachedProvider)
    assert isinstance(provider.inner, OsrmProvider)
    assert provider.inner.fallback.speed_kmh == 25.0
    durations, _ = provider.matrices(line_points(3))
    assert durations[0, 2] == 200 and fake.requests
