"""graphlab.distributed (see README: methods table)."""
