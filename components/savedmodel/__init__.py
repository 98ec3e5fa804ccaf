"""SavedModel rules shared by export, inference and serving (the TF Serving version layout)."""
