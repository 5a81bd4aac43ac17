"""Stand-in: generate.py imports these for -opt DiffGrad / AdamP only (not benchmarked)."""
DiffGrad = AdamP = RAdam = None
