"""``settlement demo``: a marketplace day played end to end through the real service.

* :mod:`.plan`: the day decided from the seed (payments, discrepancies);
* :mod:`.stack`: what runs (database, simulators, API, worker) and its settings;
* :mod:`.day`: the day over HTTP (keys, rates, sellers, payments, a payout);
* :mod:`.settle` and :mod:`.statement`: settlement files, the bank statement, reconciliation;
* :mod:`.audit`: sealing, the export and its offline verification;
* :mod:`.summary` and :mod:`.report`: the numbers read back, and the HTML page;
* :mod:`.runner`: the whole in order.
"""
