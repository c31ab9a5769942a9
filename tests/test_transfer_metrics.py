"""IIMM, LogME, H-score, TransRate and GBC against their definitions computed the plain way.

The ``direct_*`` oracles follow docs/science.md literally (explicit loops, N x N matrices,
numpy.linalg on full matrices, brute-force maximisation of the LogME evidence); the library
computes the same from one O(N d^2) pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

import clipgap.metrics.inputs as metric_inputs
from clipgap.errors import MetricError
from clipgap.metrics import gbc, h_score, iimm, logme, task_difficulty, transrate


def _unit(a):
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def direct_iimm(images, texts, labels):
    x, t = _unit(images), _unit(texts)
    n, c = len(x), len(t)
    wrong = [np.mean([x[i] @ t[k] for k in range(c) if k != labels[i]]) for i in range(n)]
    pairs = x @ x.T
    return 0.5 * (np.mean(wrong) + pairs[np.triu_indices(n, k=1)].mean())


def direct_hscore(images, labels):
    x = _unit(images)
    g = np.array([x[labels == labels[i]].mean(axis=0) for i in range(len(x))])

    def cov(a):
        centred = a - a.mean(axis=0)
        return sum(np.outer(r, r) for r in centred) / (len(a) - 1)

    return np.trace(np.linalg.pinv(cov(x), rcond=1e-10) @ cov(g))


def direct_transrate(images, labels, eps=1e-4):
    z = _unit(images)
    z = z - z.mean(axis=0)

    def rate(a):
        n, d = a.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + a.T @ a / (n * eps))[1]

    return rate(z) - np.mean([rate(z[labels == k]) for k in np.unique(labels)])


def bhattacharyya(mu1, cov1, mu2, cov2):
    """Bhattacharyya distance of two Gaussians with full covariance matrices."""
    cov = (cov1 + cov2) / 2
    diff = mu1 - mu2
    log_dets = [np.linalg.slogdet(m)[1] for m in (cov, cov1, cov2)]
    return diff @ np.linalg.solve(cov, diff) / 8 + 0.5 * (log_dets[0] - 0.5 * sum(log_dets[1:]))


def _class_gaussians(images, labels, kind):
    x, out = _unit(images), {}
    for k in np.unique(labels):
        var = np.maximum(x[labels == k].var(axis=0), 1e-4)
        if kind == "spherical":
            var = np.full_like(var, var.mean())
        out[k] = (x[labels == k].mean(axis=0), np.diag(var))
    return out


def authors_spherical_distance(mu1, mu2, s1, s2):
    """The authors' spherical D_B (mit-ll/IIMM transferability_metrics.py): scalar variances,
    the quadratic term over all d dimensions, the log term of the scalars (no factor d)."""
    s = (s1 + s2) / 2
    return np.sum((mu1 - mu2) ** 2 / s) / 8 + 0.5 * (
        np.log(s) - 0.5 * np.log(s1) - 0.5 * np.log(s2)
    )


def direct_gbc(images, labels, kind="spherical"):
    g = _class_gaussians(images, labels, kind)
    if kind == "spherical":
        dist = lambda a, b: authors_spherical_distance(  # noqa: E731
            g[a][0], g[b][0], g[a][1][0, 0], g[b][1][0, 0]
        )
    else:
        dist = lambda a, b: bhattacharyya(*g[a], *g[b])  # noqa: E731
    return -sum(np.exp(-dist(a, b)) for a in g for b in g if a != b)


def test_spherical_gbc_has_no_factor_d_on_the_log_term():
    # by hand, in 2-D: class 0 = (1, 0) twice (variances floored at 1e-4), class 1 = (0.6, +-0.8)
    # (variances 0, 0.64 -> floored, averaged); D_B = 0.4^2 / (8 s) + 1/2 ln(s / sqrt(s0 s1))
    # with the scalar variances (the authors' code), not 2 (= d) times that log term
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    y = np.array([0, 0, 1, 1])
    s0, s1 = 1e-4, (1e-4 + 0.64) / 2
    s = (s0 + s1) / 2
    log_term = np.log(s) - 0.5 * np.log(s0) - 0.5 * np.log(s1)
    got = gbc(x, y, kind="spherical")
    assert got == pytest.approx(-2 * np.exp(-(0.16 / (8 * s) + 0.5 * log_term)), rel=1e-9)
    assert got != pytest.approx(-2 * np.exp(-(0.16 / (8 * s) + log_term)), rel=1e-3)


def _log_evidence(x, y, log_alpha, log_beta):
    """log N(y | 0, X X^T / alpha + I / beta): the evidence with w integrated out."""
    cov = x @ x.T * np.exp(-log_alpha) + np.eye(len(y)) * np.exp(-log_beta)
    return -0.5 * (
        np.linalg.slogdet(cov)[1] + y @ np.linalg.solve(cov, y) + len(y) * np.log(2 * np.pi)
    )


def direct_logme(images, labels):
    x, best = _unit(images), []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        fits = [
            optimize.minimize(
                lambda p, y=y: -_log_evidence(x, y, *p),
                start,
                method="Nelder-Mead",
                options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 5000},
            )
            for start in ([0.0, 0.0], [3.0, 5.0], [-2.0, 2.0])
        ]
        best.append(-min(f.fun for f in fits) / len(y))
    return float(np.mean(best))


def _data(n=80, c=4, d=6, *, seed=0, noise=0.7, min_size=2):
    """Raw (not unit) images around random class centres; every class has >= min_size rows."""
    rng = np.random.default_rng(seed)
    texts = rng.normal(size=(c, d))
    labels = np.concatenate(
        [np.repeat(np.arange(c), min_size), rng.integers(0, c, n - c * min_size)]
    )
    rng.shuffle(labels)
    images = (texts[labels] + noise * rng.normal(size=(n, d))) * rng.uniform(0.5, 3, (n, 1))
    return images, texts, labels


@pytest.mark.parametrize("seed", [0, 1])
def test_iimm_matches_explicit_pairs_and_wrong_texts(seed):
    images, texts, labels = _data(n=50, c=5, d=7, seed=seed)
    labels[labels == 4] = 3  # a class text without images still counts as a wrong text
    assert iimm(images, texts, labels) == pytest.approx(
        direct_iimm(images, texts, labels), abs=1e-12
    )


def test_iimm_known_values():
    texts = np.eye(3)
    same = np.tile([[1.0, 0.0, 0.0]], (4, 1))  # identical images on text 0
    # (b) = 1; (a) = mean cos to texts 1 and 2 = 0  ->  0.5
    assert iimm(same, texts, np.zeros(4, dtype=int)) == pytest.approx(0.5)
    assert iimm(same, texts, np.ones(4, dtype=int)) == pytest.approx(0.75)  # wrong: 0 and 2


@pytest.mark.parametrize(("n", "c", "d", "seed"), [(90, 4, 6, 0), (200, 7, 12, 1), (60, 3, 5, 2)])
def test_h_score_matches_pinv_of_loop_covariances(n, c, d, seed):
    images, _, labels = _data(n, c, d, seed=seed)
    got = h_score(images, labels)
    assert got == pytest.approx(direct_hscore(images, labels), rel=1e-9)
    assert 0.0 <= got <= c - 1


def test_h_score_rank_deficient_features():
    # Unit rows in a 3-D subspace of 8 dims: pinv must ignore the 5 empty directions.
    images, _, labels = _data(120, 3, 3, seed=3)
    basis = np.linalg.qr(np.random.default_rng(3).normal(size=(8, 3)))[0]
    lifted = _unit(images) @ basis.T
    assert h_score(lifted, labels) == pytest.approx(direct_hscore(images, labels), rel=1e-8)
    assert h_score(lifted, labels) == pytest.approx(h_score(images, labels), rel=1e-8)


@pytest.mark.parametrize("eps", [1e-4, 1e-2])
def test_transrate_matches_logdet_of_explicit_matrices(eps):
    # d = 12 with class sizes from 4 to ~40: both the n_c < d and n_c >= d factorisations.
    images, _, labels = _data(150, 5, 12, seed=4, min_size=4)
    labels[np.flatnonzero(labels == 4)[4:]] = 0  # class 4 keeps 4 rows
    got = transrate(images, labels, eps=eps)
    assert got == pytest.approx(direct_transrate(images, labels, eps), rel=1e-10)
    assert np.bincount(labels).min() < 12 < np.bincount(labels).max()


def test_transrate_bounds():
    # Equal class sizes: R(Z) >= mean R(Z_c) by concavity of logdet; tr Cov <= 1 bounds R(Z).
    rng = np.random.default_rng(22)
    for noise in (0.1, 1.0, 10.0):
        images = rng.normal(size=(60, 5)) + noise * rng.normal(size=(1, 5))
        labels = np.repeat(np.arange(4), 15)
        value = transrate(images, labels)
        assert 0.0 <= value <= 2.5 * np.log(1 + 1 / (5 * 1e-4))


def test_transrate_in_task_difficulty_small_classes():
    # With the whole-data scatter at hand, classes of n_c < d rows factor Z_c Z_c^T instead.
    images, texts, labels = _data(80, 4, 12, seed=21, min_size=3)
    labels[np.flatnonzero(labels == 3)[3:]] = 0  # class 3 keeps 3 rows
    got = task_difficulty(images, texts, labels)["transrate"]
    assert got == pytest.approx(direct_transrate(images, labels), rel=1e-10)


@pytest.mark.parametrize("kind", ["spherical", "diagonal"])
@pytest.mark.parametrize("seed", [5, 6])
def test_gbc_matches_pairwise_bhattacharyya(kind, seed):
    images, _, labels = _data(120, 5, 9, seed=seed, noise=2.0)
    labels[:2] = 5  # a class of two rows
    got = gbc(images, labels, kind=kind)
    assert got == pytest.approx(direct_gbc(images, labels, kind), rel=1e-10)
    assert -6 * 5 <= got <= 0


def test_gbc_coefficient_is_the_overlap_integral():
    # Two classes in 2-D: -GBC / 2 = integral of sqrt(p q) over the plane, numerically.
    images, _, labels = _data(300, 2, 2, seed=7, noise=1.5)
    g = _class_gaussians(images, labels, "diagonal")
    axis = np.linspace(-6, 6, 1201)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1)
    dens = [stats.multivariate_normal(mu, cov).pdf(grid) for mu, cov in g.values()]
    overlap = np.trapezoid(np.trapezoid(np.sqrt(dens[0] * dens[1]), axis), axis)
    assert -gbc(images, labels, kind="diagonal") / 2 == pytest.approx(overlap, rel=1e-4)


@pytest.mark.parametrize(("n", "c", "d", "seed"), [(40, 3, 4, 8), (60, 2, 3, 9)])
def test_logme_is_the_maximised_evidence(n, c, d, seed):
    images, _, labels = _data(n, c, d, seed=seed, noise=1.0)
    assert logme(images, labels) == pytest.approx(direct_logme(images, labels), abs=1e-7)


def test_logme_ignores_empty_feature_directions():
    # Rank 3 features in 8 dims: the evidence's log det runs over all 8 directions, and the
    # 5 empty ones cancel against d/2 log alpha (the reference code's N < D shortcut does not).
    images, _, labels = _data(70, 3, 3, seed=10)
    basis = np.linalg.qr(np.random.default_rng(10).normal(size=(8, 3)))[0]
    assert logme(_unit(images) @ basis.T, labels) == pytest.approx(logme(images, labels), abs=1e-9)


MEASURES = {
    "logme": logme,
    "h_score": h_score,
    "transrate": transrate,
    "gbc": gbc,
    "gbc_diagonal": lambda x, y: gbc(x, y, kind="diagonal"),
}


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_invariant_to_scale_order_and_label_names(name):
    fn = MEASURES[name]
    images, _, labels = _data(70, 4, 5, seed=11)
    base = fn(images, labels)
    perm = np.random.default_rng(11).permutation(len(labels))
    scaled = images * np.random.default_rng(12).uniform(0.1, 10, (len(images), 1))
    assert fn(scaled, labels) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert fn(images[perm], labels[perm]) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert fn(images, np.array(["abcd"[k] for k in labels])) == pytest.approx(base, rel=1e-12)
    assert fn(images, labels) == base  # deterministic


@pytest.mark.parametrize("name", ["logme", "h_score", "transrate", "gbc", "iimm"])
def test_invariant_to_rotation(name):
    images, texts, labels = _data(70, 4, 5, seed=13)
    q = np.linalg.qr(np.random.default_rng(13).normal(size=(5, 5)))[0]
    if name == "iimm":
        assert iimm(images @ q, texts @ q, labels) == pytest.approx(iimm(images, texts, labels))
    else:
        fn = MEASURES[name]
        assert fn(images @ q, labels) == pytest.approx(fn(images, labels), rel=1e-8)


def test_blocks_do_not_change_results(monkeypatch):
    images, texts, labels = _data(300, 6, 8, seed=14)
    before = task_difficulty(images, texts, labels)
    monkeypatch.setattr(metric_inputs, "BLOCK_BYTES", 8 * 8 * 7)  # 7 rows per block
    monkeypatch.setattr(metric_inputs, "STAGE_BYTES", 8 * 8 * 30)  # stages of 30 rows
    after = task_difficulty(images, texts, labels)
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_float32_input_is_close():
    images, texts, labels = _data(100, 4, 6, seed=15)
    x32 = images.astype(np.float32)
    for name, fn in MEASURES.items():
        assert fn(x32, labels) == pytest.approx(fn(x32.astype(np.float64), labels), rel=1e-12), name


def test_separation_orders_the_measures():
    # The same classes, tight vs loose: every "higher = easier" measure rises with separation.
    tight, _, labels = _data(150, 4, 6, seed=16, noise=0.2)
    loose, _, _ = _data(150, 4, 6, seed=16, noise=2.0)
    for name, fn in MEASURES.items():
        assert fn(tight, labels) > fn(loose, labels), name


def test_identical_classes_overlap_fully():
    x = np.tile(np.eye(3), (4, 1))  # classes 0 and 1 hold the same three points
    labels = np.repeat([0, 1], 6)
    assert gbc(x, labels, kind="diagonal") == pytest.approx(-2.0)
    assert h_score(x, labels) == pytest.approx(0.0, abs=1e-12)
    assert transrate(x, labels) == pytest.approx(0.0, abs=1e-9)


BAD = [
    (lambda x, y: (x, np.zeros_like(y)), "at least 2 classes; got 1"),
    (lambda x, y: (x, y[:-1]), r"one entry per row of images \(40\)"),
    (lambda x, y: (np.vstack([x[:5], np.nan * x[:1], x[6:]]), y), "images row 5 contains NaN"),
    (lambda x, y: (np.vstack([x[:3], 0 * x[:1], x[4:]]), y), "images row 3 has zero norm"),
    (lambda x, y: (x[:, 0], y), "2-D array"),
    (lambda x, y: (x.astype(str), y), "real numbers"),
]


@pytest.mark.parametrize("name", sorted(MEASURES))
@pytest.mark.parametrize(("change", "match"), BAD)
def test_bad_input_is_one_line(name, change, match):
    images, _, labels = _data(40, 3, 4, seed=17)
    with pytest.raises(MetricError, match=match) as info:
        MEASURES[name](*change(images, labels))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x, t, y: gbc(x, y, kind="full"), "spherical, diagonal; got 'full'"),
        (lambda x, t, y: transrate(x, y, eps=0.0), "eps must be a positive number"),
        (lambda x, t, y: transrate(x, y, eps=float("nan")), "eps must be a positive number"),
        (lambda x, t, y: iimm(x, t[:1], np.zeros(len(y), dtype=int)), ">= 2 texts"),
        (lambda x, t, y: iimm(x[:1], t, y[:1]), ">= 2 images"),
        (lambda x, t, y: iimm(x, t, y + 3), r"labels\[\d+\] = \d is outside 0..2"),
        (lambda x, t, y: iimm(x, t[:, :-1], y), "images dim 4 != texts dim 3"),
        (lambda x, t, y: iimm(x, 0 * t, y), "texts row 0 has zero norm"),
    ],
)
def test_bad_options_are_one_line(call, match):
    images, texts, labels = _data(40, 3, 4, seed=18)
    with pytest.raises(MetricError, match=match):
        call(images, texts, labels)


def test_task_difficulty_new_keys_match_the_definitions():
    images, texts, labels = _data(90, 5, 6, seed=19)
    labels[labels == 2] = 1  # class 2 has a text but no image
    got = task_difficulty(images, texts, labels)
    # The transferability measures see the 4 classes that have images; IIMM all 5 texts.
    assert got["iimm"] == pytest.approx(direct_iimm(images, texts, labels), abs=1e-12)
    assert got["logme"] == pytest.approx(direct_logme(images, labels), abs=1e-7)
    assert got["hscore"] == pytest.approx(direct_hscore(images, labels), rel=1e-9)
    assert got["transrate"] == pytest.approx(direct_transrate(images, labels), rel=1e-10)
    assert got["gbc"] == pytest.approx(direct_gbc(images, labels, "spherical"), rel=1e-10)


def test_task_difficulty_undefined_measures_are_nan():
    images, texts, _ = _data(20, 3, 4, seed=20)
    one_class = task_difficulty(images, texts, np.full(20, 2))  # 3 texts, images of 1 class
    for key in ("logme", "hscore", "transrate", "gbc"):
        assert np.isnan(one_class[key]), key
    assert np.isfinite(one_class["iimm"])
    single_text = task_difficulty(images, texts[:1], np.zeros(20, dtype=int))
    assert all(np.isnan(single_text[k]) for k in ("iimm", "logme", "hscore", "transrate", "gbc"))
    one_image = task_difficulty(images[:1], texts, np.array([1]))
    assert np.isnan(one_image["iimm"]) and np.isnan(one_image["logme"])


def test_difficulty_cli_shows_and_writes_every_measure(image_folder, tiny, tmp_path, capsys):
    import json

    from clipgap.cli import main
    from clipgap.cli.difficulty import KEYS
    from clipgap.data import load_task
    from clipgap.embeddings import class_text_features, encode_images

    from .conftest import TINY_MODEL

    out = tmp_path / "d.json"
    spec = f"folder:{image_folder}"
    assert main(["difficulty", "--model", TINY_MODEL, "--dataset", spec, "--json", str(out)]) == 0
    shown = capsys.readouterr().out
    for key in ("iimm", "logme", "hscore", "transrate", "gbc"):
        assert f"\n{key} " in shown, key
    data = json.loads(out.read_text())
    assert set(KEYS) <= set(data)
    task = load_task(spec, "test")
    images = encode_images(tiny, task, progress=False).numpy().astype(np.float64)
    texts = class_text_features(tiny, task.class_names, task.templates).numpy()
    labels = np.asarray(task.labels)
    assert data["iimm"] == pytest.approx(direct_iimm(images, texts, labels), abs=1e-6)
    assert data["hscore"] == pytest.approx(direct_hscore(images, labels), rel=1e-5)
    assert data["transrate"] == pytest.approx(direct_transrate(images, labels), rel=1e-5)
    assert data["gbc"] == pytest.approx(direct_gbc(images, labels), rel=1e-5)
    assert data["logme"] == pytest.approx(logme(images, labels), rel=1e-6)


def test_difficulty_cli_writes_null_for_undefined(tmp_path, tiny, capsys):
    import json

    from clipgap.cli import main

    from .conftest import TINY_MODEL, make_image_folder

    root = tmp_path / "one"
    make_image_folder(root / "test", classes=("cat",), per_class=3)
    out = tmp_path / "d.json"
    args = ["difficulty", "--model", TINY_MODEL, "--dataset", f"folder:{root}", "--json", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["logme"] is None and data["gbc"] is None and data["iimm"] is None
    assert "nan" in capsys.readouterr().out
