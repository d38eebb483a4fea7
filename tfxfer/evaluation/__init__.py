"""Evaluation reports of a classifier: per-class precision, recall, F1, the confusion matrix, AUCs.

- `metrics.classification_report`: the report (a JSON-ready dict) from labels and probabilities;
- `report_text.format_report`: that report as a plain-text table for a console;
- `keras_model.evaluate_model`: the report of a Keras model on a `(inputs, labels)` dataset;
- `exported_model.evaluate_export`: the report of an exported SavedModel, through the
  `serving_default` signature TF Serving runs;
- `labelled_data` and `tfds_examples`: the raw labelled examples an export is evaluated on.

A multi-task classifier (or export) gets one report per task, each on the examples
labelled for that task (`metrics.multi_task_report`): `{"tasks": {task: report}, ...}`.
"""
