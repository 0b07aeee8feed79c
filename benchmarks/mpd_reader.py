"""MPD reader throughput: full-size slices resampled from the real subset, streamed to Parquet.

    SETLIST_DATA_MIRROR=../shared/data python -m benchmarks.mpd_reader [N_SLICES]

Prints slices/s, playlists/s, peak RSS and the projection for the whole MPD (1,000 slices).
Goal: >= 4 slices/s, whole MPD < 5 minutes.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

from setlist.data.playlists import build_store, read_playlists


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    mirror = Path(os.environ.get("SETLIST_DATA_MIRROR", "../shared/data"))
    subset = read_playlists(mirror / "spotify-mpd-subset")[0]
    by_pid = subset.playlist_tracks.partition_by("pid", as_dict=True)
    names = dict(zip(subset.playlists["pid"], subset.playlists["name"], strict=True))
    info = {r["track_uri"]: r for r in subset.tracks.iter_rows(named=True)}
    pools = [(names[k[0]], t["track_uri"].to_list()) for k, t in by_pid.items()]
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "slices"
        folder.mkdir()
        for s in range(n):
            playlists = []
            for i in range(1000):
                name, uris = rng.choice(pools)
                k = max(5, min(250, int(rng.expovariate(1 / 66))))
                tracks = [info[u] for u in rng.choices(uris, k=k)]
                tracks = [{k2: v for k2, v in t.items() if v is not None} for t in tracks]
                playlists.append({"pid": s * 1000 + i, "name": name, "num_followers": 1,
                                  "num_tracks": k, "tracks": tracks})  # fmt: skip
            data = orjson.dumps({"info": {}, "playlists": playlists})
            (folder / f"mpd.slice.{s * 1000}-{s * 1000 + 999}.json").write_bytes(data)
        start = time.perf_counter()
        report = build_store(folder, Path(tmp) / "store")
        elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = n / elapsed
    print(f"slices: {n}, playlists: {report.playlists_kept:,}, pairs: {report.playlist_tracks:,}")
    print(f"slices/s: {rate:.2f} (goal >= 4), playlists/s: {report.playlists_kept / elapsed:,.0f}")
    print(f"peak RSS: {rss:,.0f} MiB (includes the synthesis)")
    print(f"whole MPD (1,000 slices): {1000 / rate / 60:.1f} min projected (goal < 5 min)")


if __name__ == "__main__":
    main()
