"""The study configuration: model, tasks (with shift domains and controls), methods, seeds,
shots (training images per class), an optional hyperparameter ``search`` and where difficulty
is measured."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clipgap.alphas import DEFAULT_ALPHAS, check_alphas
from clipgap.config import NEW_SETTING, NOT_HASHED, apply_overrides, from_dict, identity, load_yaml
from clipgap.errors import ConfigError
from clipgap.record import DIFFICULTY_SPLITS, PAPER_METHODS
from clipgap.study.execution import (
    LockConfig,
    RayConfig,
    ResourcesConfig,
    check_executor_name,
)
from clipgap.study.search import SearchConfig, search_data, search_from_dict

DEFAULT_METHODS = [*PAPER_METHODS, "linear_probe"]
# A value of the shots axis: k images per class, or ``all`` (the full training portion).
ALL_SHOTS = "all"


@dataclass
class TaskEntry:
    """A fine-tuning task, the shift domains that share its labels, and its control tasks.

    ``controls`` unset means the world's control panel for a world task (controls that share
    none of its label attributes, :mod:`clipgap.world.panels`), else every other task of the
    study. Given controls that share a world task's label attribute are kept, with a warning.
    """

    name: str
    dg: list[str] = field(default_factory=list)
    controls: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("tasks[].name must be a dataset spec such as world:shape")
        if self.controls is not None and self.name in self.controls:
            raise ConfigError(
                f"controls: task {self.name!r} lists itself as a control task; controls "
                f"measure forgetting on tasks NOT trained on"
            )
        if self.name in self.dg:
            raise ConfigError(f"dg: task {self.name!r} lists itself as a shift domain")
        if self.controls is not None:
            from clipgap.world.panels import warn_shared_controls

            warn_shared_controls(self.name, self.controls)


@dataclass(frozen=True)
class EvalConfig:
    """How runs are scored. ``alphas``: interpolation weights in [0, 1] between the zero-shot
    (0) and the fine-tuned (1) model at which every run is also scored (ID, DG, controls and
    the trainer's validation split, stored in the record's ``interpolation``), checked by
    :func:`clipgap.alphas.check_alphas` (sorted, each once); the default ``[1]`` adds nothing
    (the fine-tuned model is always scored) and, left out of the identity, keeps run hashes as
    they were. ``max_control_images`` caps the control tasks' test splits on their own (forgetting
    is a mean over several controls: fewer images each buy less than on the task itself)."""

    batch_size: int = 256
    max_test_images: int | None = None
    alphas: tuple[float, ...] = field(default=DEFAULT_ALPHAS, metadata=NEW_SETTING)
    # control tasks' test splits scored on at most this many images (None: as ID and DG)
    max_control_images: int | None = field(default=None, metadata=NEW_SETTING)

    def __post_init__(self) -> None:
        if self.max_control_images is not None and self.max_control_images < 1:
            raise ConfigError(
                f"eval.max_control_images must be >= 1, got {self.max_control_images}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if self.max_test_images is not None and self.max_test_images < 1:
            raise ConfigError(f"eval.max_test_images must be >= 1, got {self.max_test_images}")
        object.__setattr__(self, "alphas", check_alphas(self.alphas, where="eval.alphas"))

    @property
    def sweep(self) -> bool:
        """Whether runs are scored along alpha (any alpha but the default ``[1]``)."""
        return self.alphas != DEFAULT_ALPHAS


@dataclass
class DifficultyConfig:
    """Where a task's difficulty is measured: ``train`` = the training portion (the train split
    minus the trainer's validation hold-out, the paper authors' choice), or ``test``."""

    split: str = "train"

    def __post_init__(self) -> None:
        if self.split not in DIFFICULTY_SPLITS:
            raise ConfigError(
                f"difficulty.split must be one of {', '.join(DIFFICULTY_SPLITS)}, "
                f"got {self.split!r}"
            )


def parse_shot(value, *, where: str = "shots") -> int | None:
    """One value of the shots axis: a positive int, or ``all`` / None (the full split) -> None;
    anything else (0, negative, a fraction, another word) is a one-line ConfigError."""
    if value is None or value == ALL_SHOTS:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ConfigError(
        f"{where}: {value!r} is not allowed; expected a positive number of training images per "
        f"class or {ALL_SHOTS!r}"
    )


def parse_shots(values: list) -> list[int | None]:
    """The shots axis: ``[4, 16, "all"]`` -> ``[4, 16, None]``."""
    if not values:
        raise ConfigError("shots: a study needs at least one value (e.g. [all] or [4, 16, all])")
    parsed = [parse_shot(v, where=f"shots[{i}]") for i, v in enumerate(values)]
    if len(set(parsed)) != len(parsed):
        raise ConfigError(f"shots: a value is listed more than once in {list(values)}")
    return parsed


def shots_label(shots: int | None) -> str:
    """``4`` -> ``"4"``, None -> ``"all"`` (tables, run directory names)."""
    return ALL_SHOTS if shots is None else str(shots)


@dataclass
class DataConfig:
    """Where the study's data lives (``data_root``, ``download``) and, for ``hfds:`` tasks
    whose columns are not detected, which columns hold the image and the label (applied to
    every ``hfds:`` task of the study; ``--image-column`` / ``--label-column`` elsewhere)."""

    data_root: str | None = None
    download: bool = False
    # they enter the study identity only when set: studies naming none keep theirs
    image_column: str | None = field(default=None, metadata=NEW_SETTING)
    label_column: str | None = field(default=None, metadata=NEW_SETTING)


@dataclass
class StudyConfig:
    """Everything that defines a study. ``out`` is where runs and the report go."""

    model: str = "world"
    # the models axis (``models: [...]`` instead of ``model:``); None: the one ``model``
    models: list[str] | None = field(default=None, metadata=NEW_SETTING)
    pretrained: str | None = None
    device: str = "cpu"
    tasks: list[TaskEntry] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    preset: str = "tuned"
    seeds: list[int] = field(default_factory=lambda: [0])
    shots: list[int | str | None] = field(default_factory=lambda: [ALL_SHOTS])
    train: dict[str, Any] = field(default_factory=dict)
    method_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # K trials per method from its space (clipgap.study.search); parsed by study_from_dict
    search: SearchConfig | None = field(default=None, metadata=NEW_SETTING)
    out: str = field(default="study-out", metadata=NOT_HASHED)
    # how runs execute (clipgap.study.execution), not what they compute
    executor: str = field(default="local", metadata=NOT_HASHED)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig, metadata=NOT_HASHED)
    ray: RayConfig = field(default_factory=RayConfig, metadata=NOT_HASHED)
    locks: LockConfig = field(default_factory=LockConfig, metadata=NOT_HASHED)
    # where each run's metrics also go (clipgap.tracking); None = TensorBoard when installed
    tracking: list[str] | None = field(default=None, metadata=NOT_HASHED)

    def __post_init__(self) -> None:
        from clipgap.tracking import tracking_kinds

        check_executor_name(self.executor)
        check_models(self.models)
        self.tracking = list(tracking_kinds(self.tracking, where="tracking"))
        if not self.tasks:
            raise ConfigError("tasks: a study needs at least one task")
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"tasks: {', '.join(dupes)} listed more than once")
        if not self.methods:
            raise ConfigError("methods: a study needs at least one method")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError("methods: a method is listed more than once")
        if not self.seeds:
            raise ConfigError("seeds: a study needs at least one seed")
        self.shots = parse_shots(self.shots)
        blocks = {
            "train": self.train,
            **{f"method_train.{m}": b for m, b in self.method_train.items()},
        }
        for where, block in blocks.items():
            if "shots" in block:
                raise ConfigError(
                    f"{where}.shots: set training images per class with the study's shots axis "
                    f"(e.g. shots: [4, 16, all])"
                )
        for key in list(self.method_train) + list(self.method_options):
            if key not in self.methods:
                raise ConfigError(
                    f"method_train/method_options name {key!r}, which is not in methods "
                    f"({', '.join(self.methods)})"
                )

    @property
    def model_names(self) -> list[str]:
        """The study's models, in order: ``models`` when given, else the one ``model``."""
        return list(self.models) if self.models is not None else [self.model]

    def controls_for(self, entry: TaskEntry) -> list[str]:
        from clipgap.world.panels import control_panel

        if entry.controls is not None:
            return list(entry.controls)
        panel = control_panel(entry.name)  # None: not a world task
        if panel is not None:
            return panel
        return [t.name for t in self.tasks if t.name != entry.name]

    def identity(self) -> dict:
        """What makes two studies the same study (everything but where and how it runs, as
        its fields declare: :func:`clipgap.config.identity`; a search as its YAML data, so
        that :func:`study_from_dict` reads an identity back)."""
        ident = identity(self)
        if self.search is not None:
            ident["search"] = search_data(self.search)
        return ident


def check_models(models: list[str] | None) -> None:
    """The models axis: None (one ``model``) or a non-empty list, each model once."""
    if models is None:
        return
    if not models:
        raise ConfigError("models: an empty list; give at least one model (or use model:)")
    dupes = sorted({m for m in models if models.count(m) > 1})
    if dupes:
        raise ConfigError(f"models: {', '.join(dupes)} listed more than once")


def check_model_keys(data: dict) -> None:
    """``model`` and ``models`` are alternatives: a one-line ConfigError when both are given."""
    if isinstance(data, dict) and "model" in data and "models" in data:
        raise ConfigError(
            "model and models are both given; use model: for one model or models: [...] for several"
        )


def default_world_study() -> dict:
    """The default study: the world's study tasks (each with its shift styles
    ``STUDY_SHIFT_STYLES`` as DG domains, its control panel as controls) x the five paper
    methods x the seeds ``STUDY_SEEDS``, every test image for ID and DG, control tasks on at
    most ``STUDY_CONTROL_IMAGES``, each run also scored at the interpolation weights
    ``STUDY_ALPHAS``."""
    from clipgap.world.tasks import (
        STUDY_ALPHAS,
        STUDY_CONTROL_IMAGES,
        STUDY_SEEDS,
        STUDY_SHIFT_STYLES,
        STUDY_TASKS,
        STUDY_TEST_IMAGES,
    )

    tasks = [
        {"name": f"world:{t}", "dg": [f"world:{t}@{s}" for s in STUDY_SHIFT_STYLES]}
        for t in STUDY_TASKS
    ]
    evaluation = {
        "max_test_images": STUDY_TEST_IMAGES,
        "max_control_images": STUDY_CONTROL_IMAGES,
        "alphas": list(STUDY_ALPHAS),
    }
    return {
        "model": "world",
        "tasks": tasks,
        "methods": list(PAPER_METHODS),
        "seeds": list(STUDY_SEEDS),
        "eval": evaluation,
    }


def load_study_config(
    path: str | None = None, overrides: list[str] | None = None, *, out: str | None = None
) -> StudyConfig:
    """Read a study YAML (or the default world study), apply dotted overrides and validate."""
    data = load_yaml(path) if path else default_world_study()
    where = Path(path).name if path else "study"
    if not path and any(o.split("=", 1)[0] == "models" for o in overrides or []):
        data.pop("model")  # the default study's model, replaced by the models given
    data = apply_overrides(data, overrides or [])
    if out is not None:
        data["out"] = out
    try:
        return study_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def study_from_dict(data: dict, *, where: str = "") -> StudyConfig:
    """A :class:`StudyConfig` from YAML data (a config file, or a study identity read back):
    ``search`` is parsed by :func:`clipgap.study.search.search_from_dict` against the study's
    methods (one-line errors naming ``search.KEY``), everything else by ``from_dict``."""
    check_model_keys(data)
    data = dict(data)
    search = data.pop("search", None)
    cfg = from_dict(StudyConfig, data, where=where)
    if search is None:
        return cfg
    return replace(cfg, search=search_from_dict(search, list(cfg.methods)))
