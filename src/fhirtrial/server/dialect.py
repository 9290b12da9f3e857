"""Everything that differs between the SQLite and the PostgreSQL store, in one place.

The stores share their queries (:mod:`fhirtrial.server.store` reads, writes and searches with
``?`` placeholders; :mod:`fhirtrial.server.sqlsearch` builds WHERE clauses) and differ only in
what is here: the schema's DDL and its versioned migrations, the placeholder style, planner
hints, how a server-assigned id is numbered and how a transaction locks what it is about to
decide on. Both schemas have the same tables, columns and indexes but for two: SQLite adds the
full-text index ``idx_text`` for token ``:text`` (PostgreSQL has word rows in idx_token
instead, see TEXT_INDEX); PostgreSQL adds a trigram index for ``:contains`` and declares
every text column ``COLLATE "C"`` so that prefix ranges (``norm >= ? AND norm < ? ||
U+10FFFF``) and ``ORDER BY id`` compare code points, as SQLite's BINARY collation does — both
stores then sort and page identically.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- SQLite

#: SQLite's ``:text`` on token parameters (a phrase that starts at any word of a code's
#: display or a concept's text) was an index range scan over word-suffix rows: each text
#: indexed again from each of its words on (``searchparams.word_suffixes``), 55 of a
#: generated study's 86 index rows, a third of a bulk load's time. An FTS5 index answers the
#: same phrases: one document per resource (its row id is the resource's ``current.rid``)
#: holding the words of its token texts, each word tagged with its parameter
#: (``searchparams.text_document``), so a phrase or a one-letter prefix reads one parameter's
#: terms only. Contentless (idx_token holds the texts, from which the store rebuilds a
#: document to delete it), no per-row sizes (no ranking); the texts come normalised
#: (``norm_text``) and split into words by the store, so the tokenizer only has to keep the
#: tags' ``_`` in a word. The store keeps it in step with idx_token in the same transaction
#: (store._SQLiteTx, store.BulkWriter); the data step (store._text_index) removes the word
#: rows and builds it. PostgreSQL keeps its word rows.
TEXT_INDEX = """
CREATE VIRTUAL TABLE IF NOT EXISTS idx_text USING fts5(words, content='', columnsize=0,
    tokenize="unicode61 remove_diacritics 0 tokenchars '_'");
"""

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS current (
    rid INTEGER PRIMARY KEY,
    fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
    vid INTEGER NOT NULL, last_updated TEXT NOT NULL, body BLOB,
    UNIQUE (fv, type, id)
);
CREATE TABLE IF NOT EXISTS versions (
    fv TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, vid INTEGER NOT NULL,
    last_updated TEXT NOT NULL, method TEXT NOT NULL, body BLOB,
    PRIMARY KEY (fv, type, id, vid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_type_time ON versions (fv, type, last_updated);
-- live resources only, in (fv, type, id) order: a search's count and its id-ordered page walk
-- this index (no sort, no tombstones) and fetch the large bodies of the page's rows only
CREATE INDEX IF NOT EXISTS current_live ON current (fv, type, id) WHERE body IS NOT NULL;
-- Index tables. Every index below carries the columns a search compares plus rid, so that
-- matching never reads an index table's own rows: (sp, value..., rid) indexes answer "which
-- rows match" by a covering range scan; (rid, sp, value...) indexes answer "does this row
-- match" by one covering seek (the probe of a page walk in id order), and serve deletes and
-- sort keys.
CREATE TABLE IF NOT EXISTS idx_token (rid INTEGER NOT NULL, sp TEXT NOT NULL,
    system TEXT, code TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS idx_token_code_c ON idx_token (sp, code, system, rid)
    WHERE code IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_token_system_c ON idx_token (sp, system, rid)
    WHERE code IS NULL AND system IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_token_text_c ON idx_token (sp, text, rid);
CREATE INDEX IF NOT EXISTS idx_token_rid_c ON idx_token (rid, sp, code, system, text);
-- :text on token parameters: a full-text index of idx_token's texts (see TEXT_INDEX)
""" + TEXT_INDEX + """
CREATE TABLE IF NOT EXISTS idx_string (rid INTEGER NOT NULL, sp TEXT NOT NULL,
    norm TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_norm_c ON idx_string (sp, norm, rid);
CREATE INDEX IF NOT EXISTS idx_string_exact_c ON idx_string (sp, exact, rid);
CREATE INDEX IF NOT EXISTS idx_string_rid_c ON idx_string (rid, sp, norm, exact);
CREATE TABLE IF NOT EXISTS idx_date (rid INTEGER NOT NULL, sp TEXT NOT NULL,
    lo TEXT NOT NULL, hi TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_lo_c ON idx_date (sp, lo, hi, rid);
CREATE INDEX IF NOT EXISTS idx_date_hi_c ON idx_date (sp, hi, lo, rid);
CREATE INDEX IF NOT EXISTS idx_date_rid_c ON idx_date (rid, sp, lo, hi);
CREATE TABLE IF NOT EXISTS idx_ref (rid INTEGER NOT NULL, sp TEXT NOT NULL,
    ttype TEXT, tid TEXT, raw TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_ref_target_c ON idx_ref (sp, tid, ttype, rid);
CREATE INDEX IF NOT EXISTS idx_ref_rid_c ON idx_ref (rid, sp, tid, ttype, raw);
CREATE TABLE IF NOT EXISTS idx_number (rid INTEGER NOT NULL, sp TEXT NOT NULL,
    value REAL NOT NULL, system TEXT, code TEXT);
CREATE INDEX IF NOT EXISTS idx_number_value_c ON idx_number (sp, value, rid);
CREATE INDEX IF NOT EXISTS idx_number_rid_c ON idx_number (rid, sp, value);
CREATE TABLE IF NOT EXISTS idx_geo (rid INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_geo_lat_c ON idx_geo (lat, lon, rid);
-- a near search seeks each 1-degree latitude strip of its box for the box's longitudes
CREATE INDEX IF NOT EXISTS idx_geo_cell_c ON idx_geo (CAST(lat + 90 AS INTEGER), lon, lat, rid);
CREATE INDEX IF NOT EXISTS idx_geo_rid ON idx_geo (rid);
-- stores written before schema version 2: each old index is a prefix of its replacement
DROP INDEX IF EXISTS idx_token_code;
DROP INDEX IF EXISTS idx_token_text;
DROP INDEX IF EXISTS idx_token_rid;
DROP INDEX IF EXISTS idx_string_norm;
DROP INDEX IF EXISTS idx_string_exact;
DROP INDEX IF EXISTS idx_string_rid;
DROP INDEX IF EXISTS idx_date_lo;
DROP INDEX IF EXISTS idx_date_hi;
DROP INDEX IF EXISTS idx_date_rid;
DROP INDEX IF EXISTS idx_ref_target;
DROP INDEX IF EXISTS idx_ref_rid;
DROP INDEX IF EXISTS idx_number_value;
DROP INDEX IF EXISTS idx_number_rid;
DROP INDEX IF EXISTS idx_geo_lat;
CREATE TABLE IF NOT EXISTS seq (fv TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""

# ---------------------------------------------------------------- PostgreSQL

_C = 'TEXT COLLATE "C"'

PG_SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS current (
    rid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    fv {_C} NOT NULL, type {_C} NOT NULL, id {_C} NOT NULL,
    vid INTEGER NOT NULL, last_updated {_C} NOT NULL, body BYTEA,
    UNIQUE (fv, type, id)
);
CREATE TABLE IF NOT EXISTS versions (
    fv {_C} NOT NULL, type {_C} NOT NULL, id {_C} NOT NULL, vid INTEGER NOT NULL,
    last_updated {_C} NOT NULL, method {_C} NOT NULL, body BYTEA,
    PRIMARY KEY (fv, type, id, vid)
);
CREATE INDEX IF NOT EXISTS versions_type_time ON versions (fv, type, last_updated);
CREATE INDEX IF NOT EXISTS current_live ON current (fv, type, id) INCLUDE (rid)
    WHERE body IS NOT NULL;
CREATE TABLE IF NOT EXISTS idx_token (rid BIGINT NOT NULL, sp {_C} NOT NULL,
    system {_C}, code {_C}, text {_C});
CREATE INDEX IF NOT EXISTS idx_token_code_c ON idx_token (sp, code, system, rid)
    WHERE code IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_token_system_c ON idx_token (sp, system, rid)
    WHERE code IS NULL AND system IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_token_text_c ON idx_token (sp, text, rid);
CREATE INDEX IF NOT EXISTS idx_token_rid_c ON idx_token (rid, sp, code, system, text);
CREATE TABLE IF NOT EXISTS idx_string (rid BIGINT NOT NULL, sp {_C} NOT NULL,
    norm {_C} NOT NULL, exact {_C} NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_norm_c ON idx_string (sp, norm, rid);
CREATE INDEX IF NOT EXISTS idx_string_exact_c ON idx_string (sp, exact, rid);
CREATE INDEX IF NOT EXISTS idx_string_rid_c ON idx_string (rid, sp, norm, exact);
CREATE TABLE IF NOT EXISTS idx_date (rid BIGINT NOT NULL, sp {_C} NOT NULL,
    lo {_C} NOT NULL, hi {_C} NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_lo_c ON idx_date (sp, lo, hi, rid);
CREATE INDEX IF NOT EXISTS idx_date_hi_c ON idx_date (sp, hi, lo, rid);
CREATE INDEX IF NOT EXISTS idx_date_rid_c ON idx_date (rid, sp, lo, hi);
CREATE TABLE IF NOT EXISTS idx_ref (rid BIGINT NOT NULL, sp {_C} NOT NULL,
    ttype {_C}, tid {_C}, raw {_C} NOT NULL);
CREATE INDEX IF NOT EXISTS idx_ref_target_c ON idx_ref (sp, tid, ttype, rid);
CREATE INDEX IF NOT EXISTS idx_ref_rid_c ON idx_ref (rid, sp, tid, ttype, raw);
CREATE TABLE IF NOT EXISTS idx_number (rid BIGINT NOT NULL, sp {_C} NOT NULL,
    value DOUBLE PRECISION NOT NULL, system {_C}, code {_C});
CREATE INDEX IF NOT EXISTS idx_number_value_c ON idx_number (sp, value, rid);
CREATE INDEX IF NOT EXISTS idx_number_rid_c ON idx_number (rid, sp, value);
CREATE TABLE IF NOT EXISTS idx_geo (rid BIGINT NOT NULL, lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS idx_geo_lat_c ON idx_geo (lat, lon, rid);
CREATE INDEX IF NOT EXISTS idx_geo_rid ON idx_geo (rid);
-- server-assigned ids, one counter per FHIR version (as SQLite's seq table): a sequence is
-- never rolled back nor locked, so concurrent creates on several servers do not queue on it
CREATE SEQUENCE IF NOT EXISTS seq_r5;
CREATE SEQUENCE IF NOT EXISTS seq_r4;
-- great-circle distance for `near`, the same formula as fhirtrial.server.store.haversine_km
CREATE OR REPLACE FUNCTION fhirtrial_km(lat1 float8, lon1 float8, lat2 float8, lon2 float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
    power(sin(radians(lat2 - lat1) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2))))
$$
"""

#: optional: where the role may not create extensions, :contains falls back to a scan
PG_TRIGRAM = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS idx_string_trgm ON idx_string USING gin (norm gin_trgm_ops)",
]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a store's schema: applied once, in version order, in one transaction."""

    version: int
    sql: str
    why: str


#: A near search's box, read from the (lat, lon) index, is a latitude band around the whole
#: globe: at 30,000 studies 4,500 sites for a 100 km radius, at 550,000 some 80,000. Keyed by
#: the 1-degree latitude strip first, the index lets the search seek each strip of its box for
#: the box's longitudes only (sqlsearch._near): the rows read stay near the box's own. The
#: expression is the same text in both dialects (CAST rounds in PostgreSQL and truncates in
#: SQLite; the search lists the strips both ways give).
GEO_CELL_INDEX = ("CREATE INDEX IF NOT EXISTS idx_geo_cell_c ON idx_geo "
                  "((CAST(lat + 90 AS INTEGER)), lon, lat, rid);")

#: Each body stored once: the current version's is in ``current`` only (store.SQLTx._supersede
#: gives a version its body when a newer one replaces it). Before, ``versions`` held a second
#: copy of every current body: at registry size half the store, which then outgrew the page
#: cache. Same text in both dialects. SQLite reuses the freed pages; ``VACUUM`` returns them.
BODIES_ONCE = """
UPDATE versions SET body = NULL WHERE body IS NOT NULL AND EXISTS (SELECT 1 FROM current c
    WHERE c.fv = versions.fv AND c.type = versions.type AND c.id = versions.id
    AND c.vid = versions.vid);
"""

#: The token code index holds the rows that have a code. A token's text is indexed again from
#: each of its words on (the rows of :text word matching, see ``searchparams.word_suffixes``),
#: rows without system or code that only the text index reads: 48 of a generated study's 62
#: token rows, and 80 % of the code index's size (56 -> 10 MB at 20,000 studies; a bulk
#: load's time did not change measurably). Searches by code (``code = ?``) use the partial
#: index as before; a search by system alone (``system|``) reads it for the coded rows and
#: the small index of the rows that have a system and no code (a Coding without code) for
#: the others.
TOKEN_CODE_PARTIAL = """
DROP INDEX IF EXISTS idx_token_code_c;
CREATE INDEX IF NOT EXISTS idx_token_code_c ON idx_token (sp, code, system, rid)
    WHERE code IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_token_system_c ON idx_token (sp, system, rid)
    WHERE code IS NULL AND system IS NOT NULL;
"""

#: SQLite: version 2's script is idempotent and brings a version-0/1 store (older indexes)
#: up to date too; a later change appends a Migration.
SQLITE_MIGRATIONS = [
    Migration(2, SQLITE_SCHEMA, "tables, covering indexes, live-resource index"),
    Migration(3, "", "token texts also indexed from each word on, for :text word matching "
                     "(a data step: store._add_word_rows)"),
    Migration(4, GEO_CELL_INDEX, "latitude-strip index for near searches"),
    Migration(5, BODIES_ONCE, "each body stored once (the current version's in current only)"),
    Migration(6, TOKEN_CODE_PARTIAL, "token code index over coded rows only"),
    Migration(7, TEXT_INDEX, "full-text index for :text instead of word-suffix token rows "
                             "(a data step: store._text_index)"),
]
#: PostgreSQL estimates (sp = ? AND code = ?) as if the two were independent: 4 rows where
#: 324 (2,000 studies) or 16,000 (100,000) match, and then probes one criterion's index once
#: per match of the other (31 ms instead of 7 ms at 2,000 studies). Multi-column statistics
#: give the planner the frequent pairs (statuses, phases, sponsors).
PG_SCHEMA_V2 = """
CREATE STATISTICS IF NOT EXISTS idx_token_sp_code (mcv) ON sp, code FROM idx_token;
CREATE STATISTICS IF NOT EXISTS idx_ref_sp_tid (mcv) ON sp, tid FROM idx_ref;
ANALYZE idx_token;
ANALYZE idx_ref
"""

#: A page walk probes each row it passes with ``EXISTS (rid = c.rid AND sp = ? AND code = ?)``.
#: On idx_token_rid_c, which also carries system and display text (and the word rows of
#: :text matching), that probe descends an 830 MB, four-level btree at 100,000 studies; on
#: (rid, sp, code), whose duplicates PostgreSQL's btree deduplication folds (the word rows
#: have no code), a 100 MB three-level one: 4 -> 3 pages and 17 -> 4 microseconds a probe, a
#: status-and-phase page 18 -> 5 ms. The wide index stays for :text probes (index-only
#: there); a system|code probe reads the row only where rid, sp and code matched.
#: A page's row ids are found from index entries alone (PgStore._page_select): matches
#: collected from a search index need each row's type, id and liveness, which
#: current_rid_live carries (the table row itself holds the body).
PG_SCHEMA_V3 = """
CREATE INDEX IF NOT EXISTS idx_token_rid_code ON idx_token (rid, sp, code);
CREATE INDEX IF NOT EXISTS current_rid_live ON current (rid) INCLUDE (fv, type, id)
    WHERE body IS NOT NULL;
"""

PG_MIGRATIONS = [
    Migration(1, PG_SCHEMA_V1, "tables, covering indexes, id sequences, fhirtrial_km()"),
    Migration(2, PG_SCHEMA_V2, "multi-column statistics for token codes and references"),
    Migration(3, PG_SCHEMA_V3, "narrow indexes for page walks' token probes and for the page "
                               "ids of collected matches"),
    Migration(4, GEO_CELL_INDEX, "latitude-strip index for near searches"),
    Migration(5, BODIES_ONCE, "each body stored once (the current version's in current only)"),
    Migration(6, TOKEN_CODE_PARTIAL, "token code index over coded rows only"),
]


def latest(migrations: list[Migration]) -> int:
    return migrations[-1].version


def statements(script: str) -> list[str]:
    """A migration script → its statements (``;`` at a line end separates them)."""
    out, cur = [], []
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur).strip().rstrip(";"))
            cur = []
    tail = "\n".join(cur).strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


# ---------------------------------------------------------------- query-level differences

@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    #: the planner hint that makes a page walk read the live-resource index in id order
    live_hint: str
    #: what ends a page walk's per-row probe, ``EXISTS (SELECT 1 … WHERE rid = c.rid …)``, so
    #: that it stays one: PostgreSQL turns an EXISTS into a join it may hash over every match
    #: (185 ms instead of 9 ms for two token criteria over 100,000 studies) unless the
    #: subquery has an OFFSET; then the plan walks the live-resource index in id order,
    #: probing each row, and stops at the page's end (no planner settings around the query)
    probe_tail: str = ""
    #: how much cheaper a walk's probe is than a match the matches-driven page reads: walk
    #: when (rows walked) x (criteria) <= walk_weight x (matches). The matches-driven query
    #: reads every row id of its first criterion (at least the matches, usually many more:
    #: 4,920 for 805 matches of two token criteria over 30,000 studies) and looks each up in
    #: ``current`` (a random page read); a walk probes the covering index in id order.
    #: SQLite, measured there: walk 3.0 ms, matches-driven 17.7 ms (1,505 probes, 805
    #: matches). PostgreSQL keeps 1: its matches-driven plan hashes the id lists instead
    walk_weight: float = 1.0
    #: ``:text`` on token parameters reads the FTS5 index ``idx_text`` (SQLite) rather than
    #: word-suffix rows of idx_token (PostgreSQL)
    text_fts: bool = False

    def sql(self, query: str) -> str:
        """The shared ``?``-placeholder SQL in this dialect's parameter style."""
        if self.name == "sqlite":
            return query
        return _pg_sql(query)


_PG_CACHE: dict[str, str] = {}


def _pg_sql(query: str) -> str:
    out = _PG_CACHE.get(query)
    if out is None:
        # the shared SQL never holds a literal '?' and '%' only in LIKE patterns passed as
        # parameters; a literal '%' in the text would still be kept by doubling it
        out = query.replace("%", "%%").replace("?", "%s")
        if len(_PG_CACHE) < 4096:
            _PG_CACHE[query] = out
    return out


SQLITE = Dialect("sqlite", live_hint="INDEXED BY current_live", walk_weight=4.0,
                 text_fts=True)
POSTGRES = Dialect("postgresql", live_hint="", probe_tail=" OFFSET 0")
