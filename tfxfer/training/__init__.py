"""The one training engine shared by every tfxfer model.

Imports run one way, from `distillation` and `engine` down:
- `distillation`: `distill`, a student trained on a teacher's probabilities
  (`teacher_targets`, run once) with `distillation_loss`, through `engine`'s phases.
- `engine`: `fine_tune`, runs the planned phases (freeze, restore or train, back up).
- `planner`: checks `fine_tune`'s arguments and data once, builds the `Phase`s.
- `phase`: `Phase`, everything one phase trains with.
- `results`: `PhaseResult` and `FineTuneResult`, plain data.
- `backup`: per-phase backups and phase 1's done marker, for resuming a killed run.
- `loop`: `TrainLoop`, the training loop of every `tf.distribute` strategy.
- `feature_cache`: phase 1 on features the frozen backbone computed once.
- `input_checks`, `class_weights`, `layerwise_lr`, `lora`, `losses`,
  `schedules`, `callbacks`: one concern each.
"""
