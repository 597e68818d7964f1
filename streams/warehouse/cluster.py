"""The warehouse schema on a ClickHouse cluster: one-server migrations rewritten as ON CLUSTER DDL.

Migrations (`sql/NNNN_*.sql`) are written for one server. On a cluster (`ClickHouseEndpoint.cluster`) the
runner (streams/warehouse/migrations.py) passes every statement through `ClusterSchema.rewrite`, so a
migration's author never writes cluster DDL:

- `CREATE TABLE db.t (...) ENGINE = XMergeTree(args) ... ORDER BY key` becomes the shard-local table
  `db.t_local` with `ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', args)` on every
  server, and `db.t` a `Distributed(cluster, db, t_local, cityHash64(key))` table over them: writers and
  readers keep using `db.t`. The sharding key is the table's sorting key, the identity ReplacingMergeTree
  collapses on, so every copy and every version of a row lands on one shard: a retried insert is
  deduplicated there (replicated block deduplication, then the merge), and `FINAL`, which a Distributed table
  runs on each shard, gives the same answer as on one server.
- `ALTER TABLE db.t` changes `db.t_local` once per shard (`EachShard`: on one replica of each, whose
  replication log carries it to the others), not ON CLUSTER, where 18.16's DDL worker may run it on both
  replicas of a shard and then stop for good; a column change then re-creates the Distributed `db.t` from it,
  ON CLUSTER (18.16 refuses ALTER ON CLUSTER of a table that is not replicated when the shards are).
- `RENAME`, `DROP`, `CREATE VIEW` and `CREATE DATABASE` run ON CLUSTER on the matching local and Distributed
  tables; `INSERT ... SELECT` runs as written, through the Distributed tables (synchronously: the runner's
  connection sets `insert_distributed_sync`).
- Anything else (a materialized view, an engine without a replicated form, a table without a sorting key)
  is refused with a sentence saying why, rather than applied to one server of the cluster.

The rewrite needs to know each table's sorting key when it is altered or renamed in a later migration, so
the runner feeds it every migration from the first, applied or not, and runs only the pending ones' output.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

__all__ = ["LOCAL_SUFFIX", "ClusterSchema", "ClusterSchemaError", "EachShard", "bookkeeping_engine"]

LOCAL_SUFFIX: Final = "_local"
"""Name of a table's shard-local part: `readings` is Distributed over every shard's `readings_local`."""

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_QUALIFIED: Final = rf"(?P<db>{_NAME})\.(?P<name>{_NAME})"
_CREATE_DATABASE: Final = re.compile(rf"^CREATE\s+DATABASE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>{_NAME})\s*$", re.I)
_CREATE_TABLE: Final = re.compile(
    rf"^CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_QUALIFIED}\s*(?P<rest>.*)$", re.I | re.S
)
_CREATE_VIEW: Final = re.compile(
    rf"^CREATE\s+(?P<mat>MATERIALIZED\s+)?VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_QUALIFIED}\s+(?P<rest>.*)$",
    re.I | re.S,
)
_ALTER: Final = re.compile(rf"^ALTER\s+TABLE\s+{_QUALIFIED}\s+(?P<rest>.*)$", re.I | re.S)
_DROP: Final = re.compile(rf"^DROP\s+TABLE\s+(?P<ie>IF\s+EXISTS\s+)?{_QUALIFIED}\s*$", re.I)
_RENAME: Final = re.compile(r"^RENAME\s+TABLE\s+(?P<pairs>.*)$", re.I | re.S)
_RENAME_PAIR: Final = re.compile(rf"^\s*(?P<src>{_NAME}\.{_NAME})\s+TO\s+(?P<dst>{_NAME}\.{_NAME})\s*$", re.I)
_INSERT: Final = re.compile(r"^INSERT\s+INTO\s", re.I)
_ENGINE: Final = re.compile(rf"ENGINE\s*=\s*(?P<engine>{_NAME})\s*(?P<args>\()?", re.I)
_MERGE_TREE: Final = re.compile(
    r"^(?P<kind>Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree$"
)
_CLAUSE_END: Final = re.compile(r"\s(?:PARTITION\s+BY|PRIMARY\s+KEY|SAMPLE\s+BY|TTL|SETTINGS)\s", re.I)
_COLUMN_CHANGE: Final = re.compile(r"\b(?:ADD|DROP|MODIFY|RENAME|CLEAR|COMMENT)\s+COLUMN\b", re.I)


class EachShard(str):
    """A statement run once per shard, on one replica of it (`Warehouse.command_on_each_shard`), not ON CLUSTER:
    an ALTER of a replicated shard-local table, which reaches the shard's other replicas through its log."""

    __slots__ = ()


class ClusterSchemaError(ValueError):
    """A migration statement has no cluster form this rewrite knows; the message says which and why."""


def bookkeeping_engine(database: str) -> str:
    """`schema_migrations`' engine on a cluster: one replicated table on every server (all shards share its path)."""
    return f"ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/schema_migrations', '{{replica}}')"


@dataclasses.dataclass
class ClusterSchema:
    """Rewrites one-server statements for `cluster`, remembering each table's sharding key as it goes."""

    cluster: str
    sharding_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    """`db.table` -> the sharding expression of its Distributed table (tables created so far)."""
    views: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        if not re.fullmatch(_NAME, self.cluster):
            raise ClusterSchemaError(f"cluster name {self.cluster!r} is not a plain identifier (letters, digits, '_')")

    def rewrite(self, statement: str) -> list[str]:
        """The statements that do on the cluster what `statement` does on one server."""
        text = statement.strip()
        on = f"ON CLUSTER {self.cluster}"
        if match := _CREATE_DATABASE.match(text):
            return [f"CREATE DATABASE {match['ine'] or ''}{match['db']} {on}"]
        if match := _CREATE_TABLE.match(text):
            return self._create_table(match)
        if match := _CREATE_VIEW.match(text):
            if match["mat"]:
                raise ClusterSchemaError(
                    f"materialized view {match['db']}.{match['name']}: not supported on a cluster by the migration "
                    "rewrite (its source would be a Distributed table, firing on the inserting server only); use a "
                    "plain view, or write the shard-local form and extend streams/warehouse/cluster.py"
                )
            self.views.add(f"{match['db']}.{match['name']}")
            return [f"CREATE VIEW {match['ine'] or ''}{match['db']}.{match['name']} {on} {match['rest']}"]
        if match := _ALTER.match(text):
            return self._alter(match)
        if match := _DROP.match(text):
            return self._drop(match)
        if match := _RENAME.match(text):
            return self._rename(match["pairs"])
        if _INSERT.match(text):
            return [text]
        raise ClusterSchemaError(
            f"no cluster form for the statement {_first_words(text)!r}: the rewrite knows CREATE DATABASE/TABLE/VIEW, "
            "ALTER TABLE, RENAME TABLE, DROP TABLE and INSERT"
        )

    # --- per statement ------------------------------------------------------------------------------------

    def _create_table(self, match: re.Match[str]) -> list[str]:
        db, name, rest = match["db"], match["name"], match["rest"]
        table = f"{db}.{name}"
        if not rest.startswith("("):
            raise ClusterSchemaError(f"CREATE TABLE {table}: only a column list form is rewritten for a cluster")
        columns_end = _matching_paren(rest, 0)
        columns, tail = rest[: columns_end + 1], rest[columns_end + 1 :]
        engine = _ENGINE.search(tail)
        if engine is None:
            raise ClusterSchemaError(f"CREATE TABLE {table}: no ENGINE clause")
        kind = _MERGE_TREE.match(engine["engine"])
        if kind is None:
            raise ClusterSchemaError(
                f"CREATE TABLE {table}: engine {engine['engine']} has no replicated form; on a cluster every table "
                "is a (Replacing)MergeTree made Replicated, with a Distributed table over it"
            )
        args = ""
        after_engine = engine.end()
        if engine["args"]:
            close = _matching_paren(tail, engine.end() - 1)
            args = tail[engine.end() : close].strip()
            after_engine = close + 1
        order_by = _order_by(tail[after_engine:])
        if order_by is None or order_by.replace(" ", "") in {"tuple()", "()"}:
            raise ClusterSchemaError(
                f"CREATE TABLE {table}: no ORDER BY key to shard by (the key must be the row's identity, so a replayed "
                "row lands on the shard holding it)"
            )
        local = f"{name}{LOCAL_SUFFIX}"
        path = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
        replicated = f"ENGINE = Replicated{engine['engine']}({path}{', ' + args if args else ''})"
        key = f"cityHash64({_strip_tuple(order_by)})"
        self.sharding_keys[table] = key
        ine = match["ine"] or ""
        return [
            f"CREATE TABLE {ine}{db}.{local} ON CLUSTER {self.cluster} {columns} "
            f"{tail[: engine.start()].strip()}{' ' if tail[: engine.start()].strip() else ''}"
            f"{replicated}{tail[after_engine:]}".strip(),
            self._distributed(db, name, ine),
        ]

    def _alter(self, match: re.Match[str]) -> list[str]:
        db, name, rest = match["db"], match["name"], match["rest"]
        table = f"{db}.{name}"
        if table not in self.sharding_keys:
            raise ClusterSchemaError(f"ALTER TABLE {table}: no earlier migration created it as a cluster table")
        statements: list[str] = [EachShard(f"ALTER TABLE {db}.{name}{LOCAL_SUFFIX} {rest}")]
        if _COLUMN_CHANGE.search(rest):
            # The Distributed table keeps the columns it was made with: make it again from the changed local one.
            statements += [f"DROP TABLE IF EXISTS {table} ON CLUSTER {self.cluster}", self._distributed(db, name)]
        return statements

    def _drop(self, match: re.Match[str]) -> list[str]:
        table = f"{match['db']}.{match['name']}"
        if table in self.views:
            self.views.discard(table)
            return [f"DROP TABLE {match['ie'] or ''}{table} ON CLUSTER {self.cluster}"]
        self.sharding_keys.pop(table, None)
        return [
            f"DROP TABLE IF EXISTS {table} ON CLUSTER {self.cluster}",
            f"DROP TABLE {match['ie'] or ''}{table}{LOCAL_SUFFIX} ON CLUSTER {self.cluster}",
        ]

    def _rename(self, pairs_text: str) -> list[str]:
        pairs: list[tuple[str, str]] = []
        for pair in _split_top_level(pairs_text):
            match = _RENAME_PAIR.match(pair)
            if match is None:
                raise ClusterSchemaError(f"RENAME TABLE: cannot read {pair.strip()!r} as `db.a TO db.b`")
            pairs.append((match["src"], match["dst"]))
        for source, _ in pairs:
            if source not in self.sharding_keys:
                raise ClusterSchemaError(f"RENAME TABLE {source}: no earlier migration created it as a cluster table")
        local_pairs = ", ".join(f"{s}{LOCAL_SUFFIX} TO {d}{LOCAL_SUFFIX}" for s, d in pairs)
        statements = [f"RENAME TABLE {local_pairs} ON CLUSTER {self.cluster}"]
        # A Distributed table names its local table for good: drop those of both names, make the targets' again.
        for name in dict.fromkeys(n for pair in pairs for n in pair):
            statements.append(f"DROP TABLE IF EXISTS {name} ON CLUSTER {self.cluster}")
        keys = {d: self.sharding_keys[s] for s, d in pairs}
        for source, _ in pairs:
            self.sharding_keys.pop(source, None)
        for target, key in keys.items():
            self.sharding_keys[target] = key
            db, name = target.split(".")
            statements.append(self._distributed(db, name))
        return statements

    def _distributed(self, db: str, name: str, if_not_exists: str = "") -> str:
        key = self.sharding_keys[f"{db}.{name}"]
        return (
            f"CREATE TABLE {if_not_exists}{db}.{name} ON CLUSTER {self.cluster} AS {db}.{name}{LOCAL_SUFFIX} "
            f"ENGINE = Distributed({self.cluster}, {db}, {name}{LOCAL_SUFFIX}, {key})"
        )


# --- small parsing helpers ----------------------------------------------------------------------------------


def _matching_paren(text: str, start: int) -> int:
    """Index of the `)` closing the `(` at `start` (quotes respected)."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in "'\"`":
            close = text.find(char, i + 1)
            while close > 0 and text[close - 1] == "\\":
                close = text.find(char, close + 1)
            if close < 0:
                break
            i = close
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ClusterSchemaError(f"unbalanced parentheses in {_first_words(text[start:])!r}")


def _order_by(text: str) -> str | None:
    match = re.search(r"\bORDER\s+BY\s", text, re.I)
    if match is None:
        return None
    rest = " " + text[match.end() :] + " "
    end = _CLAUSE_END.search(rest)
    return (rest[: end.start()] if end else rest).strip()


def _strip_tuple(expression: str) -> str:
    """`(a, b)` -> `a, b` (cityHash64 takes the columns as arguments); a single column stays as it is."""
    if expression.startswith("(") and _matching_paren(expression, 0) == len(expression) - 1:
        return expression[1:-1].strip()
    return expression


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth, current = 0, list[str]()
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = list[str]()
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _first_words(text: str) -> str:
    words = " ".join(text.split()[:6])
    return words if len(words) <= 80 else words[:77] + "..."
