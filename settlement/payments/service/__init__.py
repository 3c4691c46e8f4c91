"""Payment services. Functions that take a Session never commit; the flows
(:mod:`.flows`, :mod:`.payouts`, :mod:`.janitor`, :mod:`.notifications`) own their
transactions because they call rails between them."""
