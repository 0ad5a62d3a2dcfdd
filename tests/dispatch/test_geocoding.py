"""Geocoding through a Nominatim server (a local fake here), its cache, and the importer's use."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.geocoding import (
    GeocodeCache,
    GeocodingError,
    NominatimGeocoder,
    geocoder_from_config,
    split_server_url,
)
from dispatch.importer import DataImportError, import_csv
from dispatch.loader import load_dataset

DAY = date(2025, 3, 10)
KNOWN = {"青岛市市南区香港中路10号": ("36.0652", "120.3862")}
HEADER = "customer_code,name,phone,address,lat,lon\n"


class FakeNominatim(BaseHTTPRequestHandler):
    """Answers /search like Nominatim: a list with one place for known addresses, else []."""

    queries: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        params = parse_qs(parts.query)
        if parts.path != "/search" or params.get("format") != ["json"]:
            self.send_error(404)
            return
        query = params["q"][0]
        type(self).queries.append(query)
        found = KNOWN.get(query)
        body = [] if found is None else [
            {"lat": found[0], "lon": found[1], "display_name": query, "place_id": 1}]
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""


@pytest.fixture
def nominatim() -> Iterator[tuple[str, list[str]]]:
    """A fake Nominatim on 127.0.0.1 (a free port), and the list of queries it received."""
    handler = type("Handler", (FakeNominatim,), {"queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.queries
    server.shutdown()
    server.server_close()
    thread.join()


def geocoder(url: str, cache: GeocodeCache | None = None) -> NominatimGeocoder:
    """A geocoder on ``url`` with no delay between requests (tests need no politeness)."""
    return NominatimGeocoder(url, min_delay_seconds=0, timeout=5, cache=cache)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_locate_returns_the_servers_coordinates(nominatim: tuple[str, list[str]]) -> None:
    """A known address comes back as (lat, lon) floats from /search?format=json."""
    url, queries = nominatim
    assert geocoder(url).locate("青岛市市南区香港中路10号") == (36.0652, 120.3862)
    assert queries == ["青岛市市南区香港中路10号"]


def test_unknown_address_is_none(nominatim: tuple[str, list[str]]) -> None:
    """An address the server does not find gives None, not an error."""
    url, _ = nominatim
    assert geocoder(url).locate("火星大道 1 号") is None


def test_cache_avoids_a_second_request(nominatim: tuple[str, list[str]]) -> None:
    """Asking twice for the same address (blanks aside) sends one request."""
    url, queries = nominatim
    coder = geocoder(url)
    coder.locate("青岛市市南区香港中路10号")
    assert coder.locate("  青岛市市南区香港中路10号 ") == (36.0652, 120.3862)
    assert len(queries) == 1 and coder.requests == 1


def test_cache_file_persists_between_geocoders(nominatim: tuple[str, list[str]],
                                               tmp_path: Path) -> None:
    """A new geocoder reading the same cache file asks the server nothing."""
    url, queries = nominatim
    path = tmp_path / "instance" / "geocode_cache.json"
    geocoder(url, GeocodeCache(path)).locate("青岛市市南区香港中路10号")
    again = geocoder(url, GeocodeCache(path))
    assert again.locate("青岛市市南区香港中路10号") == (36.0652, 120.3862)
    assert len(queries) == 1
    assert "香港中路" in path.read_text(encoding="utf-8")


def test_misses_are_not_cached(nominatim: tuple[str, list[str]]) -> None:
    """An address not found is asked again later (the server's data may have been fixed)."""
    url, queries = nominatim
    coder = geocoder(url)
    coder.locate("火星大道 1 号")
    coder.locate("火星大道 1 号")
    assert len(queries) == 2


def test_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    """A cache file that is not valid JSON starts an empty cache instead of failing."""
    path = tmp_path / "geocode_cache.json"
    path.write_text("{not json", encoding="utf-8")
    assert len(GeocodeCache(path)) == 0


def test_unreachable_server_raises_geocoding_error() -> None:
    """A server that does not answer is a GeocodingError in both languages, not 'not found'."""
    coder = geocoder(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(GeocodingError) as caught:
        coder.locate("青岛市市南区香港中路10号")
    assert "地理编码服务" in caught.value.message_zh and "geocoding" in caught.value.message_en


def test_server_url_is_split_for_geopy() -> None:
    """The base URL becomes geopy's scheme and domain (with port and path)."""
    assert split_server_url("http://127.0.0.1:8080/") == ("http", "127.0.0.1:8080")
    assert split_server_url("https://geo.example.cn/nominatim") == (
        "https", "geo.example.cn/nominatim")


def test_bad_server_url_names_the_setting() -> None:
    """A URL that is not http(s) is refused, naming NOMINATIM_URL."""
    with pytest.raises(ValidationError) as caught:
        split_server_url("127.0.0.1:8080")
    assert caught.value.field == "NOMINATIM_URL"


def test_no_url_configured_means_no_geocoder() -> None:
    """Without NOMINATIM_URL there is no geocoder."""
    assert geocoder_from_config({"INSTANCE_PATH": "/nonexistent"}) is None


def test_configuration_sets_delay_and_cache_file(tmp_path: Path) -> None:
    """The configured delay reaches the rate limiter; the cache lives in the instance folder."""
    coder = geocoder_from_config({"NOMINATIM_URL": "http://127.0.0.1:8080",
                                  "NOMINATIM_MIN_DELAY": "0.25", "INSTANCE_PATH": str(tmp_path)})
    assert coder is not None
    assert coder._geocode.min_delay_seconds == 0.25
    assert coder.cache.path == tmp_path / "geocode_cache.json"


def test_negative_delay_is_refused(tmp_path: Path) -> None:
    """A negative NOMINATIM_MIN_DELAY is a ValidationError naming it."""
    with pytest.raises(ValidationError) as caught:
        geocoder_from_config({"NOMINATIM_URL": "http://127.0.0.1:8080",
                              "NOMINATIM_MIN_DELAY": "-1", "INSTANCE_PATH": str(tmp_path)})
    assert caught.value.field == "NOMINATIM_MIN_DELAY"


# ---------------------------------------------------------------------------------------------
# With the importer
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def loaded(session: Session) -> Session:
    """The session with the tiny day loaded (without users: hashing is slow) and committed."""
    load_dataset(session, replace(fixtures.generate("tiny", DAY, 0), users=()))
    session.commit()
    return session


def customers_csv(tmp_path: Path, address: str) -> Path:
    """A customers file of one row with an address and no coordinates."""
    path = tmp_path / "customers.csv"
    path.write_text(HEADER + f"GEO-C1,王芳,13800000001,{address},,\n", encoding="utf-8")
    return path


def test_import_geocodes_a_row_without_coordinates(loaded: Session, tmp_path: Path,
                                                   nominatim: tuple[str, list[str]]) -> None:
    """A customer with an address and no lat/lon is stored at the geocoder's coordinates."""
    url, _ = nominatim
    report = import_csv(loaded, customers=customers_csv(tmp_path, "青岛市市南区香港中路10号"),
                        geocoder=geocoder(url))
    customer = loaded.scalars(select(m.Customer).where(m.Customer.code == "GEO-C1")).one()
    assert (customer.lat, customer.lon) == (36.0652, 120.3862)
    assert report.geocoded == 1


def test_import_without_geocoder_names_file_row_and_field(loaded: Session, tmp_path: Path) -> None:
    """With no geocoder configured, a row needing one is an error at its file, row and field."""
    with pytest.raises(DataImportError) as caught:
        import_csv(loaded, customers=customers_csv(tmp_path, "青岛市市南区香港中路10号"))
    (error,) = caught.value.errors
    assert (error.file, error.row, error.field) == ("customers.csv", 2, "address")
    assert "DISPATCH_NOMINATIM_URL" in error.message_en


def test_import_of_an_address_not_found_is_an_error(loaded: Session, tmp_path: Path,
                                                    nominatim: tuple[str, list[str]]) -> None:
    """An address the geocoder cannot find is an error at its row, and nothing is written."""
    url, _ = nominatim
    with pytest.raises(DataImportError) as caught:
        import_csv(loaded, customers=customers_csv(tmp_path, "火星大道 1 号"),
                   geocoder=geocoder(url))
    (error,) = caught.value.errors
    assert (error.row, error.field) == (2, "address")
    assert loaded.scalars(select(m.Customer).where(m.Customer.code == "GEO-C1")).first() is None


def test_import_stops_asking_a_dead_geocoder(loaded: Session, tmp_path: Path) -> None:
    """After one failure the importer reports the other rows without waiting on the server."""
    path = tmp_path / "customers.csv"
    path.write_text(HEADER + "G1,王芳,1,北京路1号,,\nG2,李强,2,北京路2号,,\n", encoding="utf-8")
    coder = geocoder(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DataImportError) as caught:
        import_csv(loaded, customers=path, geocoder=coder)
    assert [e.row for e in caught.value.errors] == [2, 3]
    assert coder.requests == 1
