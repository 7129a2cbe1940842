"""`openbank-sandbox load`: Locust replays a day of partners' traffic (fixtures/traffic/), and
afterwards the run is reconciled: every payment acknowledged to a user exists exactly once and
the ledger balances."""
