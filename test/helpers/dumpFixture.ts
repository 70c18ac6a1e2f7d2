/**
 * A database built to make row counting from a dump hard: empty tables, partitions (two levels)
 * and inheritance (a parent with rows of its own), values with newlines, tabs, carriage returns,
 * backslashes and `\.`, a single-column table of empty strings, bytea with every byte value,
 * rows wider than several MiB (spanning zlib blocks and stream chunks), unusual identifiers
 * (schema `we.ird`, mixed case, spaces, quotes, SQL keywords), large objects, an unlogged table,
 * a materialized view, and SQL text (function bodies, comments) that looks like COPY data.
 */
export const DUMP_FIXTURE = String.raw`
CREATE SCHEMA "we.ird";
CREATE TABLE "we.ird"."Mixed Case" (id int, "Col ""q""" text);
INSERT INTO "we.ird"."Mixed Case" SELECT g, E'line1\nline2\ttab\\back\r' || g FROM generate_series(1, 1000) g;
CREATE TABLE "we.ird"."it's a ""table"" FROM stdin; x" (v text);
INSERT INTO "we.ird"."it's a ""table"" FROM stdin; x" VALUES ('a'), (E'\\.'), ('.'), (NULL);
CREATE TABLE "select" ("from" int);
INSERT INTO "select" VALUES (1), (2);
CREATE TABLE empty_one (id int);
CREATE TABLE "Empty Two" (a text, b bytea);
CREATE TABLE single_col (t text);
INSERT INTO single_col VALUES (''), (''), (''), (E'\\.'), ('\.'), (E'\n'), (NULL);

CREATE TABLE parent (id int, note text);
CREATE TABLE child (extra int) INHERITS (parent);
CREATE TABLE grandchild () INHERITS (child);
INSERT INTO parent SELECT g, 'p' FROM generate_series(1, 7) g;
INSERT INTO child SELECT g, 'c', g FROM generate_series(1, 11) g;
INSERT INTO grandchild SELECT g, 'g', g FROM generate_series(1, 13) g;

CREATE TABLE events (id int, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY HASH (id);
CREATE TABLE events_2025_h0 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
INSERT INTO events SELECT g, DATE '2025-03-01' + (g % 500), repeat('e', g % 40) FROM generate_series(1, 30000) g;

CREATE TABLE bytes (id int, b bytea);
INSERT INTO bytes SELECT 1, decode(string_agg(lpad(to_hex(x), 2, '0'), ''), 'hex') FROM generate_series(0, 255) x;
INSERT INTO bytes SELECT 2, E'\\x0a0d5c2e0a'::bytea;
INSERT INTO bytes SELECT 3, ''::bytea;

-- Rows of several MiB: incompressible text and bytea, so they span many zlib output blocks.
CREATE TABLE wide (id int, t text, b bytea);
INSERT INTO wide SELECT r,
    (SELECT string_agg(md5(random()::text || s), E'\n') FROM generate_series(1, 200000) s),
    (SELECT decode(string_agg(md5(random()::text || s), ''), 'hex') FROM generate_series(1, 150000) s)
FROM generate_series(1, 2) r;
INSERT INTO wide VALUES (3, 'narrow', NULL);

CREATE TABLE many (id bigint, v text);
INSERT INTO many SELECT g, md5(g::text) FROM generate_series(1, 200000) g;

CREATE UNLOGGED TABLE scratch (id int);
INSERT INTO scratch SELECT generate_series(1, 5);

CREATE MATERIALIZED VIEW many_mv AS SELECT id FROM many WHERE id < 100;

SET check_function_bodies = off;
CREATE FUNCTION tricky() RETURNS text LANGUAGE sql AS $body$
SELECT 'x';
COPY public.many (id, v) FROM stdin;
1	fake
\.
-- PostgreSQL database dump complete
SELECT pg_catalog.lo_open('1', 131072);
$body$;
COMMENT ON TABLE many IS E'looks like data:\nCOPY public.many (id) FROM stdin;\n42\n\\.\n-- PostgreSQL database dump complete\nSELECT pg_catalog.lo_open(''2'', 1);';
CREATE TABLE defaults (d text DEFAULT $$;COPY x FROM stdin;$$, e text DEFAULT 'it''s; -- not a comment');
INSERT INTO defaults DEFAULT VALUES;

SELECT lo_from_bytea(0, 'hello'), lo_from_bytea(0, ''), lo_from_bytea(0, decode(repeat('ab', 600000), 'hex'));
`;

/** Every table whose rows a dump holds, with `count(*) FROM ONLY` (its own rows, not its children's), as JSON. */
export const ONLY_COUNTS = String.raw`
SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname, 'rows',
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint)
    ORDER BY n.nspname, c.relname), '[]')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`;
