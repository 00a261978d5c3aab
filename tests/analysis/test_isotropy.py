"""tanlib.analysis.isotropy against naive computations: the spectrum's summaries by their
formulas on eigenvalues from numpy, the 1-NN by an explicit double loop, and a run directory
whose metric is known."""

import numpy as np
import pytest
import torch

from tanlib.analysis.isotropy import TOP, loo_1nn, nearest_neighbours, run_isotropy, spectrum, within_class_cov
from tanlib.errors import RunDirError
from tanlib.losses.distance import MahalanobisDistance


def test_spectrum_of_known_covariances():
    iso = spectrum(np.eye(16) * 3.0)
    assert iso["effective_rank"] == pytest.approx(16) and iso["condition"] == pytest.approx(1)
    assert iso["top_share"] == pytest.approx(TOP / 16)
    one = spectrum(np.diag([5.0] + [0.0] * 15))
    assert one["effective_rank"] == pytest.approx(1) and one["top_share"] == pytest.approx(1)
    assert one["condition"] == float("inf")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12)) * np.linspace(0.1, 3, 12)
    cov = np.cov(x.T)
    got = spectrum(cov)
    lam = sorted(np.linalg.eigvals(cov).real, reverse=True)
    lam = [v * 12 / sum(lam) for v in lam]
    assert got["eigenvalues"] == pytest.approx(lam)
    assert got["effective_rank"] == pytest.approx(sum(lam) ** 2 / sum(v * v for v in lam))
    assert got["top_share"] == pytest.approx(sum(lam[:TOP]) / sum(lam))
    assert got["condition"] == pytest.approx(lam[0] / lam[-1])
    with pytest.raises(ValueError, match="square"):
        spectrum(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="zero"):
        spectrum(np.zeros((3, 3)))


def test_within_class_cov_against_a_loop():
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    total = np.zeros((4, 4))
    for c in range(3):
        for row in x[labels == c]:
            d = row - x[labels == c].mean(0)
            total += np.outer(d, d)
    assert within_class_cov(x, labels) == pytest.approx(total / (60 - 3))


def _naive_nn(x):
    out = []
    for i in range(len(x)):
        best, arg = np.inf, -1
        for j in range(len(x)):
            if i != j:
                d = float(np.sum((x[i] - x[j]) ** 2))
                if d < best:
                    best, arg = d, j
        out.append(arg)
    return np.array(out)


def test_nearest_neighbours_and_loo_1nn_against_a_double_loop():
    rng = np.random.default_rng(2)
    x, labels = rng.normal(size=(70, 5)), rng.integers(0, 3, 70)
    assert (nearest_neighbours(x, chunk=16) == _naive_nn(x)).all()
    a = rng.normal(size=(5, 5))
    acc, nn = loo_1nn(x, labels, a)
    naive = _naive_nn(x @ a.T)
    assert (nn == naive).all() and acc == pytest.approx(np.mean(labels[naive] == labels))
    assert loo_1nn(x, labels)[1].tolist() == _naive_nn(x).tolist()


def _checkpoint(path, dist, config):
    state = {f"distance.{k}": v for k, v in dist.state_dict().items()} if dist is not None else {}
    torch.save({"model": {}, "objective": state, "config": config}, path / "last.pt")


def test_a_run_directory_with_a_known_metric(tmp_path):
    """A run whose running covariance has 3 nuisance directions 100x the others and one 1e-4
    of them: the spectrum says so; M is the run's own (its shrinkage, A applied as x A^T):
    the nearest neighbours are those of that M, and another shrinkage would change them; M
    undoes the nuisance, so its 1-NN is far above the Euclidean; the top/rest split is the
    running covariance's eigenvectors. A run whose metric never saw a batch (a method
    without the Mahalanobis term) and an identity-metric run get the Euclidean readout only."""
    rng = np.random.default_rng(3)
    d, n = 12, 240
    scale = np.array([10.0] * 3 + [1.0] * (d - 4) + [0.01])
    dist = MahalanobisDistance("covariance", dim=d, shrinkage=0.01)
    dist.update(torch.tensor(rng.normal(size=(2000, d)) * scale, dtype=torch.float32))
    config = {"method": "tan", "metric": "covariance", "seed": 0, "shrinkage": 0.01}
    _checkpoint(tmp_path, dist, config)
    labels = rng.integers(0, 3, n)
    emb = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    emb[:, 3] += 2 * labels  # the class lies along a unit direction; the nuisance (10x) hides it
    emb[:, -1] += rng.normal(0, 0.05, n)  # noise where the running covariance has almost none
    np.savez(tmp_path / "embeddings.npz", embedding=emb, label=labels)
    out = run_isotropy(tmp_path, max_faces=200)
    assert out["method"] == "tan" and out["faces"] == 200
    assert out["running_cov"]["effective_rank"] < 4  # the nuisance directions hold most of the variance
    pick = np.sort(np.random.default_rng(0).permutation(n)[:200])
    x, y = emb[pick], labels[pick]
    a = dist.transform().double().numpy()
    acc_e, nn_e = loo_1nn(x, y)
    acc_m, nn_m = loo_1nn(x, y, a)
    assert out["loo_1nn_euclidean"] == pytest.approx(acc_e) and out["loo_1nn_mahalanobis"] == pytest.approx(acc_m)
    assert out["neighbour_changed"] == pytest.approx(np.mean(nn_e != nn_m))
    assert acc_m > acc_e + 0.15  # the metric undoes the nuisance
    other = MahalanobisDistance("covariance", dim=d, shrinkage=0.001)
    other.load_state_dict(dist.state_dict())
    assert np.mean(loo_1nn(x, y, other.transform().double().numpy())[1] != nn_e) != out["neighbour_changed"]
    assert np.mean(loo_1nn(x, y, a.T)[1] != nn_e) != out["neighbour_changed"]  # A, not A^T, is applied
    vectors = np.linalg.eigh(dist.running_cov.double().numpy())[1][:, ::-1]
    assert out["loo_1nn_top"] == pytest.approx(loo_1nn(x @ vectors[:, :TOP], y)[0])
    assert out["loo_1nn_rest"] == pytest.approx(loo_1nn(x @ vectors[:, TOP:], y)[0])
    for metric_dist, method in ((MahalanobisDistance("covariance", dim=d), "ce"), (None, "tan-euclid")):
        _checkpoint(tmp_path, metric_dist, {"method": method, "metric": "covariance" if metric_dist else "identity"})
        plain = run_isotropy(tmp_path, max_faces=200)
        assert plain["method"] == method and plain["loo_1nn_euclidean"] == pytest.approx(acc_e)
        assert not {"running_cov", "loo_1nn_mahalanobis", "loo_1nn_top"} & set(plain)
    (tmp_path / "embeddings.npz").unlink()
    with pytest.raises(RunDirError, match="embeddings.npz is missing"):
        run_isotropy(tmp_path)


def test_the_generator_writes_the_summary_and_the_figure(tmp_path, capsys):
    """docs/make_isotropy.py on a run directory: one row per run with run_isotropy's numbers,
    the run's commit, and the spectrum figure."""
    import importlib.util
    import json
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("make_isotropy", repo / "docs" / "make_isotropy.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    run = tmp_path / "iso-test-run"  # no record has this name
    run.mkdir()
    rng = np.random.default_rng(4)
    dist = MahalanobisDistance("covariance", dim=4)
    dist.update(torch.tensor(rng.normal(size=(100, 4)) * [5, 1, 1, 1], dtype=torch.float32))
    state = {f"distance.{k}": v for k, v in dist.state_dict().items()}
    torch.save(
        {"model": {}, "objective": state, "config": {"method": "tan", "seed": 0, "shrinkage": 1e-3}}, run / "last.pt"
    )
    np.savez(run / "embeddings.npz", embedding=rng.normal(size=(50, 4)), label=rng.integers(0, 3, 50))
    (run / "env.json").write_text(json.dumps({"git_commit": "abc"}))
    other = tmp_path / "iso-test-run-10"  # the same run at a known label-noise level (its data.json)
    shutil.copytree(run, other)
    (other / "data.json").write_text(json.dumps({"label_noise": 0.1}))
    out, fig = tmp_path / "iso.json", tmp_path / "iso.png"
    assert gen.main([str(run), str(other), "--out", str(out), "--figure", str(fig)]) == 0
    row, row10 = json.loads(out.read_text())["runs"]
    assert row["run"] == "iso-test-run" and row["commit"] == "abc" and row["records"] == []
    assert row["label_noise"] is None and row10["label_noise"] == 0.1  # one panel per level
    assert row10["loo_1nn_euclidean"] == row["loo_1nn_euclidean"]
    assert row["loo_1nn_mahalanobis"] == pytest.approx(run_isotropy(run)["loo_1nn_mahalanobis"])
    assert fig.stat().st_size > 10_000
    assert "nearest neighbour changed for" in capsys.readouterr().out
    before = out.read_text()
    assert gen.main([str(run), str(tmp_path / "unfinished"), "--out", str(out), "--figure", str(fig)]) == 2
    err = capsys.readouterr().err
    assert "not a finished run directory" in err and "unfinished/last.pt" in err and "unfinished/embeddings.npz" in err
    assert out.read_text() == before  # nothing written
