"""Known datasets and how to obtain them: local mirror first, then the cache, then a download.

Whatever the origin, a folder is only handed out after every file with a known checksum has
been verified: the official SHA-256 (HetRec) or published MD5 (Last.fm READMEs) for complete
copies, and, for mirror folders, the mirror's own ``SHA256SUMS`` (that is what vouches for the
sample folders, whose files are not the official ones). Downloads stream into a temporary file
and are extracted into a temporary folder that is renamed into place only once verified, so an
interrupted or corrupt download never looks complete.

The Million Playlist Dataset (``spotify-mpd``) has no public download (AIcrowd hands it out
after registration): it is a folder of ``mpd.slice.<a>-<b>.json`` files found in the mirror
(the complete ``spotify-mpd/`` or the ``spotify-mpd-subset/`` sample) or in the cache folder,
every slice listed in the mirror's ``SHA256SUMS`` verified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import httpx

from setlist.config import Settings
from setlist.errors import ChecksumError, ConfigError, DownloadError

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called with (bytes received, total bytes or None) while a download streams."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceConfig:
    """Where datasets come from: an optional mirror folder, the cache, and whether to download.

    ``datasets_dir`` is where read datasets are stored as Parquet (the MPD's tables); by
    default ``datasets/`` beside the cache folder, which is ``<home>/datasets``.
    """

    mirror: Path | None
    cache_dir: Path
    download: bool = True
    datasets_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceConfig:
        return cls(
            settings.data_mirror, settings.cache_dir, settings.download, settings.datasets_dir
        )

    @property
    def store_dir(self) -> Path:
        return self.datasets_dir or self.cache_dir.parent / "datasets"


@dataclass(frozen=True)
class SourceSpec:
    """One known dataset: its official archive, its files and its mirror folder names.

    ``mirror_dirs`` hold complete copies (official checksums apply); ``sample_dirs`` hold a
    sample in the original format, verified only by the mirror's ``SHA256SUMS``. A ``slices``
    source is a folder of MPD slice files rather than fixed ``files``; one without ``url`` has
    no public download and ``obtain`` says how to get it.
    """

    name: str
    url: str
    files: tuple[str, ...]
    mirror_dirs: tuple[str, ...]
    sample_dirs: tuple[str, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict)
    md5: Mapping[str, str] = field(default_factory=dict)
    slices: bool = False
    obtain: str = ""


MPD_OBTAIN = (
    "the Million Playlist Dataset has no public download: register at AIcrowd "
    "(https://www.aicrowd.com/challenges/spotify-million-playlist-dataset-challenge), unzip "
    "spotify_million_playlist_dataset.zip and set SETLIST_DATA_MIRROR to a folder holding it "
    "as spotify-mpd/ (its mpd.slice.*.json files directly or in data/), or unzip it into the "
    "cache folder; any folder of slices can also be read by path"
)

SOURCES: dict[str, SourceSpec] = {
    "hetrec-lastfm-2k": SourceSpec(
        name="hetrec-lastfm-2k",
        url="https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
        files=(
            "artists.dat",
            "tags.dat",
            "user_artists.dat",
            "user_friends.dat",
            "user_taggedartists.dat",
        ),
        mirror_dirs=("hetrec2011-lastfm-2k",),
        sha256={
            "artists.dat": "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648",
            "tags.dat": "e95175f259be4c0c47644ae23d66131cd6d5767142a1405000e79f5584691d70",
            "user_artists.dat": "001400dc3c7d2667fca6e4ea6dc6acc31a9dd28ad5cd0f74cea988c019934d3b",
            "user_friends.dat": "9a3a8f7fa5f5ec832335e5b58ed69a4cf27c6f6f6afcde62134810eea46445a7",
            "user_taggedartists.dat": (
                "d31fe938fcfeed6f0059f37a36b156f63674d073fc2553e5cc9dc1595e365bc7"
            ),
        },
    ),
    "lastfm-360k": SourceSpec(
        name="lastfm-360k",
        url="http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-360K.tar.gz",
        files=("usersha1-artmbid-artname-plays.tsv", "usersha1-profile.tsv"),
        mirror_dirs=("lastfm-dataset-360K",),
        sample_dirs=("lastfm-360k-sample",),
        # Published in the archive's README.txt (version 1.2).
        md5={
            "usersha1-artmbid-artname-plays.tsv": "be672526eb7c69495c27ad27803148f1",
            "usersha1-profile.tsv": "51159d4edf6a92cb96f87768aa2be678",
        },
    ),
    "lastfm-1k": SourceSpec(
        name="lastfm-1k",
        url="http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz",
        files=("userid-timestamp-artid-artname-traid-traname.tsv", "userid-profile.tsv"),
        mirror_dirs=("lastfm-dataset-1K",),
        sample_dirs=("lastfm-1k-sample",),
        # Published in the archive's Readme.txt (version 1.0).
        md5={
            "userid-timestamp-artid-artname-traid-traname.tsv": "64747b21563e3d2aa95751e0ddc46b68",
            "userid-profile.tsv": "c53608b6b445db201098c1489ea497df",
        },
    ),
    "spotify-mpd": SourceSpec(
        name="spotify-mpd",
        url="",
        files=(),
        mirror_dirs=("spotify-mpd", "spotify_million_playlist_dataset"),
        sample_dirs=("spotify-mpd-subset",),
        slices=True,
        obtain=MPD_OBTAIN,
    ),
}


def spec_for(name: str) -> SourceSpec:
    """The spec of a known source; unknown names list the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise ConfigError(f"unknown data source {name!r}; known sources: {known}") from None


def fetch(
    name: str, config: SourceConfig, progress: Progress | None = None, *, url: str | None = None
) -> Path:
    """A verified folder holding the dataset's files: mirror, else cache, else a download.

    ``url`` replaces the official archive address (another mirror, or a test server).
    """
    spec = spec_for(name)
    looked: list[str] = []
    if config.mirror is not None:
        found = _from_mirror(spec, config.mirror, looked)
        if found is not None:
            return found
    cached = config.cache_dir / spec.name
    looked.append(str(cached))
    if _complete(spec, cached):
        _verify_official(spec, cached)
        log.info("%s: using cached copy %s", name, cached)
        return cached
    if not spec.url:
        setting = (
            "SETLIST_DATA_MIRROR is not set"
            if config.mirror is None
            else f"SETLIST_DATA_MIRROR={config.mirror}"
        )
        raise DownloadError(
            f"dataset {name!r} is not available ({setting}): {spec.obtain}; looked in: "
            + "; ".join(looked),
            source=name,
            looked=looked,
        )
    if not config.download:
        raise DownloadError(
            f"dataset {name!r} is not available and downloads are off; looked in: "
            + "; ".join(looked),
            source=name,
            looked=looked,
        )
    return _download_into_cache(spec, cached, url or spec.url, progress)


def _from_mirror(spec: SourceSpec, mirror: Path, looked: list[str]) -> Path | None:
    sums = read_sha256sums(mirror / "SHA256SUMS")
    for dirname in spec.mirror_dirs + spec.sample_dirs:
        folder = mirror / dirname
        looked.append(str(folder))
        if not _complete(spec, folder):
            continue
        for file in _listed_files(spec, folder):
            expected = sums.get(f"{dirname}/{file}")
            if expected is not None:
                verify_file(folder / file, expected, "sha256", origin=str(mirror / "SHA256SUMS"))
        if dirname in spec.mirror_dirs:
            _verify_official(spec, folder)
        log.info("%s: using mirror folder %s", spec.name, folder)
        return folder
    return None


def _complete(spec: SourceSpec, folder: Path) -> bool:
    """The folder holds the source: its files, or (slices) at least one MPD slice file."""
    if spec.slices:
        from setlist.data.playlists import has_slices

        return has_slices(folder)
    return _has_files(folder, spec.files)


def _listed_files(spec: SourceSpec, folder: Path) -> list[str]:
    """The files to verify, relative to the folder: the spec's, or every slice file."""
    if not spec.slices:
        return list(spec.files)
    from setlist.data.playlists import slice_files

    return [str(p.relative_to(folder)) for p in slice_files(folder)[0]]


def _has_files(folder: Path, files: tuple[str, ...]) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in files)


def read_sha256sums(path: Path) -> dict[str, str]:
    """``sha256sum`` output as {relative path: hex digest}; paths lose any leading ``./``."""
    if not path.is_file():
        return {}
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, rest = line.partition(" ")
        if not sep or len(digest) != 64:
            raise ChecksumError(f"{path}, line {number}: not a sha256sum line: {line!r}")
        rel = rest.lstrip(" *")
        while rel.startswith("./"):
            rel = rel[2:]
        sums[rel] = digest.lower()
    return sums


def _verify_official(spec: SourceSpec, folder: Path) -> None:
    for file, digest in spec.sha256.items():
        verify_file(folder / file, digest, "sha256", origin=f"official {spec.name} checksums")
    for file, digest in spec.md5.items():
        verify_file(folder / file, digest, "md5", origin=f"{spec.name} README")


_verified: dict[tuple[str, int, int, str], str] = {}


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, memoised per (path, size, mtime) so repeated loads hash once."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, algorithm)
    if key not in _verified:
        hasher = hashlib.new(algorithm)
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        _verified[key] = hasher.hexdigest()
    return _verified[key]


def verify_file(path: Path, expected: str, algorithm: str = "sha256", *, origin: str = "") -> None:
    """Raise ChecksumError naming the file, the expected and the actual digest on a mismatch."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        where = f" (expected value from {origin})" if origin else ""
        raise ChecksumError(
            f"{path}: {algorithm} mismatch: expected {expected.lower()}, got {actual}{where}",
            file=str(path),
            expected=expected.lower(),
            actual=actual,
        )


def _download_into_cache(
    spec: SourceSpec, target: Path, url: str, progress: Progress | None
) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".zip" if url.lower().endswith(".zip") else ".tar.gz"
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=target.parent) as tmp:
        archive = Path(tmp) / f"archive{suffix}"
        download(url, archive, progress)
        staging = Path(tmp) / "extracted"
        extract(archive, staging)
        archive.unlink()
        folder = _dataset_folder(staging, spec)
        _verify_official(spec, folder)
        if target.exists():  # an incomplete earlier copy: replaced, never merged
            shutil.rmtree(target)
        os.replace(folder, target)
    log.info("%s: downloaded from %s into %s", spec.name, url, target)
    return target


def download(url: str, dest: Path, progress: Progress | None = None) -> None:
    """Stream ``url`` into ``dest`` atomically: a temp file renamed only when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, part_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    part = Path(part_name)
    try:
        with os.fdopen(fd, "wb") as out:
            received, expected = _stream(url, out, progress)
        if expected is not None and received != expected:
            raise DownloadError(
                f"{url}: download truncated: received {received} of {expected} bytes", url=url
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _stream(url: str, out: IO[bytes], progress: Progress | None) -> tuple[int, int | None]:
    try:
        timeout = httpx.Timeout(30.0, read=120.0)
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url}: HTTP status {response.status_code}", url=url)
            length = response.headers.get("content-length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            # Raw bytes: the archive exactly as served, whatever Content-Encoding claims.
            for chunk in response.iter_raw(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, expected)
            return received, expected
    except httpx.HTTPError as exc:
        raise DownloadError(f"{url}: download failed: {exc}", url=url) from exc


def extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar(.gz) archive, refusing links and paths that leave ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        else:
            _extract_tar(archive, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DownloadError(
            f"{archive.name}: archive is truncated or corrupt: {exc}", archive=str(archive)
        ) from exc


def _safe_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(
            f"{archive.name}: unsafe path in archive: {name!r}", archive=str(archive), member=name
        )


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _safe_member(info.filename, archive)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise DownloadError(
                    f"{archive.name}: symbolic link in archive: {info.filename!r}",
                    archive=str(archive),
                )
        bad = zf.testzip()
        if bad is not None:
            raise DownloadError(f"{archive.name}: CRC error in {bad!r}", archive=str(archive))
        zf.extractall(dest)  # nosec B202  (every member's path and kind checked above)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member in tf.getmembers():
            _safe_member(member.name, archive)
            if not (member.isfile() or member.isdir()):
                raise DownloadError(
                    f"{archive.name}: link or special file in archive: {member.name!r}",
                    archive=str(archive),
                )
        tf.extractall(dest, filter="data")


def _dataset_folder(staging: Path, spec: SourceSpec) -> Path:
    """The extracted folder that holds the dataset's files (archive root or its one folder)."""
    first = spec.files[0]
    candidates = sorted(p.parent for p in staging.rglob(first) if p.is_file())
    for folder in candidates:
        if _has_files(folder, spec.files):
            return folder
    missing = [f for f in spec.files if not any(staging.rglob(f))]
    raise DownloadError(
        f"{spec.name}: archive lacks expected files: {', '.join(missing) or first}",
        source=spec.name,
    )
