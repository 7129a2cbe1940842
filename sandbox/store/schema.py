"""Tables of the sandbox, in SQL both SQLite and PostgreSQL accept, and the triggers that make
the database itself refuse an unbalanced journal entry; created on start if absent.

The journal: an entry's legs (`postings`) are written first, then its header
(`journal_entries`), whose insert trigger checks that the legs are two or more and sum to zero
in each currency. A leg for an entry whose header exists is refused (an entry is closed once
written), legs are never updated, a leg is deleted only after its entry's header (an entry
goes whole), and a leg without a header fails the commit (a deferred foreign key): no bug
anywhere can commit an unbalanced entry. SQLite has no deferred triggers,
hence the header; PostgreSQL gets the same shape, so both backends refuse alike.
"""

from __future__ import annotations

from sandbox.store.base import StoreError, Transaction

#: Bumped when a table changes shape; a database made with another version is refused at start
#: (the sandbox keeps no migrations: its data is synthetic, a new --db costs nothing).
SCHEMA_VERSION = "6"

TABLES = (
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS partners (
        partner_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL,
        seed BIGINT NOT NULL,
        profile TEXT NOT NULL,
        created_at TEXT NOT NULL,
        redirect_uris TEXT NOT NULL,
        clock_offset_s BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY,
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        scopes TEXT NOT NULL,
        consent_id TEXT,
        customer_id TEXT,
        code_hash TEXT,
        expires_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS customers (
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        customer_id TEXT NOT NULL,
        ordinal BIGINT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        resident_id TEXT,
        uscc TEXT,
        birth_date TEXT,
        gender TEXT,
        mobile TEXT NOT NULL,
        address TEXT NOT NULL,
        external_card TEXT,
        external_bank TEXT,
        PRIMARY KEY (partner_id, customer_id))""",
    """CREATE TABLE IF NOT EXISTS accounts (
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        account_id TEXT NOT NULL,
        ordinal BIGINT NOT NULL,
        customer_id TEXT NOT NULL,
        account_number TEXT NOT NULL,
        account_class TEXT NOT NULL,
        product_name TEXT NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        opened_on TEXT NOT NULL,
        bound_account_number TEXT,
        balance_fen BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        PRIMARY KEY (partner_id, account_id),
        FOREIGN KEY (partner_id, customer_id) REFERENCES customers (partner_id, customer_id))""",
    """CREATE TABLE IF NOT EXISTS transactions (
        partner_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        transaction_id TEXT NOT NULL,
        movement_id TEXT NOT NULL,
        booked_at TEXT NOT NULL,
        booking_date TEXT NOT NULL,
        direction TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        balance_after_fen BIGINT NOT NULL,
        description TEXT NOT NULL,
        counterparty_name TEXT NOT NULL,
        counterparty_account TEXT,
        channel TEXT NOT NULL,
        PRIMARY KEY (partner_id, account_id, seq),
        FOREIGN KEY (partner_id, account_id) REFERENCES accounts (partner_id, account_id))""",
    # What each account sent and received per day ('2026-11-27') and per year ('2026'), added
    # to by every booking (the generated history's too), so the class caps cost one lookup
    # however long the history. A missing row is a period with no movement.
    """CREATE TABLE IF NOT EXISTS usage_totals (
        partner_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        period TEXT NOT NULL,
        out_fen BIGINT NOT NULL,
        non_bound_out_fen BIGINT NOT NULL,
        non_bound_in_fen BIGINT NOT NULL,
        PRIMARY KEY (partner_id, account_id, period))""",
    """CREATE TABLE IF NOT EXISTS journal_entries (
        partner_id TEXT NOT NULL,
        movement_id TEXT NOT NULL,
        booked_at TEXT NOT NULL,
        PRIMARY KEY (partner_id, movement_id))""",
    """CREATE TABLE IF NOT EXISTS postings (
        partner_id TEXT NOT NULL,
        movement_id TEXT NOT NULL,
        leg INTEGER NOT NULL,
        ledger_account TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        currency TEXT NOT NULL,
        booked_at TEXT NOT NULL,
        PRIMARY KEY (partner_id, movement_id, leg),
        FOREIGN KEY (partner_id, movement_id) REFERENCES journal_entries (partner_id, movement_id)
            DEFERRABLE INITIALLY DEFERRED)""",
    """CREATE TABLE IF NOT EXISTS payments (
        partner_id TEXT NOT NULL,
        payment_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        debtor_account_id TEXT NOT NULL,
        creditor_account_id TEXT,
        creditor_account_number TEXT NOT NULL,
        creditor_bank_code TEXT NOT NULL,
        creditor_name TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        currency TEXT NOT NULL,
        remittance_information TEXT,
        created_at TEXT NOT NULL,
        movement_id TEXT NOT NULL,
        refund_request_id TEXT,
        refund_movement_id TEXT,
        refunded_at TEXT,
        settles_at_ms BIGINT,
        settled_at TEXT,
        failure_code TEXT,
        failure_detail TEXT,
        return_movement_id TEXT,
        PRIMARY KEY (partner_id, payment_id),
        UNIQUE (partner_id, request_id))""",
    """CREATE TABLE IF NOT EXISTS operators (
        operator_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS controls (
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        subject TEXT NOT NULL,
        payments_closed INTEGER NOT NULL,
        single_limit_fen BIGINT,
        daily_limit_fen BIGINT,
        large_amount_fen BIGINT,
        velocity_count INTEGER,
        velocity_window_s INTEGER,
        risk_action TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (partner_id, subject))""",
    """CREATE TABLE IF NOT EXISTS risk_events (
        partner_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        action TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        request_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at TEXT NOT NULL,
        payment_id TEXT,
        PRIMARY KEY (partner_id, event_id))""",
    """CREATE TABLE IF NOT EXISTS callbacks (
        partner_id TEXT PRIMARY KEY REFERENCES partners (partner_id),
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    # The outbox: written in the same transaction as the payment it tells of, so an event
    # exists exactly when its payment change does; delivered from here by any server process.
    """CREATE TABLE IF NOT EXISTS notifications (
        event_id TEXT PRIMARY KEY,
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        type TEXT NOT NULL,
        payment_id TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        retry_base INTEGER NOT NULL,
        next_attempt_ms BIGINT NOT NULL,
        lease_until_ms BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        delivered_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        event_id TEXT NOT NULL REFERENCES notifications (event_id),
        attempt INTEGER NOT NULL,
        url TEXT NOT NULL,
        attempted_at TEXT NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (event_id, attempt))""",
    """CREATE TABLE IF NOT EXISTS consents (
        consent_id TEXT PRIMARY KEY,
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        status TEXT NOT NULL,
        permissions TEXT NOT NULL,
        customer_id TEXT,
        account_ids TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        transaction_from_date TEXT,
        transaction_to_date TEXT,
        created_at TEXT NOT NULL,
        status_updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS authorization_codes (
        code_hash TEXT PRIMARY KEY,
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        consent_id TEXT NOT NULL REFERENCES consents (consent_id),
        customer_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT,
        code_challenge_method TEXT,
        expires_at BIGINT NOT NULL,
        used INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        partner_id TEXT NOT NULL REFERENCES partners (partner_id),
        consent_id TEXT NOT NULL REFERENCES consents (consent_id),
        customer_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        revoked INTEGER NOT NULL,
        used INTEGER NOT NULL)""",
    # Failed secret and password checks, counted per client or customer in a fixed window:
    # in the database, so that every server process sees the same count.
    """CREATE TABLE IF NOT EXISTS failed_attempts (
        subject TEXT PRIMARY KEY,
        window_start BIGINT NOT NULL,
        failures INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS consents_by_partner ON consents (partner_id, created_at)",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt_ms)",
    "CREATE INDEX IF NOT EXISTS notifications_by_partner"
    " ON notifications (partner_id, created_us)",
    "CREATE INDEX IF NOT EXISTS payments_due ON payments (status, settles_at_ms)",
    "CREATE INDEX IF NOT EXISTS payments_by_day ON payments (partner_id, created_at)",
    "CREATE INDEX IF NOT EXISTS postings_by_account ON postings (partner_id, ledger_account)",
    "CREATE INDEX IF NOT EXISTS accounts_by_number ON accounts (partner_id, account_number)",
    "CREATE INDEX IF NOT EXISTS accounts_by_ordinal ON accounts (partner_id, ordinal)",
    "CREATE INDEX IF NOT EXISTS customers_by_resident_id ON customers (partner_id, resident_id)",
    "CREATE INDEX IF NOT EXISTS transactions_by_date"
    " ON transactions (partner_id, account_id, booking_date)",
)

# The journal's guards: what each refuses is in the module docstring.
# One pass over the entry's legs: fewer than two, or a currency whose legs do not sum to zero.
_UNBALANCED = """(SELECT COALESCE(SUM(legs), 0) < 2 OR COALESCE(MAX(ABS(total)), 0) <> 0
               FROM (SELECT COUNT(*) AS legs, SUM(amount_fen) AS total FROM postings
                     WHERE partner_id = NEW.partner_id AND movement_id = NEW.movement_id
                     GROUP BY currency) AS per_currency)"""
_CLOSED = """EXISTS (SELECT 1 FROM journal_entries WHERE partner_id = NEW.partner_id
                        AND movement_id = NEW.movement_id)"""
_WHOLE = _CLOSED.replace("NEW.", "OLD.")

TRIGGERS = {
    "sqlite": (
        f"""CREATE TRIGGER IF NOT EXISTS journal_entry_balances
            BEFORE INSERT ON journal_entries WHEN {_UNBALANCED}
            BEGIN SELECT RAISE(ABORT, 'unbalanced journal entry'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS journal_entry_is_closed
            BEFORE INSERT ON postings WHEN {_CLOSED}
            BEGIN SELECT RAISE(ABORT, 'leg for a journal entry already written'); END""",
        """CREATE TRIGGER IF NOT EXISTS journal_is_append_only
            BEFORE UPDATE ON postings
            BEGIN SELECT RAISE(ABORT, 'journal legs are never changed'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS journal_entry_goes_whole
            BEFORE DELETE ON postings WHEN {_WHOLE}
            BEGIN SELECT RAISE(ABORT, 'a leg goes only with its entry, after its header'); END""",
    ),
    "postgresql": (
        f"""CREATE OR REPLACE FUNCTION journal_entry_balances() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
              IF {_UNBALANCED} THEN
                RAISE EXCEPTION 'unbalanced journal entry %', NEW.movement_id
                  USING ERRCODE = 'check_violation';
              END IF;
              RETURN NEW;
            END $$""",
        """CREATE OR REPLACE TRIGGER journal_entry_balances BEFORE INSERT ON journal_entries
            FOR EACH ROW EXECUTE FUNCTION journal_entry_balances()""",
        f"""CREATE OR REPLACE FUNCTION journal_entry_is_closed() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
              IF {_CLOSED} THEN
                RAISE EXCEPTION 'leg for a journal entry already written: %', NEW.movement_id
                  USING ERRCODE = 'check_violation';
              END IF;
              RETURN NEW;
            END $$""",
        """CREATE OR REPLACE TRIGGER journal_entry_is_closed BEFORE INSERT ON postings
            FOR EACH ROW EXECUTE FUNCTION journal_entry_is_closed()""",
        """CREATE OR REPLACE FUNCTION journal_is_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
              RAISE EXCEPTION 'journal legs are never changed' USING ERRCODE = 'check_violation';
            END $$""",
        """CREATE OR REPLACE TRIGGER journal_is_append_only BEFORE UPDATE ON postings
            FOR EACH ROW EXECUTE FUNCTION journal_is_append_only()""",
        f"""CREATE OR REPLACE FUNCTION journal_entry_goes_whole() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
              IF {_WHOLE} THEN
                RAISE EXCEPTION 'a leg goes only with its entry, after its header: %',
                  OLD.movement_id USING ERRCODE = 'check_violation';
              END IF;
              RETURN OLD;
            END $$""",
        """CREATE OR REPLACE TRIGGER journal_entry_goes_whole BEFORE DELETE ON postings
            FOR EACH ROW EXECUTE FUNCTION journal_entry_goes_whole()""",
    ),
}


async def create_tables(tx: Transaction, dialect: str) -> None:
    """Every table and trigger, unless this database was made by a sandbox with tables of
    another shape."""
    await tx.execute(TABLES[0])  # meta, where the version is kept
    row = await tx.fetchone("SELECT value FROM meta WHERE key = 'schema'")
    found = row["value"] if row else None
    if found is None and await tx.fetchone("SELECT key FROM meta WHERE key = 'seed'"):
        found = "1"
    if found not in (None, SCHEMA_VERSION):
        raise StoreError(
            f"this database was made by another version of the sandbox (schema {found}, this "
            f"one needs {SCHEMA_VERSION}); serve a new --db: its banks are regenerated from "
            "the seed")
    if found == SCHEMA_VERSION:
        # Made whole, in one transaction, by a sandbox of this version. No DDL runs again: on
        # PostgreSQL even `CREATE INDEX IF NOT EXISTS` locks its table against writes, and a
        # `partner create` opening the store beside a busy server deadlocked with its bookings.
        return
    await tx.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
    for ddl in (*TABLES[1:], *TRIGGERS[dialect]):
        await tx.execute(ddl)
