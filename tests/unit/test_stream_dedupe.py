"""The sink's rule for events the source published twice (labsupport.stream.dedupe): pure logic."""

from labsupport.stream.dedupe import first_copies, key_of, not_counted_before
from labsupport.stream.sink import EventRow


def row(event_id, partition, offset, event_ms=1_000, bucket="2026-11-25T07", shard=0):
    return EventRow(bucket, shard, event_ms, event_id, "sensor-1", "reading", 1.0, "{}", partition, offset,
                    "2026-11-25")


def test_within_a_batch_one_copy_per_id_the_lowest_kafka_position():
    a1, a2, b = row("a", 1, 9), row("a", 0, 50), row("b", 0, 3)
    kept = first_copies([a1, b, a2])
    assert sorted(kept) == sorted([a2, b])  # (0, 50) < (1, 9): the same choice on every replay


def test_a_key_stored_from_another_record_is_neither_written_nor_counted():
    earlier, again = row("a", 0, 10), row("a", 0, 500)
    assert not_counted_before([again], {key_of(earlier): (0, 10)}) == []


def test_a_key_stored_from_this_very_record_counts_again_a_replay_or_a_fresh_checkpoint():
    r = row("a", 0, 10)
    assert not_counted_before([r], {key_of(r): (0, 10)}) == [r]


def test_keys_not_stored_are_written_and_counted():
    r, other = row("a", 0, 10), row("b", 0, 11)
    assert not_counted_before([r, other], {key_of(row("c", 0, 1)): (0, 1)}) == [r, other]


def test_the_same_id_at_another_event_time_is_another_key_and_is_not_dropped_here():
    """Stored under two keys: the sink cannot see it by key; the audit reports it (stored_twice)."""
    first, moved = row("a", 0, 10, event_ms=1_000), row("a", 0, 11, event_ms=61_000)
    assert not_counted_before([moved], {key_of(first): (0, 10)}) == [moved]


def test_the_read_is_cut_where_event_times_are_far_apart_so_one_late_event_reads_little():
    from labsupport.stream.dedupe import spans

    rows = [row("a", 0, 1, event_ms=1_000), row("b", 0, 2, event_ms=3_000), row("late", 0, 3, event_ms=900_000),
            row("c", 0, 4, event_ms=2_000, shard=1)]
    assert sorted(spans(rows, gap_ms=5_000)) == [("2026-11-25T07", 0, 1_000, 3_000),
                                                 ("2026-11-25T07", 0, 900_000, 900_000),
                                                 ("2026-11-25T07", 1, 2_000, 2_000)]


def test_a_key_stored_from_another_copy_in_the_same_batch_is_this_batchs_and_counts_once():
    """Poison splitting writes parts of a batch before the whole: the stored copy may be
    the batch's later one; the batch still counts the id, once."""
    from labsupport.stream.dedupe import positions_by_id

    low, high = row("a", 0, 10), row("a", 0, 50)
    kept = first_copies([low, high])
    assert not_counted_before(kept, {key_of(high): (0, 50)}, positions_by_id([low, high])) == [low]
    assert not_counted_before(kept, {key_of(high): (0, 7)}, positions_by_id([low, high])) == []
