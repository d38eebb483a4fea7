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
        seconds: float. Wall time of the phase: its training and, on cached
            features, their extraction; a learning-rate sweep that chose its
            rate is not counted (its own seconds are in `learning_rate_sweep`).
        epochs_run: int. Epochs actually run (early stopping may cut them).
        final_metrics: dict. Validation metrics of the weights the phase ended
            with (after best-weight restore), `val_`-prefixed.
        trainable_parameters: int. Trainable parameter count during the phase.
        learning_rate: float | None. The peak learning rate the phase trained
            with (the finder's suggestion when it chose it).
        learning_rate_sweep: dict | None. The learning-rate finder's sweep
            (`LearningRateSweep.to_dict()`) when it chose this phase's rate.

    Example:

    ```python
    result = tfxfer.fine_tune(model, data.train, data.validation)
    phase = result.phase2 or result.phase1
    print(phase.epochs_run, phase.seconds, phase.final_metrics["val_accuracy"])
    print(phase.history["val_loss"])  # one value per epoch, as in Keras' History
    ```
    """

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    final_metrics: dict[str, float]
    trainable_parameters: int
    learning_rate: float | None = None
    learning_rate_sweep: dict | None = None

    def summary(self) -> dict:
        summary = {**self.final_metrics, "seconds": round(self.seconds, 2), "epochs_run": self.epochs_run,
                   "trainable_parameters": self.trainable_parameters, "learning_rate": self.learning_rate}
        if self.learning_rate_sweep is not None:
            summary["learning_rate_suggestion"] = self.learning_rate_sweep["suggestion"]
        return summary


@dataclasses.dataclass
class FineTuneResult:
    """What a `fine_tune` run did: `phase1`, and `phase2` (None when `fine_tune_epochs` is 0).

    Example:

    ```python
    result = tfxfer.fine_tune(model, data.train, data.validation)
    print(result.metrics()["phase1"]["val_accuracy"], result.phase1.epochs_run)
    if result.phase2 is not None:  # None when fine_tune_epochs=0
        print(result.phase2.final_metrics["val_loss"], result.phase2.seconds)
    ```
    """

    phase1: PhaseResult
    phase2: PhaseResult | None

    def metrics(self) -> dict:
        """`{"phase1": {...}, "phase2": {...}}` with `val_accuracy`, `val_loss`, `seconds`, ..."""
        result = {"phase1": self.phase1.summary()}
        if self.phase2 is not None:
            result["phase2"] = self.phase2.summary()
        return result

    def histories(self) -> list[dict[str, list[float]]]:
        """Each phase's per-epoch metrics, phase 1 first (what the training-curves picture draws)."""
        return [phase.history for phase in (self.phase1, self.phase2) if phase is not None]
