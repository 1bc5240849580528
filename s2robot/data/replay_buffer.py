"""ReplayBuffer: the one owner of the demonstration store layout (Zarr v3, on disk).

Layout (layout_version 1):
    <store>/                 root group; attrs: layout, layout_version, plus the caller's attrs
                             (env config, expert config, seeds, package versions, ...)
    data/<key>               per-step arrays concatenated over all episodes, shape (n_steps, ...)
                             uint8 images (T, H, W, 3): one frame per chunk; others: 1024 steps per chunk
    meta/episode_ends        int64 (n_episodes,): exclusive end index of each episode in data/*
    meta/episode_seeds       int64 (n_episodes,): env seed of each stored episode
    meta/episode_success     bool (n_episodes,)
    meta/skipped_seeds       int64: seeds whose episodes were run but not stored (failures)
    meta/episode_round       int64 (n_episodes,): 0 for expert demonstrations, k for episodes a
                             policy visited in DAgger round k, relabelled by the expert. Stores
                             made before it have no such array: they read as all 0.

Crash safety: create builds the store in a hidden sibling folder and renames it into place.
add_episode writes data/* first, then the per-episode meta, and episode_ends last; an episode
exists only once its end is in episode_ends. A crash mid-episode leaves arrays longer than
episode_ends[-1] (or, in a store with no episode yet, data arrays that should not exist):
open(mode="a") brings the store back to its last committed state, open(mode="r") ignores the
rest. Every completed episode stays intact (zarr writes each file through a rename).

Damage: new arrays carry a crc32c checksum and every chunk file; reads check that the chunks
they need exist and decode, and raise StoreError naming key and episode. verify() checks all
(see integrity.py).

~400 lines for one job, the layout: creating, recovering, appending to and reading a store;
the damage checks themselves live in integrity.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from s2robot.data.integrity import checksummed, describe, read_checked, remove_partial_files, verify_arrays, writer
from s2robot.errors import UserError

LAYOUT = "s2robot.replay_buffer"  # a format name, not the module path: stores on disk carry it
LAYOUT_VERSION = 1
LOWDIM_CHUNK = 1024
_EPISODE_META = {"episode_seeds": np.int64, "episode_success": np.bool_}
_META = {"episode_ends": np.int64, **_EPISODE_META, "skipped_seeds": np.int64}
# Per-episode meta that came after layout version 1: made by create(), and by the first add_episode
# that needs it in an older store (backfilled with the default for the episodes already there).
_LATER_EPISODE_META = {"episode_round": (np.int64, 0)}
_RESERVED_ATTRS = ("layout", "layout_version")


class StoreError(UserError):
    """A demonstration store is missing, unreadable, of another layout, or lacks what is asked of it."""


def _is_image(dtype: np.dtype, shape: tuple[int, ...]) -> bool:
    return dtype == np.uint8 and len(shape) == 3 and shape[-1] in (1, 3, 4)


def _compressors(image: bool) -> list:
    # Frames: zstd level 1 compresses a 224 px agentview frame ~3x in ~0.8 ms; level 3 saves
    # only 6% more bytes at twice the time. uint8 gains nothing from byte shuffling; floats do.
    if image:
        return checksummed(zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle"))
    return checksummed(zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"))


def _committed_ends(arr: zarr.Array) -> np.ndarray:
    # zarr grows an array before writing the new row: a commit killed in between leaves a last
    # end that reads as the fill value (0 in older stores, -1 now), never a valid end
    ends = np.asarray(arr[:], dtype=np.int64)
    return ends[:-1] if len(ends) and ends[-1] <= 0 else ends


def _create_meta(group: zarr.Group, key: str, dtype, fill_value, rows: int = 0) -> zarr.Array:
    """One per-episode (or per-skip) meta array: 1-d, low-dim chunks, ``fill_value`` for unwritten rows."""
    return group.create_array(
        key, shape=(rows,), chunks=(LOWDIM_CHUNK,), dtype=dtype, compressors=_compressors(False), fill_value=fill_value
    )


class ReplayBuffer:
    """Episodes of per-step arrays in a Zarr store; see the module docstring for the layout."""

    def __init__(self, root: zarr.Group, path: str, mode: str):
        self._root = root
        self.path = path
        self.mode = mode
        self._data = root["data"]
        self._meta = root["meta"]
        self._ends = _committed_ends(self._meta["episode_ends"])
        self._check_and_recover()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None, overwrite: bool = False):
        """Make an empty store at `path`. `attrs` must be JSON-serialisable."""
        path = os.fspath(path)
        if os.path.exists(path) and not overwrite:
            raise StoreError(f"{path}: already exists; open it with ReplayBuffer.open or pass overwrite=True")
        attrs = dict(attrs or {})
        clash = [k for k in _RESERVED_ATTRS if k in attrs]
        if clash:
            raise ValueError(f"attrs {clash} are reserved for the store layout")
        # Built aside and renamed into place: a store killed halfway through creation would
        # otherwise exist without its meta arrays, and every later run would refuse it.
        # A symlink whose target does not exist yet (a store kept on another disk) is created at its
        # target: renaming onto the link itself fails.
        parent, name = os.path.split(os.path.realpath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.creating-", dir=parent)
        try:
            root = zarr.open_group(tmp, mode="w")
            root.attrs.update({"layout": LAYOUT, "layout_version": LAYOUT_VERSION, **attrs})
            root.require_group("data")
            meta = root.require_group("meta")
            for key, dtype in _META.items():
                _create_meta(meta, key, dtype, False if dtype == np.bool_ else -1)  # -1: no seed, no end
            for key, (dtype, default) in _LATER_EPISODE_META.items():
                _create_meta(meta, key, dtype, default)
            if os.path.exists(path):
                shutil.rmtree(os.path.realpath(path))
            os.rename(tmp, os.path.join(parent, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(zarr.open_group(path, mode="r+"), path, "a")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", required_keys: tuple[str, ...] = ()):
        """Open an existing store for reading ("r") or appending ("a").

        Raises StoreError naming the path and what to do if the store is missing, unreadable,
        of another layout or version, or lacks one of `required_keys`.
        """
        path = os.fspath(path)
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if not os.path.exists(path):
            raise StoreError(
                f"{path}: no demonstration store here; make one with scripts/collect_demos.py "
                f"(store={path}) or fix the path"
            )
        try:
            root = zarr.open_group(path, mode="r+" if mode == "a" else "r")
            attrs = dict(root.attrs)
        except Exception as e:  # zarr raises several types for a damaged or foreign directory
            raise StoreError(
                f"{path}: cannot be read as a Zarr group ({type(e).__name__}: {e}); "
                f"it is corrupt or not a store: delete it and collect again"
            ) from e
        if attrs.get("layout") != LAYOUT:
            raise StoreError(
                f"{path}: not an s2robot replay buffer (layout attr {attrs.get('layout')!r}, "
                f"expected {LAYOUT!r}); point to a store made by scripts/collect_demos.py"
            )
        if attrs.get("layout_version") != LAYOUT_VERSION:
            raise StoreError(
                f"{path}: store layout version {attrs.get('layout_version')!r}, this code reads "
                f"version {LAYOUT_VERSION}; collect the demonstrations again into a new store"
            )
        try:
            buffer = cls(root, path, mode)
        except StoreError:
            raise
        except KeyError as e:
            raise StoreError(f"{path}: store is incomplete, {e} is missing; delete it and collect again") from e
        except Exception as e:
            raise StoreError(f"{path}: store is damaged ({type(e).__name__}: {e}); delete it and collect again") from e
        missing = [k for k in required_keys if k not in buffer.keys]
        if missing:
            raise StoreError(
                f"{path}: store lacks keys {missing} (it has {buffer.keys}); collect a store with "
                f"those cameras/keys or change the config that asks for them"
            )
        return buffer

    def _check_and_recover(self) -> None:
        """Drop what a crash mid-episode left uncommitted; refuse stores with lost data."""
        n_eps, n_steps = len(self._ends), self.n_steps
        if n_eps and (np.any(np.diff(self._ends) <= 0) or self._ends[0] <= 0):
            raise StoreError(f"{self.path}: meta/episode_ends is not increasing; the store is corrupt, collect again")
        if self.mode == "a":
            for group in (self.path, os.path.join(self.path, "data"), os.path.join(self.path, "meta")):
                remove_partial_files(group)
        if not n_eps and self.mode == "a":
            # The first episode creates the data arrays: before its commit none may exist. Removed
            # as folders, unparsed, whatever state the kill left them in.
            for entry in os.scandir(os.path.join(self.path, "data")):
                if entry.is_dir():
                    shutil.rmtree(entry.path)
        arrays = [(f"data/{n}", arr, n_steps) for n, arr in (self._data.arrays() if n_eps else ())]
        arrays += [(f"meta/{n}", self._meta[n], n_eps) for n in ("episode_ends", *_EPISODE_META, *self._later_meta)]
        for name, arr, committed in arrays:
            if arr.shape[0] < committed:
                raise StoreError(
                    f"{self.path}: {name} has {arr.shape[0]} rows but {committed} are committed; "
                    f"the store is corrupt, delete it and collect again"
                )
            if arr.shape[0] > committed and self.mode == "a":
                arr.resize((committed, *arr.shape[1:]))

    # -- writing -------------------------------------------------------------------------------

    def add_episode(
        self, episode: Mapping[str, np.ndarray], seed: int = -1, success: bool = True, episode_round: int = 0
    ) -> int:
        """Append one episode (every array with the same number of steps T >= 1); returns its index.
        ``episode_round``: 0 for an expert demonstration, k for an episode of DAgger round k."""
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only; use ReplayBuffer.open(path, mode='a') to add episodes")
        episode = {k: np.asarray(v) for k, v in episode.items()}
        lengths = {k: (v.shape[0] if v.ndim else 0) for k, v in episode.items()}
        if not episode or len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
            raise ValueError(f"an episode needs arrays of equal length >= 1, got lengths {lengths}")
        existing = self.keys
        if existing and sorted(episode) != existing:
            raise ValueError(f"episode keys {sorted(episode)} differ from the store's {existing}")
        for key, value in episode.items():
            if key in existing:
                arr = self._data[key]
                if arr.shape[1:] != value.shape[1:] or arr.dtype != value.dtype:
                    raise ValueError(
                        f"{key}: episode has {value.dtype}{value.shape[1:]}, store has {arr.dtype}{arr.shape[1:]}"
                    )
        end = self.n_steps + lengths[next(iter(lengths))]
        try:
            for key, value in episode.items():
                if key not in existing:
                    image = _is_image(value.dtype, value.shape[1:])
                    chunks = (1, *value.shape[1:]) if image else (LOWDIM_CHUNK, *value.shape[1:])
                    self._data.create_array(
                        key,
                        shape=(0, *value.shape[1:]),
                        chunks=chunks,
                        dtype=value.dtype,
                        compressors=_compressors(image),
                    )
                writer(self._data[key]).append(value, axis=0)
            writer(self._meta["episode_seeds"]).append(np.array([seed], dtype=np.int64))
            writer(self._meta["episode_success"]).append(np.array([success], dtype=np.bool_))
            if "episode_round" in self._meta or episode_round != 0:  # an older store stays as it was for demos
                writer(self._later_array("episode_round")).append(np.array([episode_round], dtype=np.int64))
            writer(self._meta["episode_ends"]).append(np.array([end], dtype=np.int64))  # the commit point
        except BaseException:
            # Leave no uncommitted tail behind for the next add_episode to build on.
            with contextlib.suppress(Exception):
                self._ends = _committed_ends(self._meta["episode_ends"])
                self._check_and_recover()
            raise
        self._ends = np.append(self._ends, end)
        return len(self._ends) - 1

    @property
    def _later_meta(self) -> list[str]:
        return [n for n in _LATER_EPISODE_META if n in self._meta]

    def _later_array(self, name: str) -> zarr.Array:
        """The meta array ``name``, made holding the default for every committed episode if this
        store predates it. Made with those rows at once, the default as fill value: a crash before
        the rows are written still reads the default, and one before the commit leaves a row
        that recovery trims like the others'."""
        if name not in self._meta:
            dtype, default = _LATER_EPISODE_META[name]
            arr = _create_meta(self._meta, name, dtype, default, rows=self.n_episodes)
            if self.n_episodes:
                writer(arr)[:] = np.full(self.n_episodes, default, dtype=dtype)  # every chunk on disk
        return self._meta[name]

    def add_skipped_seed(self, seed: int) -> None:
        """Record a seed whose episode was run but not kept (so a resumed collection skips it)."""
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only; use mode='a' to record skipped seeds")
        writer(self._meta["skipped_seeds"]).append(np.array([seed], dtype=np.int64))

    def update_attrs(self, **attrs: Any) -> None:
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only; use mode='a' to change attrs")
        clash = [k for k in _RESERVED_ATTRS if k in attrs]
        if clash:
            raise ValueError(f"attrs {clash} are reserved for the store layout")
        self._root.attrs.update(attrs)

    # -- reading -------------------------------------------------------------------------------

    @property
    def n_episodes(self) -> int:
        return len(self._ends)

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    @property
    def episode_seeds(self) -> np.ndarray:
        return np.asarray(self._meta["episode_seeds"][: self.n_episodes], dtype=np.int64)

    @property
    def episode_success(self) -> np.ndarray:
        return np.asarray(self._meta["episode_success"][: self.n_episodes], dtype=bool)

    @property
    def episode_round(self) -> np.ndarray:
        """Per episode: 0 for an expert demonstration, k for an episode relabelled in DAgger round k."""
        if "episode_round" not in self._meta:
            return np.zeros(self.n_episodes, dtype=np.int64)
        return np.asarray(self._meta["episode_round"][: self.n_episodes], dtype=np.int64)

    @property
    def skipped_seeds(self) -> np.ndarray:
        seeds = np.asarray(self._meta["skipped_seeds"][:], dtype=np.int64)
        return seeds[seeds >= 0]  # -1: an append killed between growing the array and writing the seed

    @property
    def keys(self) -> list[str]:
        # no committed episode, no key: arrays of a first episode killed midway do not count
        return sorted(name for name, _ in self._data.arrays()) if self.n_episodes else []

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._root.attrs)

    def shape(self, key: str) -> tuple[int, ...]:
        """Per-step shape of `key` (without the time axis)."""
        return tuple(self._array(key).shape[1:])

    def dtype(self, key: str) -> np.dtype:
        return self._array(key).dtype

    def episode_slice(self, i: int) -> slice:
        if not -self.n_episodes <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range for a store of {self.n_episodes} episodes")
        i %= self.n_episodes
        return slice(int(self._ends[i - 1]) if i else 0, int(self._ends[i]))

    def get_episode(self, i: int, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        sl = self.episode_slice(i)
        return {k: self.read(k, sl.start, sl.stop) for k in (keys or self.keys)}

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps [start, stop) of `key` across episodes, as numpy (committed steps only).

        Raises StoreError naming key and episode if a chunk they need is missing or corrupt."""
        stop = self.n_steps if stop is None else min(stop, self.n_steps)
        values, damage = read_checked(self._array(key), max(0, start), stop)
        if damage is None:
            return values
        raise StoreError(
            f"{self.path}: {describe(f'data/{key}', damage, self._ends)}; the store is damaged: run "
            f"`s2robot-inspect {self.path} --verify` to list all damage, then collect the demonstrations again"
        )

    def verify(self) -> list[str]:
        """Checks every chunk of every committed step (reads the whole store): one line per
        damaged run of chunks; an empty list when the store is intact."""
        meta_rows = {n: self.n_episodes for n in ("episode_ends", *_EPISODE_META, *self._later_meta)}
        meta = {
            f"meta/{n}": (self._meta[n], meta_rows.get(n, self._meta[n].shape[0])) for n in (*_META, *self._later_meta)
        }
        return verify_arrays({f"data/{k}": (self._data[k], self.n_steps) for k in self.keys}, meta, self._ends)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.read(key)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(self.n_episodes):
            yield self.get_episode(i)

    def __len__(self) -> int:
        return self.n_episodes

    def nbytes_on_disk(self) -> int:
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.path) for f in files)

    def _array(self, key: str) -> zarr.Array:
        if not self.n_episodes or key not in self._data:
            raise StoreError(f"{self.path}: store has no key {key!r} (it has {self.keys})")
        return self._data[key]

    def __repr__(self) -> str:
        return f"ReplayBuffer({self.path!r}, episodes={self.n_episodes}, steps={self.n_steps}, keys={self.keys})"
