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
