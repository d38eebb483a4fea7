"""The flags both recipes share, defined once, and the steps both take with them.

A recipe defines them with its own defaults, then its own flags, and reads
`flags.FLAGS` as usual:

    training_flags.define_flags(data_help="Image folders ...", backbone="mobilenet_v2",
                                backbone_help="...", batch_size=32, training=FineTuneConfig(), ...)
    ...
    training_flags.check_paths()          # first: unusable paths fail before any work
    tfxfer.seed_everything(FLAGS.seed, deterministic=FLAGS.deterministic)
    strategy, global_batch = training_flags.create_strategy()
    config = training_flags.fine_tune_config(global_batch)

Only flags that mean the same in every recipe live here; the defaults that
differ (backbone, batch size, the training config, ...) are arguments. So do
the parsers that turn flag text into library values (`parse_weights`,
`parse_fine_tune_at`): the library itself never reads flags. The digits job
defines flags of its own, but checks its `--seed` and folders with the same
functions (`check_seed`, `check_folders`).
"""

import os
import sys

import run_folder
import run_report
import tensorflow as tf
from absl import app, flags, logging

import tfxfer
from tfxfer import distribute, tuning
from tfxfer.defaults import FineTuneAt
from tfxfer.data import layout
from tfxfer.export import versioning
from tfxfer.training import distillation_loss, planner, precision

FLAGS = flags.FLAGS
# --mixed_precision's values: FineTuneConfig.mixed_precision's, with "off" for None.
_MIXED_PRECISION = ["off", "auto", precision.BFLOAT16, precision.FLOAT16]
# The largest --seed: seed_everything hands it to NumPy, whose seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
# The recipe's default training config, set by define_flags; the flags override its fields.
_training = tfxfer.FineTuneConfig()
# The share --validation_split holds out, unset, of data without a validation part of its own; set by define_flags.
_held_out_share = 0.0
# The flags that only shape phase 2, and what each does there (`check_phase_2_flags`): with --fine_tune_epochs=0
# there is no phase 2, and they would do nothing. --layer_decay is the text recipe's own; the others are shared.
_PHASE_2_FLAGS = {
    "fine_tune_at": "picks the first backbone layer that phase 2 unfreezes",
    "fine_tune_learning_rate": "sets the learning rate of phase 2",
    "fine_tune_ema_momentum": "averages the weights of phase 2",
    "fine_tune_interpolation": "moves phase 2's weights back toward phase 1's",
    "lora_rank": "trains LoRA adapters in phase 2",
    "layer_decay": "decays the learning rate of phase 2 layer by layer",
}


def define_flags(
    *,
    data_help: str,
    backbone: str,
    backbone_help: str,
    batch_size: int,
    seed: int,
    held_out_share: float,
    training: tfxfer.FineTuneConfig,
    dropout: float,
    model_name: str,
) -> None:
    """Defines the shared flags; the arguments are the recipe's defaults and help texts.

    Args:
        data_help: str. Help of `--data_dir`: what the recipe reads from it.
        backbone: str. Default `--backbone`.
        backbone_help: str. Help of `--backbone`: what it may name.
        batch_size: int. Default `--batch_size` (per replica).
        seed: int. Default `--seed`.
        held_out_share: float. What `--validation_split` holds out, unset, of data without a validation part of
            its own (`validation_split`). The flag's default stays None: flags.txt leaves an unset flag out, so a
            rerun of data with a split of its own keeps it.
        training: FineTuneConfig. The recipe's default training: the defaults of
            `--epochs`, `--fine_tune_epochs`, `--fine_tune_at`, `--learning_rate`,
            `--fine_tune_learning_rate`, and the rest of `fine_tune_config()`.
        dropout: float. Default `--dropout` (the head's rate).
        model_name: str. Default `--model_name`.
    """
    global _training
    _training = training
    flags.DEFINE_string("data_dir", None, data_help)
    flags.DEFINE_string("tfds_name", None, "TFDS dataset name; used instead of --data_dir's files, "
                        "--data_dir is then the TFDS data_dir.")
    global _held_out_share
    _held_out_share = held_out_share
    flags.DEFINE_float("validation_split", None,
                       "Share of the training data held out for validation (seeded, per class); 0 or unset "
                       "keeps the data's own split if it has one (train/ + val/, a TFDS validation split). "
                       f"Unset, data without a split of its own holds out {held_out_share:.0%} of each class (a "
                       "TFDS dataset 10 %); 0 trains on all of it, without validation.")
    flags.DEFINE_string("backbone", backbone, backbone_help)
    flags.DEFINE_integer("batch_size", batch_size,
                         "Batch size per replica; each step takes batch_size * replicas (the global batch).")
    flags.DEFINE_integer("epochs", training.epochs, "Phase-1 epochs (frozen backbone).")
    flags.DEFINE_integer("fine_tune_epochs", training.fine_tune_epochs,
                         "Phase-2 epochs (top of backbone unfrozen); 0 skips.")
    flags.DEFINE_string("fine_tune_at", str(training.fine_tune_at),
                        "First backbone layer to unfreeze in phase 2: index, fraction of layers from the top "
                        "or layer name.")
    flags.DEFINE_float("learning_rate", training.learning_rate, "Phase-1 peak learning rate.")
    flags.DEFINE_float("fine_tune_learning_rate", training.fine_tune_learning_rate, "Phase-2 peak learning rate.")
    flags.DEFINE_float("dropout", dropout, "Dropout rate of the head, before its Dense layer; 0 leaves it out.")
    flags.DEFINE_float("label_smoothing", training.label_smoothing, "Label smoothing of the cross-entropy loss.")
    flags.DEFINE_float("weight_decay", training.weight_decay, "Decoupled weight decay (AdamW) in both phases.")
    flags.DEFINE_enum("tune", None, list(tuning.TUNERS),
                      "Search the training settings first (KerasTuner: random search, Bayesian optimisation or "
                      "Hyperband): both learning rates, --fine_tune_at, --dropout (unless it is 0: no dropout "
                      "layer), --label_smoothing, --weight_decay (and --layer_decay for transformers). Trials are "
                      "scored on --tune_holdout of the training data; then the model trains on all of it with the "
                      "best settings. The run folder gets tuning/trials.csv and tuning/best_flags.txt, which reruns "
                      "the best settings.")
    flags.DEFINE_integer("max_trials", 10, "With --tune: trials to run, besides scoring the defaults.")
    flags.DEFINE_integer("tune_epochs", 3, "With --tune: phase-2 epochs of a trial (Hyperband: the most); "
                         "phase 1 trains on features the backbone computed once for the whole search.")
    flags.DEFINE_float("tune_holdout", 0.2, "With --tune: share of the training data the trials are scored on "
                       "(chosen by a seeded hash of each example); the validation data is never looked at.")
    flags.DEFINE_string("distill_into", None,
                        "After training and exporting, distil the model into this smaller student and export it as "
                        "<model_name>_student: an image backbone name (e.g. mobilenet_v3_small), or for text a "
                        "keras-hub preset or folder, or a word-vector file (with --encoder and --sequence_length). "
                        "metrics.json gets the comparison under 'distillation'.")
    flags.DEFINE_string("unlabelled_data", None,
                        "With --distill_into: more examples without labels, which the teacher labels for the student: "
                        "a folder of images (any depth), or a text file with one text per line.")
    flags.DEFINE_string("student_weights", "pretrained",
                        "With --distill_into: the student backbone's starting weights, as --weights.")
    flags.DEFINE_float("distill_temperature", distillation_loss.DEFAULT_TEMPERATURE,
                       "With --distill_into: the temperature that softens both models' probabilities in the "
                       "distillation loss.")
    flags.DEFINE_float("distill_alpha", distillation_loss.DEFAULT_ALPHA,
                       "With --distill_into: the weight of the labels against the teacher's softened probabilities "
                       "(1 trains on the labels alone).")
    flags.DEFINE_integer("seed", seed, "Seed for the split, shuffling, augmentation and weights.")
    flags.DEFINE_bool("deterministic", False,
                      "Make TensorFlow's ops repeatable too: a rerun on the same machine gives identical "
                      "weights and metrics, at some cost in speed.")
    flags.DEFINE_string("run_dir", None,
                        "The run's folder: metrics.json, training_curves.png, confusion_matrix.png, flags.txt "
                        "(rerun with --flagfile=<run_dir>/flags.txt) and TensorBoard events. Default: a new "
                        "runs/<model_name>/<date-time> folder; an earlier run is never overwritten.")
    flags.DEFINE_string("export_dir", "saved_models", "Base folder of exported models.")
    flags.DEFINE_string("model_name", model_name, "Exports go to <export_dir>/<model_name>/<version>/.")
    flags.DEFINE_integer("warmup_examples", 3, "Validation examples in the TF Serving warmup file; 0 writes none.")
    flags.DEFINE_enum("strategy", "auto", tfxfer.list_strategies(),
                      "tf.distribute strategy: auto (TPU if --tpu, all GPUs if > 1, else one device), default, "
                      "one_device, mirrored, multi_worker (reads TF_CONFIG) or tpu.")
    flags.DEFINE_string("tpu", None, "Cloud TPU name, grpc://host:port address, or 'local' on a TPU VM.")
    flags.DEFINE_integer("num_gpus", None, "GPUs to use with mirrored / one_device / auto; all visible if unset.")
    flags.DEFINE_bool("scale_learning_rate", False,
                      "Multiply both learning rates by the number of replicas (linear scaling with the global "
                      "batch).")
    flags.DEFINE_enum("find_learning_rate", None, ["1", "2"],
                      "Run the learning-rate finder right before phase 1 or 2: it sweeps the rate from the "
                      "current weights, restores them, and the phase trains at its suggestion (lr_find.png in "
                      "the run folder). Replaces --learning_rate or --fine_tune_learning_rate.")
    flags.DEFINE_string("backup_dir", None,
                        "Back up the training state here each epoch; the same command resumes a killed run.")
    flags.DEFINE_float("fine_tune_ema_momentum", training.fine_tune_ema_momentum,
                       "Phase 2 validates and ends with a moving average of its weights at this momentum per "
                       "step (e.g. 0.9: about the last 10 steps); unset keeps the last weights.")
    flags.DEFINE_float("fine_tune_interpolation", training.fine_tune_interpolation,
                       "Phase 2 ends with the weights it trained this far from phase 1's toward its own (WiSE-FT: "
                       "0.5 halfway, 1 keeps phase 2's).")
    flags.DEFINE_integer("lora_rank", training.lora_rank,
                         "Phase 2 trains LoRA adapters of this rank (and the head) on the backbone layers from "
                         "--fine_tune_at up, instead of their own weights, which stay frozen; the export merges "
                         "them into the kernels. For transformer backbones (keras-hub presets) and your own "
                         "backbones' Dense layers: a keras.applications backbone or --word_vectors is refused "
                         "before training. Unset --fine_tune_learning_rate is then "
                         f"{tfxfer.defaults.LORA_FINE_TUNE_LEARNING_RATE}. Unset: no LoRA.")
    flags.DEFINE_enum("mixed_precision", training.mixed_precision or "off", _MIXED_PRECISION,
                      "Compute dtype while training (the predictions, the loss and the saved and exported model "
                      "stay float32): off, auto (bfloat16 on TPUs and on CPUs with avx512_bf16/amx_bf16, float16 "
                      "on GPUs, else float32), mixed_bfloat16, or mixed_float16 (with loss scaling). On CPUs "
                      "without bf16 instructions bfloat16 is emulated and slower, and with avx512_bf16 it fine-tuned "
                      "MobileNetV2 at 0.75x float32's speed (benchmarks/precision.py).")
    flags.DEFINE_bool("jit_compile", training.jit_compile,
                      "Compile the training and evaluation steps with XLA. XLA compiles once per batch shape "
                      "(text batches trimmed to their longest sentence compile once per length), and cannot "
                      "compile random image transforms (tfxfer's RandomAffine, Keras' RandomRotation, ...): a model "
                      "with it is refused before training.")


def check_numbers() -> None:
    """Fails before any work on epochs, learning rates or label smoothing out of range (the library's
    `ConfigError`), or on a `--seed` or `--warmup_examples` out of range (a usage error), which would otherwise
    stop the run mid-way or train nonsense; and on flags of a phase 2 that `--fine_tune_epochs=0` skips
    (`check_phase_2_flags`)."""
    planner.check_schedule_numbers(fine_tune_config(FLAGS.batch_size))
    check_phase_2_flags()
    check_seed()
    if FLAGS.warmup_examples < 0:  # the export would fail after training (images) or take every text (texts)
        raise app.UsageError(f"--warmup_examples must be >= 0 (0 writes no warmup file). "
                             f"Received: --warmup_examples={FLAGS.warmup_examples}")


def check_phase_2_flags() -> None:
    """Fails before any work on flags of phase 2 (`_PHASE_2_FLAGS`, and `--find_learning_rate=2`) with
    `--fine_tune_epochs=0`, which skips phase 2, so that they would do nothing (a usage error, `refuse_if_passed`);
    the library would refuse `--find_learning_rate=2` too, but only once the data and the model are loaded.

    Except a rerun that skips phase 2 on purpose: `--fine_tune_epochs=0` on the command line after a
    `--flagfile` (a run's flags.txt, or tuning/best_flags.txt) that sets phase-2 flags. Those are let through,
    and named in the log.
    """
    if FLAGS.fine_tune_epochs:
        return
    skipped_on_purpose = on_command_line("fine_tune_epochs")
    for name, use in _PHASE_2_FLAGS.items():
        if name not in FLAGS or not passed(name):  # not this recipe's flag, or at its default
            continue
        if skipped_on_purpose and not on_command_line(name):
            logging.info("--fine_tune_epochs=0 skips phase 2, so %s (from --flagfile) does nothing.",
                         FLAGS[name].serialize())
            continue
        refuse_if_passed(name, f"--{name} {use}, and --fine_tune_epochs=0 skips phase 2, so --{name} does "
                               f"nothing; pass --fine_tune_epochs=N (N >= 1) too, or leave --{name} out.")
    if FLAGS.find_learning_rate == "2":
        raise app.UsageError("--find_learning_rate=2 runs the learning-rate finder right before phase 2, and "
                             "--fine_tune_epochs=0 skips phase 2, so there is no phase to run it before; pass "
                             "--fine_tune_epochs=N (N >= 1) too, or --find_learning_rate=1 for phase 1. "
                             "Received: --find_learning_rate=2")


def on_command_line(name: str) -> bool:
    """Whether `--name` (or `--noname`) is on the command line itself, not only in a `--flagfile` it reads.

    absl expands flagfiles into the arguments it parses, and leaves `sys.argv`
    as typed; a flag's value alone does not say where it came from.
    """
    names = (name, f"no{name}")
    return any(arg.startswith("-") and arg.lstrip("-").partition("=")[0] in names for arg in sys.argv[1:])


def check_seed() -> None:
    """Fails before any work on a `--seed` NumPy cannot take (a usage error); every training recipe's `--seed`."""
    if not 0 <= FLAGS.seed <= MAX_SEED:
        raise app.UsageError(f"--seed must be an integer from 0 to {MAX_SEED} (2**32 - 1), e.g. 0. "
                             f"Received: --seed={FLAGS.seed}")


def passed(name: str) -> bool:
    """Whether the user set `--name`: typed on the command line (at any value, its default too), or set to a value
    other than its default in a flagfile.

    A run's flags.txt lists every flag at its value, defaults included, so that
    `--flagfile=<run_dir>/flags.txt` reruns the run: a flag at its default may
    come from there, and is not taken for one the user set.
    """
    flag = FLAGS[name]
    return bool(flag.present) and (flag.value != flag.default or on_command_line(name))


def refuse_if_passed(name: str, why: str) -> None:
    """Fails before any work if the user `passed` `--name` where it would do nothing (a usage error, rather than
    a flag silently ignored); `why` says why and what to do, and the message ends with the flag as received."""
    if passed(name):
        raise app.UsageError(f"{why} Received: {FLAGS[name].serialize()}")


def refuse_without(needed: str, uses: dict[str, str], how: str) -> None:
    """Fails before any work on flags that do nothing without `--needed` while it is unset or empty (a usage
    error, `refuse_if_passed`): the one statement of that rule, for each module's table of such flags.

    Args:
        needed: str. The flag they need, e.g. "distill_into".
        uses: dict. Each flag that needs it -> what it does, completing "--<flag> <use> --<needed>", e.g.
            {"student_weights": "sets the starting weights of the student of"}.
        how: str. How to set `--needed`, e.g. "--distill_into=STUDENT".
    """
    if FLAGS[needed].value:
        return
    for name, use in uses.items():
        refuse_if_passed(name, f"--{name} {use} --{needed}, which is not set, so --{name} does nothing; pass "
                               f"{how} too, or leave --{name} out.")


def check_not_empty(name: str, what: str, unset: str) -> None:
    """Fails before any work on an empty `--name=` (an unset shell variable, say), which the recipe would take
    as the flag left out (a usage error), as `check_folders` does for folder flags.

    Args:
        name: str. The flag, e.g. "word_vectors".
        what: str. What it takes, e.g. "a word-vector file".
        unset: str. What leaving it out does, e.g. "to train --backbone".
    """
    if FLAGS[name].value == "":
        raise app.UsageError(f"--{name} must be {what}, but it is empty; pass one, or leave --{name} out {unset}. "
                             f"Received: --{name}=")


def check_paths(*folder_flags: str) -> None:
    """Fails before any work on path flags that cannot work (a usage error, or `versioning.model_dir`'s ConfigError).

    `--data_dir` must exist (unless it is the TFDS data_dir of `--tfds_name`);
    `--run_dir`, `--export_dir`, `--backup_dir` and `folder_flags` must be
    usable folders (`check_folders`); `--model_name` must be one plain folder
    name (`versioning.model_dir`), so that exports cannot land outside
    `--export_dir`, and `<export_dir>/<model_name>` a usable folder too;
    `--run_dir` must not hold a finished run (`run_folder.check_unused`).
    Remote paths (`gs://...`) are left to the code that writes them.

    folder_flags: str. Names of the recipe's own folder flags, e.g. "tflite_dir".
    """
    if (FLAGS.data_dir and not FLAGS.tfds_name and versioning.is_local(FLAGS.data_dir)
            and not os.path.exists(FLAGS.data_dir)):
        raise app.UsageError(f"--data_dir does not exist; pass the path of your data, or --tfds_name. "
                             f"Received: --data_dir={FLAGS.data_dir}")
    # First: an empty --run_dir would look for an earlier run's metrics.json in the current folder.
    check_folders("run_dir", "export_dir", "backup_dir", *folder_flags)
    run_folder.check_unused(FLAGS.run_dir)
    # Checked before any work: a name like ../x would put the export outside --export_dir, after training.
    versioning.check_folder_name(FLAGS.model_name, "--model_name")  # its message names the flag, not the argument
    _check_folder("--export_dir/--model_name", versioning.model_dir(FLAGS.export_dir or "", FLAGS.model_name))


def check_folders(*names: str) -> None:
    """Fails before any work on folder flags (`names`, e.g. "run_dir") that cannot be folders: an empty value,
    or a path that is, or lies inside, an existing file (a usage error). Unset flags and remote paths
    (`gs://...`) pass.

    Every training recipe's folder flags; `check_paths` checks the shared ones.
    """
    for name in names:
        if FLAGS[name].value is not None:
            _check_folder(f"--{name}", FLAGS[name].value)


def _check_folder(flag: str, path: str) -> None:
    if not path:
        # An unset shell variable (--run_dir=$RUN) gives "", which the recipes would take as the current
        # folder, as no folder, or as a file name, and fail or scatter files only after training.
        raise app.UsageError(f"{flag} must be a folder (it is created if missing), but it is empty; pass a folder "
                             f"('.' for the current one), or leave {flag} out for its default. Received: {flag}=")
    blocking = versioning.file_in_the_way(path)
    if blocking is not None:
        where = "is a file" if blocking == os.path.abspath(path) else f"is inside a file ({blocking})"
        raise app.UsageError(f"{flag} must be a folder (it is created if missing), but it {where}; pass "
                             f"another path. Received: {flag}={path}")


def create_strategy() -> tuple[tf.distribute.Strategy, int]:
    """The strategy `--strategy`/`--tpu`/`--num_gpus` ask for, and the global batch (logged)."""
    strategy = tfxfer.create_strategy(FLAGS.strategy, tpu=FLAGS.tpu, num_gpus=FLAGS.num_gpus)
    global_batch = tfxfer.global_batch_size(FLAGS.batch_size, strategy)
    logging.info("Batch size %d per replica x %d replicas = global batch %d.",
                 FLAGS.batch_size, strategy.num_replicas_in_sync, global_batch)
    return strategy, global_batch


def fine_tune_config(global_batch: int, **changes) -> tfxfer.FineTuneConfig:
    """A `FineTuneConfig` from the training flags, learning rates scaled with `--scale_learning_rate`.

    Args:
        global_batch: int. The batch of one step over all replicas.
        **changes: More `FineTuneConfig` fields the recipe sets (e.g. `layer_decay`).
    """
    learning_rates = [FLAGS.learning_rate, FLAGS.fine_tune_learning_rate]
    if FLAGS.lora_rank is not None and not FLAGS["fine_tune_learning_rate"].present:
        learning_rates[1] = tfxfer.defaults.LORA_FINE_TUNE_LEARNING_RATE  # adapters need a higher rate
    if FLAGS.scale_learning_rate:
        learning_rates = [tfxfer.scale_learning_rate(rate, global_batch, FLAGS.batch_size) for rate in learning_rates]
    return _training.replace(
        epochs=FLAGS.epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
        fine_tune_at=parse_fine_tune_at(FLAGS.fine_tune_at),
        learning_rate=learning_rates[0], fine_tune_learning_rate=learning_rates[1],
        label_smoothing=FLAGS.label_smoothing, weight_decay=FLAGS.weight_decay,
        fine_tune_ema_momentum=FLAGS.fine_tune_ema_momentum, fine_tune_interpolation=FLAGS.fine_tune_interpolation,
        lora_rank=FLAGS.lora_rank, mixed_precision=None if FLAGS.mixed_precision == "off" else FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile, **changes)


def run_facts(strategy: tf.distribute.Strategy, global_batch: int, config: tfxfer.FineTuneConfig,
              model: tfxfer.Classifier, search: "tfxfer.TuneResult | None" = None) -> dict:
    """The `metrics.json` fields about batches, distribution, training settings (LoRA's rank too), precision
    and determinism.

    `strategy` is the strategy training ran under (what `--strategy=auto` resolved to,
    `tfxfer.distribute.strategy_name`),
    `strategy_requested` the `--strategy` given; `compute_policy` is the policy training ran in: what
    `mixed_precision="auto"` resolved to here.
    `tuning` (with `--tune`): the search's best settings, score and time (`TuneResult.summary`).
    """
    return {"batch_size": FLAGS.batch_size, "global_batch_size": global_batch,
            "strategy": distribute.strategy_name(strategy), "strategy_requested": FLAGS.strategy,
            "num_replicas": strategy.num_replicas_in_sync, "learning_rate": config.learning_rate,
            "fine_tune_learning_rate": config.fine_tune_learning_rate, "fine_tune_at": config.fine_tune_at,
            "dropout": model.dropout, "label_smoothing": config.label_smoothing,
            "weight_decay": config.weight_decay,
            **({} if search is None else {"tuning": search.summary()}),
            "fine_tune_ema_momentum": config.fine_tune_ema_momentum,
            "fine_tune_interpolation": config.fine_tune_interpolation, "lora_rank": config.lora_rank,
            "seed": FLAGS.seed,
            "deterministic": FLAGS.deterministic, "mixed_precision": config.mixed_precision or "off",
            "compute_policy": precision.resolve(config.mixed_precision, strategy),
            "jit_compile": config.jit_compile}


def output_dirs() -> tuple[str, str]:
    """`(run_dir, export_dir/model_name)` (`run_folder.choose`); temporary folders on a worker that
    is not the chief.

    In multi-worker training every worker runs the writing code too; only the
    chief's files are kept.
    """
    run_dir = tfxfer.chief_or_temp_dir(run_folder.choose(FLAGS.run_dir, FLAGS.model_name))
    export_dir = versioning.model_dir(tfxfer.chief_or_temp_dir(FLAGS.export_dir), FLAGS.model_name)
    return run_dir, export_dir


def train_or_resume(model: tfxfer.Classifier, train_data, validation_data, config: tfxfer.FineTuneConfig,
                    class_counts: list[int], run_dir: str,
                    trained: "tuple[tfxfer.Classifier, tfxfer.FineTuneResult] | None",
                    search: "tfxfer.TuneResult | None" = None):
    """`(model, result)`: `tfxfer.fine_tune` of `model` with the recipe's flags, the trained model then backed up
    in --backup_dir until the run ends (`run_folder.save_trained`, with the `--tune` `search` that chose `config`);
    or `trained`, what a run killed after training left there (`run_folder.load_trained`), without training again."""
    if trained is not None:
        return trained
    result = tfxfer.fine_tune(model, train_data, validation_data, config=config, class_counts=class_counts,
                              backup_dir=FLAGS.backup_dir, tensorboard_dir=run_report.tensorboard_dir(run_dir),
                              find_learning_rate=find_learning_rate())
    run_folder.save_trained(FLAGS.backup_dir, model, result, search)
    return model, result


def validation_split(has_own: bool, missing: str) -> float | None:
    """The loaders' `validation_split`: --validation_split when passed (0: None, no validation). Unset: None for
    data with a validation part of its own (`has_own`), which the loaders validate on (the image folders' loader
    refuses a share beside it), else the recipe's share (`define_flags`' `held_out_share`), logged with what the
    data lacks (`missing`) and how to change it."""
    if FLAGS.validation_split is not None:
        return FLAGS.validation_split or None
    if has_own:
        return None
    logging.info("--data_dir=%s %s: holding out %s of each class for validation (seeded by --seed), on which "
                 "training stops early and the report is made. --validation_split=0 trains on all of it, without "
                 "validation; another share (between 0 and 1) holds out that much instead.",
                 FLAGS.data_dir, missing, f"{_held_out_share:.0%}")
    return _held_out_share


def split_folders(data_dir: str) -> tuple[bool, str]:
    """`validation_split`'s `has_own` and `missing` for a folder of class folders: whether it has a validation
    folder beside its training one (any spelling `tfxfer.data.layout` accepts)."""
    has_own = layout.train_and_validation_folders(data_dir)[1] is not None
    return has_own, f"has no {layout.split_folder_spellings('validation')} folder"


def find_learning_rate() -> int | None:
    """`--find_learning_rate` as `fine_tune` takes it: the phase number, or None."""
    return None if FLAGS.find_learning_rate is None else int(FLAGS.find_learning_rate)


def parse_weights(text: str | None) -> str | None:
    """`--weights` text: "none"/"" (random init) becomes None; anything else ("imagenet",
    "pretrained", a path) is kept, as the image and text builders take it."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    return text


def parse_fine_tune_at(text: str) -> FineTuneAt:
    """`--fine_tune_at` text: "100" -> 100 (index), "0.3" -> 0.3 (fraction), else a layer name."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
