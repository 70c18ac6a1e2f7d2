/** A database exercising what a dump must carry: many types, views, functions, sequences. */
export const TYPES_SCHEMA = `
CREATE TYPE order_side AS ENUM ('buy', 'sell');
CREATE SCHEMA ledger;
CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    display_name text,
    balance numeric(38, 18) NOT NULL DEFAULT 0,
    profile jsonb,
    avatar bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    tags text[],
    uid uuid
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    account_id bigint REFERENCES accounts(id),
    side order_side NOT NULL,
    price numeric(20, 8),
    qty double precision,
    placed_on date,
    valid_during tsrange,
    note varchar(200)
);
CREATE TABLE ledger.entries (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount numeric, memo text);
CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE empty_table (id int);
CREATE SEQUENCE invoice_seq START 1000;
CREATE VIEW rich_accounts AS SELECT id, email FROM accounts WHERE balance > 1000;
CREATE FUNCTION account_total() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(balance) FROM accounts $$;

INSERT INTO accounts (email, display_name, balance, profile, avatar, tags, uid)
SELECT 'user' || g || '@example.com',
       (ARRAY['Zoë', '山田太郎', 'Ölaf ☃', 'O''Brien', E'tab\\there', 'emoji 🚀'])[1 + g % 6],
       (g * 12345.678901234567)::numeric(38, 18),
       jsonb_build_object('n', g, 'nested', jsonb_build_object('ok', g % 2 = 0), 'list', jsonb_build_array(1, 'two', null)),
       decode(md5(g::text), 'hex'),
       ARRAY['a', 'b' || g],
       md5(g::text)::uuid
FROM generate_series(1, 3000) g;
INSERT INTO accounts (email, display_name, balance) VALUES ('nulls@example.com', NULL, -0.000000000000000001);
INSERT INTO orders (account_id, side, price, qty, placed_on, valid_during, note)
SELECT 1 + g % 3000, (ARRAY['buy', 'sell']::order_side[])[1 + g % 2], g / 7.0, g * 1.5e-3, DATE '2026-01-01' + g % 300,
       tsrange('2026-01-01'::timestamp + g * interval '1 minute', '2026-01-02'::timestamp + g * interval '1 minute'), 'n' || g
FROM generate_series(1, 20000) g;
INSERT INTO ledger.entries (amount, memo) SELECT g * 0.01, repeat('x', g % 50) FROM generate_series(1, 5000) g;
-- About 12 MiB of incompressible bytes, so uploads span several 8 MiB parts.
INSERT INTO blobs SELECT r, (SELECT decode(string_agg(md5(random()::text || r || s), ''), 'hex') FROM generate_series(1, 4096) s) FROM generate_series(1, 190) r;
SELECT setval('invoice_seq', 4242);
`;

/** Every table's content as one digest, for comparing a restored copy with the source. */
export const TABLE_DIGESTS = `
SELECT n.nspname || '.' || c.relname AS t
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1`;

/** The roles of a cluster holding RICH_DATABASE: a login owner, groups, a member, settings. */
export const RICH_ROLES = `
CREATE ROLE exchange LOGIN PASSWORD 'not-in-any-backup';
CREATE ROLE app_reader NOLOGIN;
CREATE ROLE "Report Users" NOLOGIN;
CREATE ROLE auditor LOGIN CONNECTION LIMIT 2;
CREATE ROLE lo_keeper NOLOGIN;
GRANT app_reader TO auditor;
ALTER ROLE exchange SET statement_timeout = '30s';
COMMENT ON ROLE exchange IS 'the application''s login';
CREATE DATABASE rich OWNER exchange TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8';
ALTER DATABASE rich SET "TimeZone" TO 'Europe/Berlin';
ALTER DATABASE rich SET work_mem TO '8MB';
ALTER ROLE app_reader IN DATABASE rich SET search_path TO ledger, public;
COMMENT ON DATABASE rich IS 'ledger of the exchange';
REVOKE CONNECT, TEMPORARY ON DATABASE rich FROM PUBLIC;
GRANT CONNECT ON DATABASE rich TO app_reader, exchange;
`;

/**
 * A database exercising what a whole-database restore must carry besides rows: several schemas,
 * ICU collation (sort order), row-level security policies naming roles, grants and default
 * privileges, a foreign server with a user mapping, large objects, sequences (called and not),
 * a materialized view, backslashes in data and code, a table owned by a role whose name holds a
 * space, a large object owned by a role named nowhere else. Run inside "rich" (see RICH_ROLES).
 */
export const RICH_DATABASE = String.raw`
CREATE EXTENSION postgres_fdw;
CREATE SCHEMA ledger AUTHORIZATION exchange;
CREATE SCHEMA reporting AUTHORIZATION exchange;
CREATE SCHEMA "we.ird";
CREATE TYPE ledger.kind AS ENUM ('credit', 'debit');
SET ROLE exchange;
CREATE TABLE public.accounts (id bigserial PRIMARY KEY, name text NOT NULL, opened date);
CREATE TABLE ledger.entries (id bigserial PRIMARY KEY, account_id bigint REFERENCES public.accounts(id), kind ledger.kind, amount numeric(20, 8), memo text);
ALTER TABLE ledger.entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON ledger.entries FOR SELECT TO app_reader, "Report Users" USING (amount > 0);
CREATE POLICY writers ON ledger.entries FOR ALL TO exchange USING (true) WITH CHECK (amount IS NOT NULL);
GRANT USAGE ON SCHEMA ledger TO app_reader;
GRANT SELECT ON ledger.entries TO app_reader;
GRANT SELECT (id, name) ON public.accounts TO "Report Users";
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO app_reader;
CREATE TABLE reporting.daily (day date PRIMARY KEY, total numeric);
CREATE SEQUENCE public.invoice_seq START 1000;
SELECT setval('public.invoice_seq', 4242);
CREATE SEQUENCE public.never_used;
CREATE MATERIALIZED VIEW reporting.balances AS SELECT account_id, sum(amount) AS total FROM ledger.entries GROUP BY account_id;
CREATE FUNCTION public.escape_me() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN E'C:\\tmp\\! not a command'; END $f$;
RESET ROLE;
CREATE TABLE "we.ird"."T" (id int PRIMARY KEY, path text);
CREATE TABLE reporting.weekly (week int PRIMARY KEY, total numeric);
ALTER TABLE reporting.weekly OWNER TO "Report Users";
CREATE SERVER remote_ledger FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'ledger.internal', dbname 'ledger');
CREATE USER MAPPING FOR app_reader SERVER remote_ledger OPTIONS (user 'reader');
INSERT INTO public.accounts (name, opened) SELECT (ARRAY['Zoë', 'zebra', 'Äpfel', 'apple', 'Øre', 'oar'])[1 + g % 6] || ' ' || g, DATE '2026-01-01' + g FROM generate_series(1, 300) g;
INSERT INTO ledger.entries (account_id, kind, amount, memo) SELECT 1 + g % 300, (ARRAY['credit', 'debit']::ledger.kind[])[1 + g % 2], (g - 500) / 7.0, E'back\\slash\t' || g FROM generate_series(1, 1000) g;
INSERT INTO "we.ird"."T" VALUES (1, E'C:\\Users\\x'), (2, NULL);
INSERT INTO reporting.weekly SELECT g, g * 70 FROM generate_series(1, 5) g;
INSERT INTO reporting.daily SELECT DATE '2026-01-01' + g, g * 10 FROM generate_series(0, 30) g;
REFRESH MATERIALIZED VIEW reporting.balances;
SELECT lo_from_bytea(70001, 'the first large object');
SELECT lo_from_bytea(70002, decode(repeat('00ff', 5000), 'hex'));
ALTER LARGE OBJECT 70001 OWNER TO exchange;
ALTER LARGE OBJECT 70002 OWNER TO lo_keeper;
COMMENT ON LARGE OBJECT 70001 IS 'a scanned contract';
GRANT SELECT ON LARGE OBJECT 70002 TO app_reader;
`;

/** The database's own properties, as one comparable text (owner, encoding, locale, settings, comment, ACL). */
export const DATABASE_PROPERTIES = `
SELECT concat_ws(' | ', pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datlocprovider, d.datcollate, d.datctype, d.daticulocale,
    d.datconnlimit, d.datacl::text, shobj_description(d.oid, 'pg_database'),
    (SELECT string_agg(coalesce(r.rolname, '*') || '=' || array_to_string(s.setconfig, ','), '; ' ORDER BY r.rolname)
       FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid))
FROM pg_database d WHERE d.datname = current_database()`;
