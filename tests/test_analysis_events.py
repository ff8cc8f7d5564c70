"""The exact event reader against independent writers (torch SummaryWriter, tensorboard protobufs) and damage."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tensorboard_masked_crc32c
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter

from trackrl.analysis.events import (
    EventFileWarning,
    encode_record,
    encode_scalar_event,
    event_files_in,
    masked_crc32c,
    read_event_file,
    write_scalar_event_file,
)


def test_crc32c_matches_the_standard_check_value_and_tensorboard() -> None:
    crc = 0xE3069283  # CRC-32C of b"123456789" (the catalogue check value)
    masked = ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == masked
    for data in (b"", b"\x00" * 17, bytes(range(256))):
        assert masked_crc32c(data) == tensorboard_masked_crc32c(data)


def test_reads_torch_summary_writer_scalars_exactly(tmp_path: Path) -> None:
    writer = SummaryWriter(str(tmp_path))
    for i in range(50):
        writer.add_scalar("Training/loss", 1.0 / (i + 1), global_step=i * 1000, walltime=1_000.0 + 2.5 * i)
        if i % 10 == 0:
            writer.add_scalar("cumul_training_hours", i / 100, global_step=i * 1000, walltime=1_000.0 + 2.5 * i)
    writer.close()
    (path,) = event_files_in(tmp_path)
    scalars = read_event_file(path)
    assert set(scalars.series) == {"Training/loss", "cumul_training_hours"}
    loss = scalars.series["Training/loss"]
    np.testing.assert_array_equal(loss.step, np.arange(50) * 1000)
    np.testing.assert_array_equal(loss.wall_time, 1_000.0 + 2.5 * np.arange(50))
    np.testing.assert_array_equal(loss.value, (1.0 / (np.arange(50) + 1)).astype(np.float32))
    np.testing.assert_array_equal(scalars.series["cumul_training_hours"].step, [0, 10_000, 20_000, 30_000, 40_000])
    assert scalars.problems == []


def _tensor_event(tag: str, step: int, wall: float, tensor: tensor_pb2.TensorProto, plugin: str | None) -> bytes:
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if plugin is not None:
        value.metadata.plugin_data.plugin_name = plugin
    return event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[value])).SerializeToString()


def test_reads_tf2_tensor_scalars_and_ignores_other_plugins(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1.tf2"
    scalar_shape = tensor_shape_pb2.TensorShapeProto()
    with open(path, "wb") as handle:
        writer = RecordWriter(handle)
        writer.write(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
        float_val = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=scalar_shape, float_val=[24.5])
        writer.write(_tensor_event("Race/eval_race_time_trained_A01", 10, 2.0, float_val, "scalars"))
        # Metadata only on the first event of a tag (as TF2 may write): later ones still count.
        content = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=scalar_shape,
                                         tensor_content=struct.pack("<d", 23.25))  # fmt: skip
        writer.write(_tensor_event("Race/eval_race_time_trained_A01", 20, 3.0, content, None))
        # A 1-element vector under another plugin is not a scalar.
        vector = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[7.0],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))  # fmt: skip
        writer.write(_tensor_event("hist", 20, 3.0, vector, "histograms"))
        text = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=scalar_shape, float_val=[1.0])
        writer.write(_tensor_event("not_scalars_plugin", 20, 3.0, text, "text"))
        writer.flush()
    series = read_event_file(path).series
    assert set(series) == {"Race/eval_race_time_trained_A01"}
    np.testing.assert_array_equal(series["Race/eval_race_time_trained_A01"].value, [24.5, 23.25])
    np.testing.assert_array_equal(series["Race/eval_race_time_trained_A01"].step, [10, 20])


def test_more_than_10000_events_per_tag_are_all_counted(tmp_path: Path) -> None:
    n = 25_000  # EventAccumulator's default reservoir would keep 10,000
    steps = np.arange(n) * 7
    events = [("Race/explo_race_time_trained_A01", int(s), 100.0 + i, float(i % 97)) for i, s in enumerate(steps)]
    path = write_scalar_event_file(tmp_path / "events.out.tfevents.1.big", events)
    series = read_event_file(path).series["Race/explo_race_time_trained_A01"]
    assert len(series) == n
    np.testing.assert_array_equal(series.step, steps)
    assert series.value.sum() == sum(i % 97 for i in range(n))


def _records(n: int) -> list[bytes]:
    return [encode_record(encode_scalar_event("x", i, 10.0 + i, float(i))) for i in range(n)]


def test_corrupt_record_is_skipped_with_a_warning_and_the_rest_is_read(tmp_path: Path) -> None:
    records = _records(10)
    damaged = bytearray(records[4])
    damaged[-6] ^= 0xFF  # inside the data: its CRC no longer matches
    path = tmp_path / "events.out.tfevents.1.corrupt"
    path.write_bytes(b"".join(records[:4]) + bytes(damaged) + b"".join(records[5:]))
    with pytest.warns(EventFileWarning, match="1 corrupt record"):
        scalars = read_event_file(path)
    np.testing.assert_array_equal(scalars.series["x"].step, [0, 1, 2, 3, 5, 6, 7, 8, 9])


def test_truncated_file_uses_the_readable_part(tmp_path: Path) -> None:
    records = _records(6)
    whole = b"".join(records)
    path = tmp_path / "events.out.tfevents.1.truncated"
    path.write_bytes(whole[: len(whole) - len(records[-1]) // 2])  # a writer killed mid-record
    with pytest.warns(EventFileWarning, match="truncated"):
        scalars = read_event_file(path)
    np.testing.assert_array_equal(scalars.series["x"].value, [0, 1, 2, 3, 4])


def test_corrupt_length_ends_the_file_with_a_warning(tmp_path: Path) -> None:
    records = _records(5)
    damaged = bytearray(records[2])
    damaged[0] ^= 0x01  # the length: its CRC fails, so nothing after it can be framed
    path = tmp_path / "events.out.tfevents.1.badlength"
    path.write_bytes(b"".join(records[:2]) + bytes(damaged) + b"".join(records[3:]))
    with pytest.warns(EventFileWarning, match="corrupt record header"):
        scalars = read_event_file(path)
    np.testing.assert_array_equal(scalars.series["x"].step, [0, 1])


def test_same_events_as_event_accumulator_keeping_all(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rng = np.random.default_rng(3)
    writer = SummaryWriter(str(tmp_path))
    tags = ["Race/explo_race_time_trained_A01", "RL/avg_Q_trained_A01", "Performance/learner_percentage_training"]
    for i in range(3000):
        tag = tags[int(rng.integers(len(tags)))]
        writer.add_scalar(tag, float(rng.normal()), global_step=int(i * 13), walltime=50.0 + i * 0.1)
    writer.close()
    accumulator = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    accumulator.Reload()
    (path,) = event_files_in(tmp_path)
    series = read_event_file(path).series
    assert sorted(series) == sorted(accumulator.Tags()["scalars"])
    for tag in tags:
        expected = accumulator.Scalars(tag)
        np.testing.assert_array_equal(series[tag].step, [e.step for e in expected])
        np.testing.assert_array_equal(series[tag].wall_time, [e.wall_time for e in expected])
        np.testing.assert_array_equal(series[tag].value, [e.value for e in expected])
