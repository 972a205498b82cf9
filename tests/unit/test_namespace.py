"""The learner namespace (labsupport.namespace): every namespaced name pinned, the single
learner's names unchanged, hostile user names sanitised without collisions."""

from __future__ import annotations

import hashlib
import re

import pytest

from labsupport.config import LabConfig
from labsupport.namespace import (CQL_NAME_MAX, LEARNER_ENV, Namespace, NamespaceError, check_distinct,
                                  slug)

ALICE = Namespace("alice")
SOLO = Namespace("")


def _hash8(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def test_the_learner_comes_from_lab_learner_through_the_config():
    assert LEARNER_ENV == "LAB_LEARNER"
    cfg = LabConfig.from_env({"LAB_LEARNER": "alice"})
    assert Namespace.of(cfg) == ALICE
    assert Namespace.of(LabConfig.from_env({})).shared
    # a child process started from the learner's kernel works in the same namespace
    assert LabConfig.from_env(cfg.to_env()).learner == "alice"


@pytest.mark.parametrize("base", ["events", "lesson02-1764662400", "lesson04_fixed", "streamlab"])
def test_a_single_learner_sees_every_name_as_today(base):
    assert SOLO.topic(base) == base
    if "-" not in base:  # a keyspace is a CQL name
        assert SOLO.keyspace(base) == base
    assert SOLO.consumer_group(base) == base
    assert SOLO.app_name(base) == base
    assert SOLO.checkpoint_root("/lab/checkpoints") == "/lab/checkpoints"
    assert SOLO.metric_labels() == {}


def test_every_namespaced_name_of_a_learner():
    assert ALICE.topic("events") == "events__alice"
    assert ALICE.topic("lesson02-1764662400") == "lesson02-1764662400__alice"
    assert ALICE.keyspace("streamlab") == "streamlab__alice"
    assert ALICE.keyspace("lesson04_fixed") == "lesson04_fixed__alice"
    assert ALICE.consumer_group("lesson03") == "lesson03__alice"
    assert ALICE.app_name("lesson03") == "lesson03__alice"
    assert ALICE.checkpoint_root("/lab/checkpoints") == "/lab/checkpoints/learners/alice"
    assert ALICE.checkpoint_root("s3a://bucket/ck/") == "s3a://bucket/ck/learners/alice"
    assert ALICE.metric_labels() == {"learner": "alice"}


@pytest.mark.parametrize("raw", ["alice", "bob2", "a", "x" * 16])
def test_a_name_already_safe_is_kept(raw):
    assert slug(raw) == raw


@pytest.mark.parametrize("raw, stem", [
    ("Alice", "alice"),                        # JupyterHub would lowercase it; LAB_LEARNER may not
    ("alice.smith@uni.edu", "alicesm"),
    ("anna-lena", "annalen"),
    ("2fast", "l2fast"),                       # a CQL name starts with a letter
    ("émile", "mile"),
    ("'; DROP KEYSPACE streamlab; --", "dropkey"),
    ("../../etc", "etc"),
    ("x" * 17, "xxxxxxx"),                     # too long to keep
    ("bobx1a2b3c4d", "bobx1a2"),               # shaped like a sanitised name: sanitised too
    ("__", "l"),
])
def test_any_other_name_is_sanitised_with_a_hash_of_the_raw_name(raw, stem):
    s = slug(raw)
    assert s == f"{stem}x{_hash8(raw)}"
    assert re.fullmatch(r"[a-z][a-z0-9]{0,15}", s)


def test_a_kept_name_never_meets_a_sanitised_one():
    # the one name a sanitised 'Bob' could be mistaken for, typed as a user name
    forged = slug("Bob")
    assert slug(forged) != forged
    assert len(set(check_distinct(["Bob", "bob", forged]))) == 3


def test_a_room_whose_learners_would_share_a_namespace_is_refused():
    with pytest.raises(NamespaceError, match="'alice' and 'alice' would share"):
        check_distinct(["alice", "bob", "alice"])
    assert check_distinct(["alice", "Alice", "alice.smith"]) == ["alice", slug("Alice"), slug("alice.smith")]


def test_hostile_names_stay_legal_topic_and_cql_names():
    for raw in ["Robert'); DROP TABLE students;--", "日本語", "a b\tc\n", "x" * 300]:
        ns = Namespace(raw)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", ns.keyspace("lesson03"))
        assert re.fullmatch(r"[a-zA-Z0-9._-]+", ns.topic("events"))
        assert "/" not in ns.slug and ".." not in ns.checkpoint_root("/ck")[4:]


def test_a_keyspace_too_long_for_cassandra_is_refused_with_the_remedy():
    base = "k" * (CQL_NAME_MAX - len("__alice"))
    assert len(ALICE.keyspace(base)) == CQL_NAME_MAX
    with pytest.raises(NamespaceError, match="shorten the base name"):
        ALICE.keyspace(base + "k")


def test_the_separator_is_reserved_in_base_names():
    with pytest.raises(NamespaceError, match="marks a learner's namespace"):
        SOLO.topic("events__bob")
