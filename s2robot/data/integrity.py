"""Finding damaged chunks in the Zarr arrays of a demonstration store or a feature cache.

Two kinds of damage otherwise read back silently or as a bare codec error naming no file:
- a chunk file deleted (or lost with its disk block): zarr returns the fill value for it, so a
  frame reads as all black and low-dim rows or features as zeros;
- a chunk whose bytes changed: a decompression error, or garbage that decodes.

Arrays made by this code carry a crc32c codec after the compressor (a changed byte fails the
checksum) and are written with every chunk on disk, all-zero ones included (``writer``), so a
chunk that committed rows need and that is absent is damage. Arrays of older stores have no
checksum and were written without all-zero chunks; they get the same presence check, which would
misreport a chunk whose every value is exactly zero: never the case for rendered frames, robot
state or encoder features.

The arrays here grow along axis 0 only: every other axis is a single chunk.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np
import zarr
import zarr.codecs

# verify() decodes this many chunks per read; only a failing block is re-read chunk by chunk.
READ_BLOCK = 256


def checksummed(compressor: zarr.codecs.BloscCodec) -> list:
    """The bytes-to-bytes codecs of a new array: compressed, then a crc32c checksum."""
    return [compressor, zarr.codecs.Crc32cCodec()]


def writer(arr: zarr.Array) -> zarr.Array:
    """``arr``, writing every chunk: zarr skips chunks equal to the fill value by default, and here
    a chunk absent on disk must mean damage."""
    return zarr.Array(
        zarr.AsyncArray(metadata=arr.metadata, store_path=arr.store_path, config={"write_empty_chunks": True})
    )


@dataclasses.dataclass(frozen=True)
class Damage:
    """Rows [start, stop) of one array, in consecutive chunks damaged the same way."""

    start: int
    stop: int
    reason: str


def _chunks(arr: zarr.Array, start: int, stop: int) -> range:
    size = arr.chunks[0]
    return range(start // size, -(-stop // size)) if stop > start else range(0)


def _rows(arr: zarr.Array, i: int, start: int, stop: int) -> tuple[int, int]:
    size = arr.chunks[0]
    return max(start, i * size), min(stop, (i + 1) * size)


def missing_chunks(arr: zarr.Array, start: int, stop: int) -> list[int]:
    """Indices (along axis 0) of the chunks holding rows [start, stop) that have no file on disk.

    One stat per chunk, cheap beside the read it guards: measured 20-30 ms for 1000 frames, which
    zarr takes 1.0-1.5 s to read (32 px, one frame per chunk; a busy 2-core machine)."""
    root = getattr(arr.store, "root", None)
    if root is None:  # not a local directory: nothing to stat
        return []
    base = os.path.join(root, *arr.path.split("/"))
    others = list(itertools.product(*(range(-(-n // c)) for n, c in zip(arr.shape[1:], arr.chunks[1:]))))
    encode = arr.metadata.encode_chunk_key
    return [
        i
        for i in _chunks(arr, start, stop)
        if not all(os.path.exists(os.path.join(base, encode((i, *rest)))) for rest in others)
    ]


def _decode_error(arr: zarr.Array, start: int, stop: int) -> str | None:
    try:
        arr[start:stop]
    except Exception as e:  # blosc, zstd and the checksum each raise their own type
        text = str(e).split(". ")[0].strip().rstrip(".")
        return f"does not decode ({type(e).__name__}: {text[:120]})"
    return None


def find_damage(arr: zarr.Array, start: int, stop: int, decode: bool = True, presence: bool = True) -> list[Damage]:
    """Damage in rows [start, stop): chunk files missing (``presence``) and chunks that fail to
    decode (``decode``; reads every chunk). Consecutive chunks damaged alike come as one Damage."""
    bad: list[tuple[int, str]] = []
    missing = set(missing_chunks(arr, start, stop)) if presence else set()
    bad += [(i, "chunk file missing") for i in sorted(missing)]
    if decode:
        chunks = _chunks(arr, start, stop)
        for block in range(chunks.start, chunks.stop, READ_BLOCK):
            end = min(block + READ_BLOCK, chunks.stop)
            if _decode_error(arr, _rows(arr, block, start, stop)[0], _rows(arr, end - 1, start, stop)[1]) is None:
                continue
            for i in range(block, end):
                reason = None if i in missing else _decode_error(arr, *_rows(arr, i, start, stop))
                if reason:
                    bad.append((i, reason))
    runs: list[Damage] = []
    for i, reason in sorted(bad):
        first, last = _rows(arr, i, start, stop)
        if runs and runs[-1].stop == first and runs[-1].reason == reason:
            runs[-1] = Damage(runs[-1].start, last, reason)
        else:
            runs.append(Damage(first, last, reason))
    return runs


def read_checked(arr: zarr.Array, start: int, stop: int) -> tuple[np.ndarray | None, Damage | None]:
    """Rows [start, stop) of ``arr`` and None, or None and the first damage in them."""
    damage = find_damage(arr, start, stop, decode=False)  # a missing chunk would read as zeros
    if not damage:
        try:
            return arr[start:stop], None
        except Exception as e:
            damage = find_damage(arr, start, stop, presence=False) or [Damage(start, stop, f"unreadable ({e})")]
    return None, damage[0]


def describe(name: str, d: Damage, episode_ends: np.ndarray | None = None) -> str:
    """One line: the array, the rows and (given a store's episode ends) the episodes, the damage."""
    where = ""
    if episode_ends is not None:
        first, last = (int(np.searchsorted(episode_ends, row, side="right")) for row in (d.start, d.stop - 1))
        where = f" (episode {first})" if first == last else f" (episodes {first}..{last})"
    return f"{name} rows {d.start}..{d.stop - 1}{where}: {d.reason}"


def verify_arrays(
    data: dict[str, tuple[zarr.Array, int]], meta: dict[str, tuple[zarr.Array, int]], episode_ends: np.ndarray
) -> list[str]:
    """Every chunk of the committed rows of a store's arrays, ``name -> (array, rows)``: one line per
    damaged run. Meta arrays are only decoded: older stores lack their all-zero chunks (an
    all-False episode_success), and a missing episode_ends chunk already fails on open."""
    problems = [
        describe(name, d, episode_ends) for name, (arr, rows) in data.items() for d in find_damage(arr, 0, rows)
    ]
    for name, (arr, rows) in meta.items():
        problems += [describe(name, d) for d in find_damage(arr, 0, rows, presence=False)]
    return problems


def remove_partial_files(group_dir: str) -> None:
    """Delete the temporaries (``*.partial``) a kill mid-write leaves beside a group's metadata and
    its members' (zarr writes each file to one and renames it): zarr warns about them on every open.
    Those among chunk files are left: they cost a little disk, nothing else."""
    for d in [group_dir, *(e.path for e in os.scandir(group_dir) if e.is_dir())]:
        for entry in os.scandir(d):
            if entry.name.endswith(".partial") and entry.is_file():
                os.remove(entry.path)
