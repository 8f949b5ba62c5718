"""graphlab.sampling (see README: methods table)."""
