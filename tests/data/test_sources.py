"""Sources: mirror lookup, checksums, cache, and real downloads from a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from setlist.data import sources
from setlist.data.sources import SOURCES, SourceConfig, fetch, read_sha256sums
from setlist.errors import ChecksumError, ConfigError, DownloadError
from tests.data.conftest import Server, md5, sha256, write

PLAYS = "usersha1-artmbid-artname-plays.tsv"
PROFILE = "usersha1-profile.tsv"
PLAYS_TEXT = "u1\tmbid-1\tartist one\t12\nu2\t\tartist two\t3\n"
PROFILE_TEXT = "u1\tf\t22\tGermany\tFeb 1, 2007\n"


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _lastfm_members(folder: str = "lastfm-dataset-360K") -> dict[str, bytes]:
    return {
        f"{folder}/{PLAYS}": PLAYS_TEXT.encode(),
        f"{folder}/{PROFILE}": PROFILE_TEXT.encode(),
        f"{folder}/README.txt": b"readme\n",
    }


@pytest.fixture
def spec_360k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the 360K spec's published MD5s those of the tiny test files."""
    plays = write(tmp_path / "ref" / PLAYS, PLAYS_TEXT)
    profile = write(tmp_path / "ref" / PROFILE, PROFILE_TEXT)
    spec = replace(SOURCES["lastfm-360k"], md5={PLAYS: md5(plays), PROFILE: md5(profile)})
    monkeypatch.setitem(SOURCES, "lastfm-360k", spec)


def _online(tmp_path: Path) -> SourceConfig:
    return SourceConfig(mirror=None, cache_dir=tmp_path / "cache", download=True)


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_unknown_source_lists_known_ones(offline: SourceConfig) -> None:
    with pytest.raises(ConfigError) as info:
        fetch("nope", offline)
    for name in SOURCES:
        assert name in str(info.value)


def test_nothing_available_says_where_it_looked(tmp_path: Path) -> None:
    config = SourceConfig(mirror=tmp_path / "mirror", cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DownloadError) as info:
        fetch("lastfm-1k", config)
    message = str(info.value)
    assert "downloads are off" in message
    assert str(tmp_path / "mirror" / "lastfm-1k-sample") in message
    assert str(tmp_path / "cache" / "lastfm-1k") in message


def test_read_sha256sums_strips_dot_slash(tmp_path: Path) -> None:
    sums = write(tmp_path / "SHA256SUMS", f"{'a' * 64}  ./x/y.tsv\n{'B' * 64} *z.dat\n\n")
    assert read_sha256sums(sums) == {"x/y.tsv": "a" * 64, "z.dat": "b" * 64}
    assert read_sha256sums(tmp_path / "absent") == {}


def test_malformed_sha256sums_raises(tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match="line 1"):
        read_sha256sums(write(tmp_path / "SHA256SUMS", "not a checksum line\n"))


def _sample_mirror(root: Path, digest_of_plays: str | None = None) -> Path:
    folder = root / "lastfm-360k-sample"
    plays = write(folder / PLAYS, PLAYS_TEXT)
    profile = write(folder / PROFILE, PROFILE_TEXT)
    digest = digest_of_plays or sha256(plays)
    lines = [
        f"{digest}  ./lastfm-360k-sample/{PLAYS}",
        f"{sha256(profile)}  ./{profile.parent.name}/{PROFILE}",
    ]
    write(root / "SHA256SUMS", "\n".join(lines) + "\n")
    return folder


def test_mirror_sample_verified_by_mirror_sums(tmp_path: Path) -> None:
    folder = _sample_mirror(tmp_path / "mirror")
    config = SourceConfig(mirror=tmp_path / "mirror", cache_dir=tmp_path / "cache")
    assert fetch("lastfm-360k", config) == folder


def test_mirror_checksum_mismatch_names_file_and_both_hashes(tmp_path: Path) -> None:
    _sample_mirror(tmp_path / "mirror", digest_of_plays="0" * 64)
    config = SourceConfig(mirror=tmp_path / "mirror", cache_dir=tmp_path / "cache")
    with pytest.raises(ChecksumError) as info:
        fetch("lastfm-360k", config)
    message = str(info.value)
    assert PLAYS in message and "0" * 64 in message
    assert sha256(tmp_path / "mirror" / "lastfm-360k-sample" / PLAYS) in message
    assert info.value.details["expected"] == "0" * 64


def test_complete_mirror_copy_checked_against_official_sha256(tmp_path: Path) -> None:
    folder = tmp_path / "mirror" / "hetrec2011-lastfm-2k"
    for name in SOURCES["hetrec-lastfm-2k"].files:
        write(folder / name, "not the real file\n")
    config = SourceConfig(mirror=tmp_path / "mirror", cache_dir=tmp_path / "cache")
    with pytest.raises(ChecksumError, match="artists.dat: sha256 mismatch"):
        fetch("hetrec-lastfm-2k", config)


def test_download_tar_gz_extracts_verifies_and_caches(
    tmp_path: Path, http_server: Server, spec_360k: None
) -> None:
    _tar_gz(http_server.root / "360k.tar.gz", _lastfm_members())
    seen: list[tuple[int, int | None]] = []
    config = _online(tmp_path)
    folder = fetch(
        "lastfm-360k", config, lambda done, total: seen.append((done, total)),
        url=http_server("360k.tar.gz"),
    )  # fmt: skip
    assert folder == tmp_path / "cache" / "lastfm-360k"
    assert (folder / PLAYS).read_text() == PLAYS_TEXT
    assert seen and seen[-1][0] == seen[-1][1] == (http_server.root / "360k.tar.gz").stat().st_size
    assert _leftovers(tmp_path / "cache") == ["lastfm-360k"]
    # The second fetch is served from the cache: no new request.
    assert fetch("lastfm-360k", replace(config, download=False)) == folder
    assert len(http_server.requests) == 1


def test_download_zip_with_files_at_root(
    tmp_path: Path, http_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {name: f"{name}\n".encode() for name in SOURCES["hetrec-lastfm-2k"].files}
    archive = _zip(http_server.root / "hetrec.zip", members)
    with zipfile.ZipFile(archive) as zf:
        digests = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in members}
    monkeypatch.setitem(
        SOURCES, "hetrec-lastfm-2k", replace(SOURCES["hetrec-lastfm-2k"], sha256=digests)
    )
    folder = fetch("hetrec-lastfm-2k", _online(tmp_path), url=http_server("hetrec.zip"))
    assert (folder / "tags.dat").read_text() == "tags.dat\n"


def test_downloaded_checksum_mismatch_leaves_nothing(tmp_path: Path, http_server: Server) -> None:
    members = {name: b"fake\n" for name in SOURCES["hetrec-lastfm-2k"].files}
    _zip(http_server.root / "hetrec.zip", members)
    with pytest.raises(ChecksumError) as info:
        fetch("hetrec-lastfm-2k", _online(tmp_path), url=http_server("hetrec.zip"))
    assert SOURCES["hetrec-lastfm-2k"].sha256["artists.dat"] in str(info.value)
    assert _leftovers(tmp_path / "cache") == []


def test_truncated_archive_is_refused(tmp_path: Path, http_server: Server, spec_360k: None) -> None:
    whole = _tar_gz(tmp_path / "whole.tar.gz", _lastfm_members()).read_bytes()
    write(http_server.root / "cut.tar.gz", whole[: len(whole) // 2])
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        fetch("lastfm-360k", _online(tmp_path), url=http_server("cut.tar.gz"))
    assert _leftovers(tmp_path / "cache") == []


def test_connection_closed_early_is_refused(
    tmp_path: Path, http_server: Server, spec_360k: None
) -> None:
    whole = _tar_gz(http_server.root / "short.tar.gz", _lastfm_members())
    http_server.lies["short.tar.gz"] = whole.stat().st_size + 1000
    with pytest.raises(DownloadError):
        fetch("lastfm-360k", _online(tmp_path), url=http_server("short.tar.gz"))
    assert _leftovers(tmp_path / "cache") == []


def test_http_error_status(tmp_path: Path, http_server: Server) -> None:
    with pytest.raises(DownloadError, match="HTTP status 404"):
        fetch("lastfm-1k", _online(tmp_path), url=http_server("missing.tar.gz"))


def test_archive_missing_expected_files(
    tmp_path: Path, http_server: Server, spec_360k: None
) -> None:
    _tar_gz(http_server.root / "other.tar.gz", {"folder/unrelated.txt": b"x"})
    with pytest.raises(DownloadError, match="lacks expected files"):
        fetch("lastfm-360k", _online(tmp_path), url=http_server("other.tar.gz"))


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_path_traversal_refused(tmp_path: Path, member: str) -> None:
    archive = _tar_gz(tmp_path / "evil.tar.gz", {member: b"x"})
    with pytest.raises(DownloadError, match="unsafe path"):
        sources.extract(archive, tmp_path / "out" / "inner")
    zipped = _zip(tmp_path / "evil.zip", {member: b"x"})
    with pytest.raises(DownloadError, match="unsafe path"):
        sources.extract(zipped, tmp_path / "out2" / "inner")
    assert not list(tmp_path.rglob("evil.txt"))


def test_symlink_in_tar_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DownloadError, match="link"):
        sources.extract(archive, tmp_path / "out")


def test_download_helper_is_atomic(tmp_path: Path, http_server: Server) -> None:
    write(http_server.root / "blob.bin", b"x" * 5000)
    http_server.lies["blob.bin"] = 9000
    dest = tmp_path / "dl" / "blob.bin"
    with pytest.raises(DownloadError):
        sources.download(http_server("blob.bin"), dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    del http_server.lies["blob.bin"]
    sources.download(http_server("blob.bin"), dest)
    assert dest.read_bytes() == b"x" * 5000


@pytest.mark.integration
def test_real_mirror_hetrec_verified(mirror: Path, tmp_path: Path) -> None:
    folder = fetch("hetrec-lastfm-2k", SourceConfig(mirror, tmp_path / "cache", download=False))
    assert folder == mirror / "hetrec2011-lastfm-2k"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "folder"), [("lastfm-360k", "lastfm-360k-sample"), ("lastfm-1k", "lastfm-1k-sample")]
)
def test_real_mirror_samples_verified(mirror: Path, tmp_path: Path, name: str, folder: str) -> None:
    config = SourceConfig(mirror, tmp_path / "cache", download=False)
    assert fetch(name, config) == mirror / folder
