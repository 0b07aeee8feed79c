"""Loaders: generic files, the three known datasets (tiny fakes and the real mirror)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from setlist.data.loaders import file_format, load
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from setlist.data.sources import SOURCES, SourceConfig
from setlist.errors import ConfigError, ValidationError
from tests.data.conftest import write


def _load(path: Path, offline: SourceConfig, **kw: object) -> tuple[pl.DataFrame, object]:
    dataset, report = load(str(path), offline, **kw)  # type: ignore[arg-type]
    return dataset.interactions, report


def test_csv_with_quoting_and_loose_header(tmp_path: Path, offline: SourceConfig) -> None:
    path = write(
        tmp_path / "plays.csv",
        ' User ,ITEM,weight,timestamp,name\nu1,a1,3,2020-01-01T10:00:00Z,"Earth, Wind & Fire"\n'
        "u2,a2,1.5,1577872800,Björk\n",
    )
    dataset, report = load(str(path), offline)
    df = dataset.interactions
    assert df.schema == pl.Schema(INTERACTION_SCHEMA)
    assert df.rows() == [
        ("u1", "a1", 3.0, datetime(2020, 1, 1, 10, tzinfo=UTC)),
        ("u2", "a2", 1.5, datetime(2020, 1, 1, 10, tzinfo=UTC)),
    ]
    assert dataset.items.schema == pl.Schema(ITEM_SCHEMA)
    assert dict(dataset.items.select("item", "name").rows()) == {
        "a1": "Earth, Wind & Fire",
        "a2": "Björk",
    }
    assert dataset.name == "plays" and report.rows_read == 2


@pytest.mark.parametrize("suffix", [".tsv", ".txt"])
def test_tsv_by_extension_or_sniffed(tmp_path: Path, offline: SourceConfig, suffix: str) -> None:
    path = write(tmp_path / f"plays{suffix}", 'user\titem\nu1\t"quoted" name\n\nu2\tb\n')
    df, _ = _load(path, offline)
    assert df.select("user", "item").rows() == [("u1", '"quoted" name'), ("u2", "b")]
    assert df.get_column("weight").to_list() == [1.0, 1.0]


def test_parquet(tmp_path: Path, offline: SourceConfig) -> None:
    path = tmp_path / "plays.parquet"
    pl.DataFrame({"user": ["u"], "item": ["i"], "weight": [7]}).write_parquet(path)
    df, _ = _load(path, offline)
    assert df.row(0) == ("u", "i", 7.0, None)


def test_file_format_sniffing(tmp_path: Path) -> None:
    assert file_format(write(tmp_path / "a.dat", "user,item\n")) == "csv"
    assert file_format(write(tmp_path / "b.dat", "user\titem\n")) == "tsv"
    assert file_format(write(tmp_path / "c", b"PAR1....")) == "parquet"
    with pytest.raises(ValidationError, match="cannot tell the format"):
        file_format(write(tmp_path / "d.dat", "user item\n"))


def test_bad_value_names_its_line(tmp_path: Path, offline: SourceConfig) -> None:
    path = write(tmp_path / "plays.csv", "user,item,weight\nu1,a,1\nu2,b,many\n")
    with pytest.raises(ValidationError, match=r"plays.csv, line 3, column 'weight'.*'many'"):
        load(str(path), offline)


def test_undecodable_file_names_its_line(tmp_path: Path, offline: SourceConfig) -> None:
    path = write(tmp_path / "plays.csv", b"user,item\nu1,a\nu2,caf\xe9\n")
    with pytest.raises(ValidationError, match=r"plays.csv, line 3: not valid utf-8"):
        load(str(path), offline)


def test_nul_bytes_are_refused(tmp_path: Path, offline: SourceConfig) -> None:
    path = write(tmp_path / "plays.tsv", b"user\titem\nu1\ta\x00b\tc\n")
    with pytest.raises(ValidationError, match="line 2: NUL byte"):
        load(str(path), offline)


def test_missing_columns_are_named(tmp_path: Path, offline: SourceConfig) -> None:
    path = write(tmp_path / "plays.csv", "user,artist\nu1,a\n")
    with pytest.raises(ValidationError, match=r"missing required column\(s\) item; found: user"):
        load(str(path), offline)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("plays.tsv", "user\titem\nu1\ta\nu2\tb\textra\nu3\tc\n"),
        ("plays.csv", 'user,item\nu1,a\nu2,"b,c",extra\nu3,c\n'),
    ],
)
def test_ragged_lines_fail_or_quarantine(
    tmp_path: Path, offline: SourceConfig, name: str, text: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ValidationError, match=r"line 3, column '\(row\)': 3 fields where 2"):
        load(str(path), offline)
    dataset, report = load(str(path), offline, on_bad_rows="quarantine")
    assert dataset.interactions.get_column("user").to_list() == ["u1", "u3"]
    assert report.rows_quarantined == 1 and report.problems[0].line == 3
    assert report.quarantine_path is not None and report.quarantine_path.is_file()
    assert report.quarantine_path == offline.cache_dir / "quarantine" / "plays.quarantine.csv"


def test_unknown_source(offline: SourceConfig) -> None:
    with pytest.raises(ConfigError, match="not a known dataset"):
        load("no-such-thing", offline)


def test_synthetic_sources(offline: SourceConfig) -> None:
    dataset, report = load("synthetic:tiny", offline)
    assert dataset.name == "synthetic-tiny" and report.rows_accepted == dataset.interactions.height
    other, _ = load("synthetic:tiny:7", offline)
    assert not other.interactions.equals(dataset.interactions)
    with pytest.raises(ConfigError, match="not an integer"):
        load("synthetic:tiny:x", offline)
    with pytest.raises(ConfigError, match="known presets"):
        load("synthetic:huge", offline)


# ---------------------------------------------------------------- tiny fakes of the datasets


@pytest.fixture
def fake_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SourceConfig:
    """A mirror with tiny files in each dataset's format (HetRec's official sums lifted)."""
    monkeypatch.setitem(
        SOURCES, "hetrec-lastfm-2k", replace(SOURCES["hetrec-lastfm-2k"], sha256={})
    )
    root = tmp_path / "mirror"
    hetrec = root / "hetrec2011-lastfm-2k"
    crlf = "\r\n"
    write(hetrec / "user_artists.dat", crlf.join(["userID\tartistID\tweight", "2\t51\t13",
                                                   "2\t52\t7", "3\t51\t1", ""]))  # fmt: skip
    write(
        hetrec / "artists.dat",
        'id\tname\turl\tpictureURL\n51\t"Weird Al" Yankovic\thttp://x/51\t\n52\tBjörk\t\t\n',
    )
    write(hetrec / "tags.dat", "tagID\ttagValue\r\n1\tcafé rock\r\n2\tpop\r\n".encode("latin-1"))
    write(hetrec / "user_taggedartists.dat", crlf.join(["userID\tartistID\ttagID\tday\tmonth\tyear",
          "2\t51\t1\t1\t4\t2009", "3\t51\t1\t1\t4\t2009", "3\t52\t2\t1\t4\t2009", ""]))  # fmt: skip
    write(hetrec / "user_friends.dat", "userID\tfriendID\r\n2\t3\r\n")
    k360 = root / "lastfm-360k-sample"
    write(
        k360 / "usersha1-artmbid-artname-plays.tsv",
        "u1\t3bd73256-3905-4f3a-97e2-8b341527f805\tbetty blowtorch\t2137\n"
        'u1\t\t"lee ""scratch"" perry"\t97\n'
        "u2\t3bd73256-3905-4f3a-97e2-8b341527f805\tBetty Blowtorch\t5\n",
    )
    write(k360 / "usersha1-profile.tsv", "u1\tf\t22\tGermany\tFeb 1, 2007\n")
    k1 = root / "lastfm-1k-sample"
    write(
        k1 / "userid-timestamp-artid-artname-traid-traname.tsv",
        "user_000001\t2009-05-04T23:08:57Z\tf1b1cf71-bd35-4e99-8624-24a6e15f133a\tDeep Dish\t\tT1\n"
        'user_000001\t2009-05-04T13:54:10Z\t\tJohnny "Hammond" Smith\tab\tT2\n',
    )
    write(k1 / "userid-profile.tsv", "#id\tgender\tage\tcountry\tregistered\n")
    return SourceConfig(mirror=root, cache_dir=tmp_path / "cache", download=False)


def test_fake_hetrec(fake_mirror: SourceConfig) -> None:
    dataset, report = load("hetrec-lastfm-2k", fake_mirror)
    assert dataset.interactions.select("user", "item", "weight").rows() == [
        ("2", "51", 13.0), ("2", "52", 7.0), ("3", "51", 1.0),
    ]  # fmt: skip
    assert report.file.endswith("user_artists.dat") and report.rows_accepted == 3
    assert dataset.items.rows() == [("51", '"Weird Al" Yankovic', "http://x/51"),
                                    ("52", "Björk", None)]  # fmt: skip
    assert dataset.item_tags is not None
    assert dataset.item_tags.rows() == [("51", "café rock", 2), ("52", "pop", 1)]


def test_fake_hetrec_bad_row_names_line(fake_mirror: SourceConfig) -> None:
    assert fake_mirror.mirror is not None
    path = fake_mirror.mirror / "hetrec2011-lastfm-2k" / "user_artists.dat"
    write(path, "userID\tartistID\tweight\r\n2\t51\t13\r\n2\t52\t-7\r\n")
    with pytest.raises(ValidationError, match=r"user_artists.dat, line 3, column 'weight'"):
        load("hetrec-lastfm-2k", fake_mirror)


def test_fake_360k_ids_and_names(fake_mirror: SourceConfig) -> None:
    dataset, _ = load("lastfm-360k", fake_mirror)
    mbid = "3bd73256-3905-4f3a-97e2-8b341527f805"
    assert dataset.interactions.select("user", "item", "weight").rows() == [
        ("u1", mbid, 2137.0), ("u1", 'lee "scratch" perry', 97.0), ("u2", mbid, 5.0),
    ]  # fmt: skip
    items = {row[0]: row[1:] for row in dataset.items.rows()}
    assert items[mbid] == ("betty blowtorch", f"https://musicbrainz.org/artist/{mbid}")
    assert items['lee "scratch" perry'] == ('lee "scratch" perry', None)


def test_fake_360k_bad_row_line_is_the_row_number(fake_mirror: SourceConfig) -> None:
    assert fake_mirror.mirror is not None
    path = fake_mirror.mirror / "lastfm-360k-sample" / "usersha1-artmbid-artname-plays.tsv"
    write(path, "u1\tm\ta\t1\nu1\tm2\tb\t\nu2\tm\ta\t3\n")
    with pytest.raises(ValidationError, match=r"line 2, column 'weight': empty weight"):
        load("lastfm-360k", fake_mirror)


def test_fake_360k_ragged_line(fake_mirror: SourceConfig, tmp_path: Path) -> None:
    assert fake_mirror.mirror is not None
    path = fake_mirror.mirror / "lastfm-360k-sample" / "usersha1-artmbid-artname-plays.tsv"
    write(path, "u1\tm\ta\t1\nu1\tm2\tb\t2\textra\nu2\tm\ta\t3\n")
    with pytest.raises(ValidationError, match=r"line 2, column '\(row\)': 5 fields where 4"):
        load("lastfm-360k", fake_mirror)
    dataset, report = load(
        "lastfm-360k", fake_mirror, on_bad_rows="quarantine", quarantine_dir=tmp_path / "q"
    )
    assert dataset.interactions.get_column("weight").to_list() == [1.0, 3.0]
    assert report.quarantine_path == tmp_path / "q" / (
        "lastfm-360k.usersha1-artmbid-artname-plays.quarantine.csv"
    )


def test_fake_1k_events(fake_mirror: SourceConfig) -> None:
    dataset, _ = load("lastfm-1k", fake_mirror)
    df = dataset.interactions
    assert df.get_column("item").to_list() == [
        "f1b1cf71-bd35-4e99-8624-24a6e15f133a",
        'Johnny "Hammond" Smith',
    ]
    assert df.get_column("weight").to_list() == [1.0, 1.0]
    assert df.get_column("timestamp").to_list()[1] == datetime(2009, 5, 4, 13, 54, 10, tzinfo=UTC)
    assert dataset.has_timestamps


# ---------------------------------------------------------------- the real mirror


@pytest.fixture
def real(mirror: Path, tmp_path: Path) -> SourceConfig:
    return SourceConfig(mirror=mirror, cache_dir=tmp_path / "cache", download=False)


@pytest.mark.integration
def test_real_hetrec(real: SourceConfig) -> None:
    dataset, report = load("hetrec-lastfm-2k", real)
    df = dataset.interactions
    assert (df.height, df.get_column("user").n_unique(), df.get_column("item").n_unique()) == (
        92_834, 1_892, 17_632,
    )  # fmt: skip
    assert report.rows_quarantined == 0 and report.duplicate_rows == 0
    named = dataset.items.filter(pl.col("name").is_not_null()).get_column("item")
    assert df.get_column("item").is_in(named.implode()).all()
    assert dataset.items.filter(pl.col("item") == "1").get_column("name").item() == "MALICE MIZER"
    assert dataset.item_tags is not None
    assert dataset.item_tags.get_column("count").sum() > 180_000
    assert dataset.item_tags.get_column("tag").is_in(["español", "tropicália"]).sum() >= 2


@pytest.mark.integration
def test_real_360k_sample(real: SourceConfig) -> None:
    dataset, report = load("lastfm-360k", real)
    df = dataset.interactions
    assert df.height == report.rows_read == 10_000
    assert df.get_column("weight").min() >= 0  # type: ignore[operator]
    assert dataset.items.height == df.get_column("item").n_unique()
    assert not dataset.items.get_column("name").str.starts_with('"').any()


@pytest.mark.integration
def test_real_1k_sample(real: SourceConfig) -> None:
    dataset, report = load("lastfm-1k", real)
    assert dataset.interactions.height == report.rows_read == 5_000
    assert dataset.has_timestamps
    assert report.duplicate_rows >= 0 and dataset.items.get_column("name").null_count() == 0
