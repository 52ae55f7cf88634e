"""Front ends from other libraries onto jrobust's engine (each an optional extra)."""
