"""Pictures of a training run, drawn headless from plain numbers (see `tfxfer.reports.plots`)."""
