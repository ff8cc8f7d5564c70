"""Exact reader for TensorBoard event files: every scalar event, no reservoir sampling.

An event file is a sequence of TFRecords: ``uint64 length | uint32 masked_crc32c(length) | data |
uint32 masked_crc32c(data)``, where ``data`` is a serialised ``tensorboard.Event`` protobuf. The whole file is
scanned by one numba function that checks both CRCs and decodes the few protobuf fields a scalar needs:

    Event        1: wall_time (double)   2: step (int64)   5: summary (Summary)
    Summary      1: value (repeated Value)
    Value        1: tag   2: simple_value (float)   8: tensor (TensorProto)   9: metadata (SummaryMetadata)
    TensorProto  1: dtype   2: tensor_shape   4: tensor_content   5: float_val   6: double_val   7: int_val
                 10: int64_val
    SummaryMetadata 1: plugin_data (1: plugin_name)   4: data_class (1 = scalar)

``simple_value`` scalars are what torch's SummaryWriter writes; TF2 writes 0-d tensors under the "scalars" plugin,
which are accepted too. EventAccumulator keeps only a random 10,000 per tag by default (docs/metrics.md, anchor bug);
this reader keeps all of them. A corrupt record (data CRC mismatch) is skipped; a corrupt length or a truncated tail
ends the file. Both are reported with ``warnings.warn(EventFileWarning)`` and the readable part is used.
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

EVENT_FILE_MARKER = "tfevents"

# Scan status codes returned by the numba scanner.
_STATUS_OK = 0
_STATUS_TRUNCATED = 1
_STATUS_BAD_LENGTH_CRC = 2
_STATUS_BAD_EVENT = 3

# Kinds of decoded values.
_KIND_SIMPLE_VALUE = 0
_KIND_TENSOR_SCALAR = 1

# TensorFlow DataType enum values we decode as scalars.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64 = 1, 2, 3, 9
_SCALARS_PLUGIN = np.frombuffer(b"scalars", dtype=np.uint8)


class EventFileWarning(UserWarning):
    """A truncated or corrupt event file: the readable part is used."""


@dataclass(frozen=True)
class ScalarSeries:
    """All events of one tag, sorted by (wall_time, step): parallel float64/int64 arrays."""

    wall_time: np.ndarray  # seconds since the epoch
    step: np.ndarray  # frames played (the trainer's global step)
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.value.shape[0])


@dataclass(frozen=True)
class EventFileScalars:
    path: Path
    series: dict[str, ScalarSeries]
    problems: list[str]
    n_records: int
    restart_steps: list[int]  # steps of SessionLog START events: earlier files' events at or after them are orphans
    n_purged: int  # values of this file dropped by a restart logged later in the same file


# ---------------------------------------------------------------------------------------------- CRC32C (Castagnoli)
def _crc32c_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_CRC_TABLE = _crc32c_table()


@numba.njit(cache=True, nogil=True)
def _masked_crc32c(buf: np.ndarray, start: int, end: int, table: np.ndarray) -> np.uint32:
    crc = np.uint32(0xFFFFFFFF)
    for i in range(start, end):
        crc = table[(crc ^ np.uint32(buf[i])) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
    crc = crc ^ np.uint32(0xFFFFFFFF)
    # TFRecord masking: rotate right by 15 and add a constant (mod 2^32).
    rotated = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    return np.uint32((np.uint64(rotated) + np.uint64(0xA282EAD8)) & np.uint64(0xFFFFFFFF))


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum of ``data``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    return int(_masked_crc32c(buf, 0, buf.shape[0], _CRC_TABLE))


# ---------------------------------------------------------------------------------------------- protobuf wire format
@numba.njit(cache=True, nogil=True)
def _read_u32(buf: np.ndarray, pos: int) -> np.uint32:
    return (
        np.uint32(buf[pos])
        | (np.uint32(buf[pos + 1]) << np.uint32(8))
        | (np.uint32(buf[pos + 2]) << np.uint32(16))
        | (np.uint32(buf[pos + 3]) << np.uint32(24))
    )


@numba.njit(cache=True, nogil=True)
def _read_u64(buf: np.ndarray, pos: int) -> np.uint64:
    return np.uint64(_read_u32(buf, pos)) | (np.uint64(_read_u32(buf, pos + 4)) << np.uint64(32))


@numba.njit(cache=True, nogil=True)
def _read_varint(buf: np.ndarray, pos: int, end: int) -> tuple[np.uint64, int]:
    """Returns (value, next position); next position -1 on a malformed varint."""
    result = np.uint64(0)
    shift = np.uint64(0)
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= np.uint64(byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += np.uint64(7)
        if shift >= np.uint64(64):
            return result, -1
    return result, -1


@numba.njit(cache=True, nogil=True)
def _skip_field(buf: np.ndarray, pos: int, end: int, wire_type: int) -> int:
    """Position after a field's payload; -1 when malformed."""
    if wire_type == 0:
        _, pos = _read_varint(buf, pos, end)
        return pos
    if wire_type == 1:
        return pos + 8 if pos + 8 <= end else -1
    if wire_type == 2:
        length, pos = _read_varint(buf, pos, end)
        if pos < 0 or pos + np.int64(length) > end:
            return -1
        return pos + np.int64(length)
    if wire_type == 5:
        return pos + 4 if pos + 4 <= end else -1
    return -1


@numba.njit(cache=True, nogil=True)
def _f32_at(buf: np.ndarray, pos: int) -> float:
    return float(buf[pos : pos + 4].view(np.float32)[0])


@numba.njit(cache=True, nogil=True)
def _f64_at(buf: np.ndarray, pos: int) -> float:
    return float(buf[pos : pos + 8].view(np.float64)[0])


@numba.njit(cache=True, nogil=True)
def _decode_tensor_scalar(buf: np.ndarray, pos: int, end: int) -> tuple[bool, float]:
    """A 0-d numeric TensorProto's value; (False, 0) for anything else (images, histograms, strings)."""
    dtype = 0
    n_dims = 0
    has_value = False
    value = 0.0
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        if pos < 0:
            return False, 0.0
        field = int(key >> np.uint64(3))
        wire = int(key & np.uint64(7))
        if field == 1 and wire == 0:
            raw, pos = _read_varint(buf, pos, end)
            dtype = int(raw)
        elif field == 2 and wire == 2:  # tensor_shape: count its dims (field 2)
            length, pos = _read_varint(buf, pos, end)
            if pos < 0:
                return False, 0.0
            shape_end = pos + np.int64(length)
            while pos < shape_end:
                shape_key, pos = _read_varint(buf, pos, shape_end)
                if pos < 0:
                    return False, 0.0
                if int(shape_key >> np.uint64(3)) == 2:
                    n_dims += 1
                pos = _skip_field(buf, pos, shape_end, int(shape_key & np.uint64(7)))
                if pos < 0:
                    return False, 0.0
        elif field == 4 and wire == 2:  # tensor_content: raw little-endian bytes
            length, pos = _read_varint(buf, pos, end)
            if pos < 0:
                return False, 0.0
            n = int(length)
            if dtype == _DT_FLOAT and n == 4:
                value, has_value = _f32_at(buf, pos), True
            elif dtype == _DT_DOUBLE and n == 8:
                value, has_value = _f64_at(buf, pos), True
            elif dtype == _DT_INT32 and n == 4:
                value, has_value = float(np.int32(_read_u32(buf, pos))), True
            elif dtype == _DT_INT64 and n == 8:
                value, has_value = float(np.int64(_read_u64(buf, pos))), True
            pos += n
        elif field == 5 and (wire == 2 or wire == 5):  # float_val, packed or not
            if wire == 2:
                length, pos = _read_varint(buf, pos, end)
                if pos < 0 or length < 4:
                    return False, 0.0
                value, has_value = _f32_at(buf, pos), True
                pos += np.int64(length)
            else:
                value, has_value = _f32_at(buf, pos), True
                pos += 4
        elif field == 6 and (wire == 2 or wire == 1):  # double_val
            if wire == 2:
                length, pos = _read_varint(buf, pos, end)
                if pos < 0 or length < 8:
                    return False, 0.0
                value, has_value = _f64_at(buf, pos), True
                pos += np.int64(length)
            else:
                value, has_value = _f64_at(buf, pos), True
                pos += 8
        elif (field == 7 or field == 10) and wire == 0:  # int_val / int64_val, not packed
            raw, pos = _read_varint(buf, pos, end)
            value, has_value = float(np.int64(raw)), True
        elif (field == 7 or field == 10) and wire == 2:  # packed: first varint
            length, pos = _read_varint(buf, pos, end)
            if pos < 0:
                return False, 0.0
            raw, _ = _read_varint(buf, pos, pos + np.int64(length))
            value, has_value = float(np.int64(raw)), True
            pos += np.int64(length)
        else:
            pos = _skip_field(buf, pos, end, wire)
        if pos < 0:
            return False, 0.0
    return has_value and n_dims == 0, value


@numba.njit(cache=True, nogil=True)
def _metadata_is_scalar(buf: np.ndarray, pos: int, end: int, plugin_name: np.ndarray) -> bool:
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        if pos < 0:
            return False
        field = int(key >> np.uint64(3))
        wire = int(key & np.uint64(7))
        if field == 1 and wire == 2:  # plugin_data { 1: plugin_name }
            length, pos = _read_varint(buf, pos, end)
            if pos < 0:
                return False
            plugin_end = pos + np.int64(length)
            while pos < plugin_end:
                plugin_key, pos = _read_varint(buf, pos, plugin_end)
                if pos < 0:
                    return False
                if plugin_key == np.uint64((1 << 3) | 2):
                    name_length, pos = _read_varint(buf, pos, plugin_end)
                    if pos < 0:
                        return False
                    n = int(name_length)
                    if n == plugin_name.shape[0]:
                        same = True
                        for i in range(n):
                            if buf[pos + i] != plugin_name[i]:
                                same = False
                        if same:
                            return True
                    pos += n
                else:
                    pos = _skip_field(buf, pos, plugin_end, int(plugin_key & np.uint64(7)))
                    if pos < 0:
                        return False
        elif field == 4 and wire == 0:  # data_class: DATA_CLASS_SCALAR = 1
            raw, pos = _read_varint(buf, pos, end)
            if raw == 1:
                return True
        else:
            pos = _skip_field(buf, pos, end, wire)
            if pos < 0:
                return False
    return False


@numba.njit(cache=True, nogil=True)
def _fnv1a64(buf: np.ndarray, start: int, end: int) -> np.uint64:
    h = np.uint64(0xCBF29CE484222325)
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * np.uint64(0x100000001B3)
    return h


@numba.njit(cache=True, nogil=True)
def _scan_event_file(buf: np.ndarray, table: np.ndarray, plugin_name: np.ndarray):
    """Decode every scalar value of every record.

    Returns (wall_time, step, value, tag_hash, tag_offset, tag_length, kind, is_scalar_plugin,
    session_start_value_count, session_start_step, n_records, n_bad_records, first_bad_offset, status, stop_offset).
    """
    n = buf.shape[0]
    capacity = max(16, n // 48)
    wall = np.empty(capacity, dtype=np.float64)
    step = np.empty(capacity, dtype=np.int64)
    value = np.empty(capacity, dtype=np.float64)
    tag_hash = np.empty(capacity, dtype=np.uint64)
    tag_offset = np.empty(capacity, dtype=np.int64)
    tag_length = np.empty(capacity, dtype=np.int64)
    kind = np.empty(capacity, dtype=np.int8)
    plugin = np.empty(capacity, dtype=np.bool_)
    start_count = np.empty(8, dtype=np.int64)  # SessionLog START events: values decoded before them, their step
    start_step = np.empty(8, dtype=np.int64)
    n_starts = 0
    count = 0
    n_records = 0
    n_bad = 0
    first_bad = -1
    status = _STATUS_OK
    pos = 0
    while pos < n:
        if pos + 12 > n:
            status = _STATUS_TRUNCATED
            break
        if _masked_crc32c(buf, pos, pos + 8, table) != _read_u32(buf, pos + 8):
            status = _STATUS_BAD_LENGTH_CRC
            break
        length = np.int64(_read_u64(buf, pos))
        start = pos + 12
        end = start + length
        if length < 0 or end + 4 > n:
            status = _STATUS_TRUNCATED
            break
        pos = end + 4
        if _masked_crc32c(buf, start, end, table) != _read_u32(buf, end):
            n_bad += 1
            if first_bad < 0:
                first_bad = start - 12
            continue
        n_records += 1
        # Event: wall_time, step, and where the summary lies (fields may come in any order).
        event_wall = 0.0
        event_step = np.int64(0)
        summary_start = -1
        summary_end = -1
        is_start = False
        p = start
        while p < end:
            key, p = _read_varint(buf, p, end)
            if p < 0:
                break
            field = int(key >> np.uint64(3))
            wire = int(key & np.uint64(7))
            if field == 1 and wire == 1:
                event_wall = _f64_at(buf, p)
                p += 8
            elif field == 2 and wire == 0:
                raw, p = _read_varint(buf, p, end)
                event_step = np.int64(raw)
            elif field == 5 and wire == 2:
                sl, p = _read_varint(buf, p, end)
                if p < 0:
                    break
                summary_start = p
                summary_end = p + np.int64(sl)
                p = summary_end
            elif field == 7 and wire == 2:  # session_log { 1: status }, START = 1 marks a restart
                sl, p = _read_varint(buf, p, end)
                if p < 0:
                    break
                log_end = p + np.int64(sl)
                while 0 <= p < log_end:
                    log_key, p = _read_varint(buf, p, log_end)
                    if p < 0:
                        break
                    if log_key == np.uint64(1 << 3):
                        session_status, p = _read_varint(buf, p, log_end)
                        if session_status == 1:
                            is_start = True
                    else:
                        p = _skip_field(buf, p, log_end, int(log_key & np.uint64(7)))
            else:
                p = _skip_field(buf, p, end, wire)
        if p < 0 or p > end or summary_end > end:
            n_bad += 1
            if first_bad < 0:
                first_bad = start - 12
            continue
        if is_start:
            if n_starts == start_count.shape[0]:
                start_count = np.concatenate((start_count, np.empty(n_starts, dtype=np.int64)))
                start_step = np.concatenate((start_step, np.empty(n_starts, dtype=np.int64)))
            start_count[n_starts] = count
            start_step[n_starts] = event_step
            n_starts += 1
        # Summary: repeated Value.
        s = summary_start
        while 0 <= s < summary_end:
            key, s = _read_varint(buf, s, summary_end)
            if s < 0:
                break
            if int(key >> np.uint64(3)) != 1 or int(key & np.uint64(7)) != 2:
                s = _skip_field(buf, s, summary_end, int(key & np.uint64(7)))
                continue
            vl, s = _read_varint(buf, s, summary_end)
            if s < 0:
                break
            v_end = s + np.int64(vl)
            t_off = -1
            t_len = 0
            found = False
            v_kind = _KIND_SIMPLE_VALUE
            v_value = 0.0
            v_plugin = False
            q = s
            while 0 <= q < v_end:
                vkey, q = _read_varint(buf, q, v_end)
                if q < 0:
                    break
                vfield = int(vkey >> np.uint64(3))
                vwire = int(vkey & np.uint64(7))
                if vfield == 1 and vwire == 2:
                    tl, q = _read_varint(buf, q, v_end)
                    t_off = q
                    t_len = np.int64(tl)
                    q += t_len
                elif vfield == 2 and vwire == 5:
                    v_value = _f32_at(buf, q)
                    v_kind = _KIND_SIMPLE_VALUE
                    found = True
                    q += 4
                elif vfield == 8 and vwire == 2:
                    tl, q = _read_varint(buf, q, v_end)
                    ok, tensor_value = _decode_tensor_scalar(buf, q, q + np.int64(tl))
                    if ok:
                        v_value = tensor_value
                        v_kind = _KIND_TENSOR_SCALAR
                        found = True
                    q += np.int64(tl)
                elif vfield == 9 and vwire == 2:
                    ml, q = _read_varint(buf, q, v_end)
                    v_plugin = _metadata_is_scalar(buf, q, q + np.int64(ml), plugin_name)
                    q += np.int64(ml)
                else:
                    q = _skip_field(buf, q, v_end, vwire)
            s = v_end
            if not found or t_off < 0 or q != v_end:
                continue
            if count == capacity:  # grow every output array by 2x
                capacity *= 2
                wall = np.concatenate((wall, np.empty(capacity - count, dtype=np.float64)))
                step = np.concatenate((step, np.empty(capacity - count, dtype=np.int64)))
                value = np.concatenate((value, np.empty(capacity - count, dtype=np.float64)))
                tag_hash = np.concatenate((tag_hash, np.empty(capacity - count, dtype=np.uint64)))
                tag_offset = np.concatenate((tag_offset, np.empty(capacity - count, dtype=np.int64)))
                tag_length = np.concatenate((tag_length, np.empty(capacity - count, dtype=np.int64)))
                kind = np.concatenate((kind, np.empty(capacity - count, dtype=np.int8)))
                plugin = np.concatenate((plugin, np.empty(capacity - count, dtype=np.bool_)))
            wall[count] = event_wall
            step[count] = event_step
            value[count] = v_value
            tag_hash[count] = _fnv1a64(buf, t_off, t_off + t_len)
            tag_offset[count] = t_off
            tag_length[count] = t_len
            kind[count] = v_kind
            plugin[count] = v_plugin
            count += 1
    return (
        wall[:count], step[:count], value[:count], tag_hash[:count], tag_offset[:count], tag_length[:count],
        kind[:count], plugin[:count], start_count[:n_starts], start_step[:n_starts], n_records, n_bad, first_bad,
        status, pos,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _tags_match(
    buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, group: np.ndarray, first: np.ndarray
) -> bool:
    """True when every value's tag bytes equal its group representative's (no hash collision)."""
    for i in range(offsets.shape[0]):
        r = first[group[i]]
        if lengths[i] != lengths[r]:
            return False
        for k in range(lengths[i]):
            if buf[offsets[i] + k] != buf[offsets[r] + k]:
                return False
    return True


# ---------------------------------------------------------------------------------------------- public API
def is_event_file(path: Path) -> bool:
    return path.is_file() and EVENT_FILE_MARKER in path.name


def event_files_in(folder: Path) -> list[Path]:
    """Event files directly in ``folder``, oldest first (their names start with the creation time)."""
    return sorted(p for p in folder.iterdir() if is_event_file(p))


def _tag_names(buf: np.ndarray, tag_hash: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> tuple:
    _, first, group = np.unique(tag_hash, return_index=True, return_inverse=True)
    if not _tags_match(buf, offsets, lengths, group, first):  # a 64-bit hash collision: decode every tag
        names_all = [bytes(buf[o : o + n]).decode("utf-8", "replace") for o, n in zip(offsets, lengths, strict=True)]
        names = sorted(set(names_all))
        index = {name: i for i, name in enumerate(names)}
        return names, np.array([index[name] for name in names_all], dtype=np.int64)
    names = [bytes(buf[offsets[i] : offsets[i] + lengths[i]]).decode("utf-8", "replace") for i in first]
    return names, group.astype(np.int64)


def _problem_text(path: Path, status: int, n_bad: int, first_bad: int, stop: int, size: int) -> list[str]:
    problems = []
    if n_bad:
        problems.append(f"{path}: {n_bad} corrupt record(s) skipped (first at byte {first_bad})")
    if status == _STATUS_TRUNCATED:
        problems.append(f"{path}: truncated at byte {stop} of {size}; the readable part is used")
    elif status == _STATUS_BAD_LENGTH_CRC:
        problems.append(f"{path}: corrupt record header at byte {stop} of {size}; the rest of the file is unreadable")
    return problems


def read_event_file(path: str | os.PathLike[str]) -> EventFileScalars:
    """Every scalar of one event file; problems are reported as ``EventFileWarning`` and returned."""
    path = Path(path)
    buf = np.fromfile(path, dtype=np.uint8)
    (wall, step, value, tag_hash, offsets, lengths, kind, plugin, start_count, start_step, n_records, n_bad,
     first_bad, status, stop) = _scan_event_file(buf, _CRC_TABLE, _SCALARS_PLUGIN)  # fmt: skip
    problems = _problem_text(path, int(status), int(n_bad), int(first_bad), int(stop), int(buf.shape[0]))
    for problem in problems:
        warnings.warn(problem, EventFileWarning, stacklevel=2)
    keep = ~orphaned_before_restart(step, start_count, start_step)
    series: dict[str, ScalarSeries] = {}
    if keep.any():
        names, group = _tag_names(buf, tag_hash[keep], offsets[keep], lengths[keep])
        series = _split_by_tag(names, group, wall[keep], step[keep], value[keep], kind[keep], plugin[keep])
    return EventFileScalars(path=path, series=series, problems=problems, n_records=int(n_records),
                            restart_steps=[int(s) for s in start_step], n_purged=int((~keep).sum()))  # fmt: skip


def orphaned_before_restart(step: np.ndarray, start_count: np.ndarray, start_step: np.ndarray) -> np.ndarray:
    """Values a restart discards, as TensorBoard does: a SessionLog START at step s (SummaryWriter ``purge_step``)
    drops every earlier event with step >= s (they were written after the checkpoint the run resumed from)."""
    if start_count.shape[0] == 0:
        return np.zeros(step.shape[0], dtype=bool)
    order = np.argsort(start_count, kind="stable")
    counts = start_count[order]
    # For each value i: the smallest restart step among restarts logged after it.
    later_min_step = np.r_[np.minimum.accumulate(start_step[order][::-1])[::-1], np.iinfo(np.int64).max]
    first_later = np.searchsorted(counts, np.arange(step.shape[0]), side="right")
    return step >= later_min_step[first_later]


def _split_by_tag(names: list[str], group: np.ndarray, wall: np.ndarray, step: np.ndarray, value: np.ndarray,
                  kind: np.ndarray, plugin: np.ndarray) -> dict[str, ScalarSeries]:  # fmt: skip
    # A TF2 tensor value is a scalar only if its tag is declared "scalars" (metadata may be on the first event only).
    scalar_plugin_tags = np.zeros(len(names), dtype=bool)
    scalar_plugin_tags[np.unique(group[plugin])] = True
    keep = (kind == _KIND_SIMPLE_VALUE) | scalar_plugin_tags[group]
    group, wall, step, value = group[keep], wall[keep], step[keep], value[keep]
    order = np.lexsort((step, wall, group))  # by tag, then wall time, then step
    group, wall, step, value = group[order], wall[order], step[order], value[order]
    bounds = np.flatnonzero(np.diff(group)) + 1
    series = {}
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, group.shape[0]], strict=True):
        if hi > lo:
            series[names[group[lo]]] = ScalarSeries(wall[lo:hi], step[lo:hi], value[lo:hi])
    return series


def merge_series(parts: Sequence[ScalarSeries]) -> ScalarSeries:
    """Concatenate series (several files or folders of one run), sorted by (wall_time, step)."""
    if len(parts) == 1:
        return parts[0]
    wall = np.concatenate([p.wall_time for p in parts])
    step = np.concatenate([p.step for p in parts])
    value = np.concatenate([p.value for p in parts])
    order = np.lexsort((step, wall))
    return ScalarSeries(wall[order], step[order], value[order])


# ---------------------------------------------------------------------------------------------- writing
def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_scalar_event(tag: str, step: int, wall_time: float, value: float) -> bytes:
    """A serialised Event with one ``simple_value`` (what torch's SummaryWriter.add_scalar writes)."""
    tag_bytes = tag.encode()
    summary_value = b"\x0a" + _varint(len(tag_bytes)) + tag_bytes + b"\x15" + struct.pack("<f", value)
    summary = b"\x0a" + _varint(len(summary_value)) + summary_value
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + b"\x2a" + _varint(len(summary)) + summary


def encode_record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def write_scalar_event_file(path: str | os.PathLike[str], events: Iterable[tuple[str, int, float, float]]) -> Path:
    """Write (tag, step, wall_time, value) events as a TFRecord event file, atomically (temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    events = list(events)
    first_wall = events[0][2] if events else 0.0
    version = b"\x09" + struct.pack("<d", first_wall) + b"\x1a\x0dbrain.Event:2"  # file_version, as TF writes
    chunks = [encode_record(version)]
    chunks.extend(encode_record(encode_scalar_event(*event)) for event in events)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(chunks))
    os.replace(tmp, path)
    return path
