/**
 * Sample databases shaped like the runbook's inventory (§2): crypto_exchange with its eight
 * tables, and small kong and goalert databases. Used by the drill; sizes are parameters.
 */

export function cryptoExchangeSql(users = 2000): string {
    const orders = users * 10;
    return `
CREATE TYPE order_side AS ENUM ('buy', 'sell');
CREATE TYPE order_status AS ENUM ('open', 'filled', 'cancelled');
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    full_name text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    refresh_token text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE verification_codes (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    channel text NOT NULL CHECK (channel IN ('email', 'sms')),
    code text NOT NULL,
    used boolean NOT NULL DEFAULT false
);
CREATE TABLE wallets (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    asset text NOT NULL,
    balance numeric(38, 18) NOT NULL DEFAULT 0,
    UNIQUE (user_id, asset)
);
CREATE TABLE transactions (
    id bigserial PRIMARY KEY,
    wallet_id bigint NOT NULL REFERENCES wallets(id),
    kind text NOT NULL,
    amount numeric(38, 18) NOT NULL,
    meta jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    pair text NOT NULL,
    side order_side NOT NULL,
    price numeric(20, 8) NOT NULL,
    qty numeric(20, 8) NOT NULL,
    status order_status NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE trades (
    id bigserial PRIMARY KEY,
    buy_order_id bigint NOT NULL,
    sell_order_id bigint NOT NULL,
    price numeric(20, 8) NOT NULL,
    qty numeric(20, 8) NOT NULL,
    executed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kyc_submissions (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    status text NOT NULL,
    document bytea,
    submitted_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO users (email, password_hash, full_name)
SELECT 'trader' || g || '@krystalinex.test', md5('pw' || g), (ARRAY['Ana Souza', 'Björn Ek', '李雷', 'Zoë Adebayo'])[1 + g % 4]
FROM generate_series(1, ${users}) g;
INSERT INTO sessions SELECT md5('s' || g)::uuid, 1 + g % ${users}, md5('t' || g), now() + interval '7 days' FROM generate_series(1, ${users}) g;
INSERT INTO verification_codes (user_id, channel, code, used) SELECT 1 + g % ${users}, (ARRAY['email', 'sms'])[1 + g % 2], lpad((g * 7919 % 1000000)::text, 6, '0'), g % 3 = 0 FROM generate_series(1, ${users}) g;
INSERT INTO wallets (user_id, asset, balance) SELECT u, a, round((random() * 10)::numeric, 18) FROM generate_series(1, ${users}) u, unnest(ARRAY['BTC', 'ETH', 'USDT']) a;
INSERT INTO transactions (wallet_id, kind, amount, meta) SELECT 1 + g % (${users} * 3), (ARRAY['deposit', 'withdrawal', 'trade'])[1 + g % 3], round((random() * 2)::numeric, 18), jsonb_build_object('tx', md5(g::text)) FROM generate_series(1, ${orders}) g;
INSERT INTO orders (user_id, pair, side, price, qty, status) SELECT 1 + g % ${users}, (ARRAY['BTC-USDT', 'ETH-USDT'])[1 + g % 2], (ARRAY['buy', 'sell']::order_side[])[1 + g % 2], round((20000 + random() * 40000)::numeric, 8), round((random())::numeric, 8), (ARRAY['open', 'filled', 'cancelled']::order_status[])[1 + g % 3] FROM generate_series(1, ${orders}) g;
INSERT INTO trades (buy_order_id, sell_order_id, price, qty) SELECT 2 * g, 2 * g - 1, 30000, 0.5 FROM generate_series(1, ${orders / 4}) g;
INSERT INTO kyc_submissions (user_id, status, document) SELECT g, (ARRAY['pending', 'approved', 'rejected'])[1 + g % 3], decode(md5(g::text), 'hex') FROM generate_series(1, ${users}) g;
`;
}

export const KONG_SQL = `
CREATE TABLE services (id uuid PRIMARY KEY, name text UNIQUE, host text, port int);
CREATE TABLE routes (id uuid PRIMARY KEY, service_id uuid REFERENCES services(id), paths text[]);
INSERT INTO services SELECT md5('svc' || g)::uuid, 'service-' || g, 'svc' || g || '.krystalinex.svc', 8080 FROM generate_series(1, 20) g;
INSERT INTO routes SELECT md5('rt' || g)::uuid, md5('svc' || (1 + g % 20))::uuid, ARRAY['/api/v1/r' || g] FROM generate_series(1, 60) g;
`;

export const GOALERT_SQL = `
CREATE TABLE services (id uuid PRIMARY KEY, name text);
CREATE TABLE alerts (id bigserial PRIMARY KEY, service_id uuid REFERENCES services(id), summary text, status text, created_at timestamptz DEFAULT now());
INSERT INTO services SELECT md5('g' || g)::uuid, 'on-call-' || g FROM generate_series(1, 5) g;
INSERT INTO alerts (service_id, summary, status) SELECT md5('g' || (1 + g % 5))::uuid, 'alert ' || g, (ARRAY['triggered', 'active', 'closed'])[1 + g % 3] FROM generate_series(1, 500) g;
`;

/** The runbook's targets (§1): RPO per database, RTO for one database. */
export const RUNBOOK_TARGETS: Record<string, { rpoHours: number; schedule: string }> = {
    crypto_exchange: { rpoHours: 6, schedule: "every 6 h" },
    kong: { rpoHours: 24, schedule: "daily" },
    goalert: { rpoHours: 24, schedule: "daily" },
};
export const SINGLE_DB_RTO_MINUTES = 30;
