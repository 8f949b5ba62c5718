"""graphlab.valuation (see README: methods table)."""
