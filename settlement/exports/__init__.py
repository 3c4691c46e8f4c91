"""Auditor exports of the ledger (journal, trial balance, account statements as CSV,
JSON Lines or SAF-T style XML) with a signed manifest, and their verifiers."""
