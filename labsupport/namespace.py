"""The learner namespace: the one statement of how a learner's resources are named.

A room runs many learners on one shared stack (`lab hub`): each learner's Kafka topics,
Cassandra keyspaces, consumer groups, checkpoints and Spark applications must be their
own, and their metrics must say whose they are. The hub sets ``LAB_LEARNER`` in each
learner's server from ``JUPYTERHUB_USER``; on a laptop it is empty and every name below
is exactly the name the lab has always used (the single-learner identity).

The rules, once:

* **The learner's slug** (`slug`): a name that is already lowercase ASCII letters and
  digits, starting with a letter, at most ``SLUG_KEPT_MAX`` long, and not shaped like a
  sanitised name, is kept as it is (``alice`` → ``alice``). Any other name is sanitised:
  lowercased, everything but ``[a-z0-9]`` dropped, cut to ``SLUG_STEM_MAX``, prefixed with
  ``l`` if it does not start with a letter, then ``x`` and 8 hex digits of the SHA-256 of
  the raw name appended (``Alice.Smith@uni`` → ``alicesmithunix1f0c…``). A kept name can
  never end in ``x`` + 8 hex digits and a sanitised one always does, so a kept name never
  meets a sanitised one; two sanitised names meet only if their hashes do, which
  `check_distinct` refuses for a room's learner list before anyone logs in.
* **Names** get the suffix ``__<slug>`` (`SEPARATOR`): ``events__alice``,
  ``lesson03__alice``. A slug has no ``_``, and a shared base name may not contain
  ``__`` (refused), so a namespaced name is never a shared one, nor another learner's.
  The suffix keeps names CQL identifiers (``[a-z0-9_]``, at most 48 characters for a
  keyspace: a longer one is refused with the remedy) and legal Kafka topic names.
* **Checkpoints** of a learner live under ``<root>/learners/<slug>``.
* **Metrics** carry the label ``learner="<slug>"``; a single learner's carry none (in
  Prometheus an empty label is no label), so their series are unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from labsupport.errors import LabError

#: the variable the hub sets in each learner's server (from JUPYTERHUB_USER)
LEARNER_ENV = "LAB_LEARNER"
SEPARATOR = "__"
LEARNERS_DIR = "learners"
METRIC_LABEL = "learner"
#: Cassandra's limit on a keyspace (and table) name
CQL_NAME_MAX = 48
#: Kafka's limit on a topic name
TOPIC_MAX = 249
SLUG_KEPT_MAX = 16
SLUG_STEM_MAX = 7
_HASH_HEX = 8

_KEPT = re.compile(rf"[a-z][a-z0-9]{{0,{SLUG_KEPT_MAX - 1}}}")
_SANITISED_TAIL = re.compile(rf"x[0-9a-f]{{{_HASH_HEX}}}$")
_CQL_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


class NamespaceError(LabError):
    """A name that cannot be namespaced as the contract says (too long, reserved)."""


def slug(learner: str) -> str:
    """The learner's name as it appears in every namespaced name (the module's rule)."""
    if _KEPT.fullmatch(learner) and not _SANITISED_TAIL.search(learner):
        return learner
    stem = re.sub(r"[^a-z0-9]", "", learner.lower())[:SLUG_STEM_MAX]
    if not stem[:1].isalpha():
        stem = "l" + stem[: SLUG_STEM_MAX - 1]
    return f"{stem}x{hashlib.sha256(learner.encode()).hexdigest()[:_HASH_HEX]}"


def check_distinct(learners: Iterable[str]) -> list[str]:
    """The learners' slugs, in order; refuses a list where two learners would share one
    (the same name twice, or two names whose sanitised hashes meet)."""
    seen: dict[str, str] = {}
    for name in learners:
        s = slug(name)
        if s in seen:
            raise NamespaceError(f"learners {seen[s]!r} and {name!r} would share the namespace {s!r}",
                                 "rename one of them in the learner list")
        seen[s] = name
    return list(seen)


@dataclass(frozen=True)
class Namespace:
    """Every namespaced name of one learner; ``Namespace("")`` is the single learner."""

    learner: str = ""

    @classmethod
    def of(cls, cfg) -> "Namespace":
        """The namespace of a lab config (its ``learner``, i.e. ``LAB_LEARNER``)."""
        return cls(cfg.learner.strip())

    @property
    def slug(self) -> str:
        return slug(self.learner) if self.learner else ""

    @property
    def shared(self) -> bool:
        """True for the single learner: every name is today's name."""
        return not self.learner

    def name(self, base: str) -> str:
        """``base`` in this namespace: itself for the single learner, else ``base__slug``."""
        if SEPARATOR in base:
            raise NamespaceError(f"{base!r} contains {SEPARATOR!r}, which marks a learner's namespace",
                                 f"name the resource without {SEPARATOR!r}")
        return base if self.shared else f"{base}{SEPARATOR}{self.slug}"

    def topic(self, base: str) -> str:
        name = self.name(base)
        if not _TOPIC_NAME.fullmatch(name) or len(name) > TOPIC_MAX:
            raise NamespaceError(f"{name!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; "
                                 f"at most {TOPIC_MAX})", "choose a shorter topic name of those characters")
        return name

    def keyspace(self, base: str) -> str:
        """A Cassandra keyspace: an unquoted CQL identifier, at most 48 characters."""
        name = self.name(base.lower())
        if not _CQL_NAME.fullmatch(name) or len(name) > CQL_NAME_MAX:
            raise NamespaceError(f"keyspace {name!r} is not a CQL name of at most {CQL_NAME_MAX} characters "
                                 "(a letter, then letters, digits, '_')",
                                 f"shorten the base name {base!r} (the learner suffix takes "
                                 f"{len(name) - len(base)} characters)")
        return name

    def consumer_group(self, base: str) -> str:
        return self.name(base)

    def app_name(self, base: str) -> str:
        """A Spark application (and query) name."""
        return self.name(base)

    def checkpoint_root(self, root: str) -> str:
        """Where this learner's checkpoints live under the lab's checkpoint root (a path
        or a Hadoop URI such as s3a://bucket/checkpoints: joined with '/')."""
        return root if self.shared else f"{root.rstrip('/')}/{LEARNERS_DIR}/{self.slug}"

    def metric_labels(self) -> dict[str, str]:
        """Labels a learner's metrics carry: none for the single learner."""
        return {} if self.shared else {METRIC_LABEL: self.slug}
