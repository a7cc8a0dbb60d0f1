"""Factor rotations against psych::fa and GPArotation (tests/reference/rotation.R)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from analysis.rotation import METHODS, ConvergenceWarning, Rotation, align_factors, rotate

REFERENCE = Path(__file__).resolve().parent / "reference" / "rotation.json"
TOL = 1e-3

# psych::fa's rotate = ... -> gapscale's method name
PSYCH_METHODS = {"varimax": "varimax", "quartimin": "quartimin", "oblimin": "oblimin",
                 "geominQ": "geomin", "geominT": "geominT", "promax": "promax", "Promax": "Promax"}
ORTHOGONAL = {"varimax", "geominT"}
# reference name in "extra" -> (method, keyword arguments)
EXTRA = {"varimax_raw": ("varimax", {"normalize": False}),
         "oblimin_kaiser": ("oblimin", {"normalize": True}),
         "geominQ_kaiser": ("geomin", {"normalize": True}),
         "oblimin_gam05": ("oblimin", {"gamma": 0.5}),
         "geominQ_delta05": ("geomin", {"delta": 0.05})}


def _load():
    with REFERENCE.open(encoding="utf-8") as fh:
        return json.load(fh)


REF = _load()
CASES = {case["name"]: case for case in REF["cases"]}
PAIRS = [(case, method) for case in CASES for method in PSYCH_METHODS]


def _unrotated(case: str) -> np.ndarray:
    return np.array(CASES[case]["unrotated"], dtype=float)


def _phi(value, m: int) -> np.ndarray:
    return np.eye(m) if value is None else np.array(value, dtype=float)


def _congruence(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tucker's congruence coefficients between the columns of x and of y."""
    return (x.T @ y) / np.outer(np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0))


@pytest.fixture(scope="module")
def rotations() -> dict[tuple[str, str], Rotation]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reference rotation must converge without any warning
        return {(case, r_method): rotate(_unrotated(case), method)
                for case in CASES for r_method, method in PSYCH_METHODS.items()}


# --------------------------------------------------------------------------- against R


@pytest.mark.parametrize("case, r_method", PAIRS)
def test_matches_the_r_rotation_itself(rotations, case, r_method):
    """Same transformation as stats::varimax / GPArotation / psych::kaiser, no alignment at all."""
    result = rotations[case, r_method]
    ref = CASES[case]["methods"][r_method]["direct"]
    m = CASES[case]["nfactors"]
    np.testing.assert_allclose(result.loadings, np.array(ref["loadings"]), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.phi, _phi(ref["Phi"], m), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.rotation, np.array(ref["Th"]), rtol=0, atol=TOL)
    assert result.converged
    assert result.orthogonal == (r_method in ORTHOGONAL)
    if ref["iterations"] is not None:  # GPArotation reports its iterations; same algorithm, same count
        assert result.iterations == ref["iterations"]


@pytest.mark.parametrize("case, r_method", PAIRS)
def test_aligned_matches_psych_fa(rotations, case, r_method):
    """align_factors reproduces psych::fa's reported loadings and Phi column by column."""
    ref = CASES[case]["methods"][r_method]["psych"]
    m = CASES[case]["nfactors"]
    psych_loadings, psych_phi = np.array(ref["loadings"]), _phi(ref["Phi"], m)
    aligned = rotations[case, r_method].aligned()
    np.testing.assert_allclose(aligned.loadings, psych_loadings, rtol=0, atol=TOL)
    np.testing.assert_allclose(aligned.phi, psych_phi, rtol=0, atol=TOL)

    # The comparison is column by column, with no matching: each of our factors is most congruent
    # with psych's factor in the same position, clearly more than with any other.
    congruence = _congruence(aligned.loadings, psych_loadings)
    assert np.all(np.diag(congruence) > 0.9999)
    off = np.abs(congruence - np.diag(np.diag(congruence)))
    assert off.max() < 0.95

    # psych's output obeys the rule align_factors implements: positive column sums, variance
    # accounted for (diag(Phi L'L)) decreasing, so aligning it again changes nothing.
    assert np.all(psych_loadings.sum(axis=0) > 0)
    accounted = np.diag(psych_phi @ psych_loadings.T @ psych_loadings)
    assert np.all(np.diff(accounted) <= 0)
    again = align_factors(psych_loadings, psych_phi)
    np.testing.assert_array_equal(again.order, np.arange(m))
    np.testing.assert_array_equal(again.signs, np.ones(m))


def test_alignment_is_needed_for_bfi(rotations):
    """The bfi case is a real test of the alignment: for every method psych reorders or
    reflects the factors GPArotation returns."""
    for r_method in PSYCH_METHODS:
        result = rotations["bfi5", r_method]
        a = align_factors(result.loadings, result.phi)
        assert np.any(a.order != np.arange(5)) or np.any(a.signs < 0), r_method


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(EXTRA))
def test_non_default_settings_match_r(case, name):
    """Kaiser normalisation on/off, oblimin gamma and geomin delta, against R directly."""
    method, kwargs = EXTRA[name]
    ref = CASES[case]["extra"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rotate(_unrotated(case), method, **kwargs)
    m = CASES[case]["nfactors"]
    np.testing.assert_allclose(result.loadings, np.array(ref["loadings"]), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.phi, _phi(ref["Phi"], m), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.rotation, np.array(ref["Th"]), rtol=0, atol=TOL)
    if ref.get("iterations") is not None:
        assert result.iterations == ref["iterations"]
    assert result.normalize == kwargs.get("normalize", result.normalize)


def test_defaults_follow_psych():
    a = _unrotated("hs3")
    assert rotate(a, "varimax").normalize is True
    assert rotate(a, "promax").normalize is True
    assert rotate(a, "Promax").normalize is False
    for method in ("quartimin", "oblimin", "geomin", "geominQ", "geominT"):
        assert rotate(a, method).normalize is False
    # aliases: geominQ is geomin; Promax is promax without the Kaiser normalisation
    np.testing.assert_array_equal(rotate(a, "geominQ").loadings, rotate(a, "geomin").loadings)
    assert rotate(a, "geominQ").method == "geomin"
    np.testing.assert_allclose(rotate(a, "Promax").loadings, rotate(a, "promax", normalize=False).loadings,
                               rtol=0, atol=1e-12)
    # oblimin with gamma = 0 is quartimin
    np.testing.assert_allclose(rotate(a, "oblimin").loadings, rotate(a, "quartimin").loadings, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("case, r_method", PAIRS)
def test_rotation_invariants(rotations, case, r_method):
    a = _unrotated(case)
    result = rotations[case, r_method]
    m = a.shape[1]
    lam, phi, th = result.loadings, result.phi, result.rotation
    # Lambda = A (T')^-1 and Phi = T'T, with unit-length columns of T
    np.testing.assert_allclose(lam, a @ np.linalg.inv(th).T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(phi, th.T @ th, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.diag(phi), np.ones(m), rtol=0, atol=1e-10)
    # the common part of the correlations is unchanged
    np.testing.assert_allclose(lam @ phi @ lam.T, a @ a.T, rtol=0, atol=1e-10)
    if result.orthogonal:
        np.testing.assert_allclose(phi, np.eye(m), rtol=0, atol=0)
        np.testing.assert_allclose(th.T @ th, np.eye(m), rtol=0, atol=1e-10)
        np.testing.assert_allclose((lam ** 2).sum(axis=1), (a ** 2).sum(axis=1), rtol=0, atol=1e-10)
    else:
        assert np.all(np.linalg.eigvalsh(phi) > 0)
        assert np.abs(phi - np.eye(m)).max() > 0.05  # a genuinely oblique solution


@pytest.mark.parametrize("r_method", list(PSYCH_METHODS))
def test_reflected_and_permuted_input_gives_the_same_aligned_solution(r_method):
    """Every criterion ignores the order and signs of the unrotated factors (psych reflects
    them before rotating); after alignment the solution is the same."""
    a = _unrotated("bfi5")
    shuffled = a[:, [3, 0, 4, 2, 1]] * np.array([-1, 1, -1, 1, -1])
    method = PSYCH_METHODS[r_method]
    x, y = rotate(a, method).aligned(), rotate(shuffled, method).aligned()
    np.testing.assert_allclose(y.loadings, x.loadings, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y.phi, x.phi, rtol=0, atol=1e-6)


def test_aligned_keeps_the_transformation_consistent(rotations):
    a = _unrotated("bfi5")
    aligned = rotations["bfi5", "geominQ"].aligned()
    np.testing.assert_allclose(aligned.loadings, a @ np.linalg.inv(aligned.rotation).T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(aligned.phi, aligned.rotation.T @ aligned.rotation, rtol=0, atol=1e-10)


def test_align_factors_rule():
    lam = np.array([[0.1, -0.8, 0.0], [0.2, -0.7, 0.0], [0.3, 0.1, 0.0]])
    phi = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]])
    a = align_factors(lam, phi)
    np.testing.assert_array_equal(a.order, [1, 0, 2])  # the zero column keeps its sign, comes last
    np.testing.assert_array_equal(a.signs, [-1.0, 1.0, 1.0])
    np.testing.assert_allclose(a.loadings, lam[:, [1, 0, 2]] * [-1, 1, 1])
    np.testing.assert_allclose(a.phi, [[1.0, -0.3, 0.0], [-0.3, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(align_factors(lam).phi, np.eye(3))
    loadings, phi_aligned = a  # unpacks as (loadings, phi), as analysis.efa uses it
    np.testing.assert_array_equal(loadings, a.loadings)
    np.testing.assert_array_equal(phi_aligned, a.phi)


# --------------------------------------------------------------------------- convergence


@pytest.mark.parametrize("method", ["varimax", "quartimin", "oblimin", "geomin", "geominT", "promax", "Promax"])
def test_iteration_limit_warns(method):
    a = _unrotated("bfi5")
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1"):
        result = rotate(a, method, max_iter=1)
    assert not result.converged
    assert result.iterations == 1
    # the last iterate is still a valid rotation of A
    np.testing.assert_allclose(result.loadings @ result.phi @ result.loadings.T, a @ a.T, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- bad input


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown rotation method 'obliman'.*varimax.*oblimin.*geomin.*promax"):
        rotate(_unrotated("hs3"), "obliman")
    assert "none" in METHODS


def test_none_returns_the_loadings():
    a = _unrotated("hs3")
    result = rotate(a, "none")
    np.testing.assert_array_equal(result.loadings, a)
    np.testing.assert_array_equal(result.phi, np.eye(3))
    np.testing.assert_array_equal(result.rotation, np.eye(3))
    assert result.converged and result.orthogonal and result.note == ""


@pytest.mark.parametrize("method", ["varimax", "oblimin", "geomin", "promax"])
def test_one_factor_is_left_unrotated_with_a_note(recwarn, method):
    a = _unrotated("hs3")[:, :1]
    result = rotate(a, method)
    np.testing.assert_array_equal(result.loadings, a)
    np.testing.assert_array_equal(result.phi, [[1.0]])
    assert result.method == "none"
    assert "one factor" in result.note and method in result.note
    assert len(recwarn) == 0


def test_nan_loading_is_named():
    a = _unrotated("hs3")
    a[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"loadings\[4, 1\] \(row 5, factor 2\) is nan"):
        rotate(a, "oblimin")
    with pytest.raises(ValueError, match="non-finite"):
        align_factors(a)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 2)), [["a", "b"]]])
def test_not_a_matrix(bad):
    with pytest.raises(ValueError, match="loadings"):
        rotate(bad, "varimax")


def test_zero_row_with_kaiser_normalisation():
    a = _unrotated("hs3")
    a[2] = 0.0
    with pytest.raises(ValueError, match="row 3 of the loadings is all zeros"):
        rotate(a, "varimax")
    rotate(a, "oblimin")  # fine without normalisation


@pytest.mark.parametrize("kwargs, match", [
    ({"max_iter": 0}, "max_iter"),
    ({"max_iter": 2.5}, "max_iter"),
    ({"tol": 0}, "tol"),
    ({"tol": float("nan")}, "tol"),
    ({"normalize": "yes"}, "normalize"),
    ({"delta": 0.05}, "applies only to method 'geomin'"),
    ({"power": 3}, "applies only to method 'promax'"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rotate(_unrotated("hs3"), "oblimin", **kwargs)


def test_bad_phi_shape():
    with pytest.raises(ValueError, match="3 x 3"):
        align_factors(_unrotated("hs3"), np.eye(2))
