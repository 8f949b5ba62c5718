"""graphlab.optim (see README: methods table)."""
