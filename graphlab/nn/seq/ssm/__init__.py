"""Diagonal-SSM operators: parallel scan, S4D kernel, HiPPO / PTD initialisation, naive twins."""
