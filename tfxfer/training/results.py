"""What `fine_tune` returns: `PhaseResult` per phase, `FineTuneResult` for the run.

Plain data in a module of its own, so that the engine, which makes them, and
`backup`, which writes phase 1's to disk and reads it back, both import it.
"""

import dataclasses


@dataclasses.dataclass
class PhaseResult:
    """What one phase did.

    Attributes:
        history: dict. Per-epoch metrics, as in `keras.callbacks.History.history`.
        seconds: float. Wall time of the phase.
        epochs_run: int. Epochs actually run (early stopping may cut them).
        final_metrics: dict. Validation metrics of the weights the phase ended
            with (after best-weight restore), `val_`-prefixed.
        trainable_parameters: int. Trainable parameter count during the phase.
    """

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    final_metrics: dict[str, float]
    trainable_parameters: int

    def summary(self) -> dict:
        return {**self.final_metrics, "seconds": round(self.seconds, 2),
                "epochs_run": self.epochs_run, "trainable_parameters": self.trainable_parameters}


@dataclasses.dataclass
class FineTuneResult:
    """What a `fine_tune` run did: `phase1`, and `phase2` (None when `fine_tune_epochs` is 0)."""

    phase1: PhaseResult
    phase2: PhaseResult | None

    def metrics(self) -> dict:
        """`{"phase1": {...}, "phase2": {...}}` with `val_accuracy`, `val_loss`, `seconds`, ..."""
        result = {"phase1": self.phase1.summary()}
        if self.phase2 is not None:
            result["phase2"] = self.phase2.summary()
        return result
