"""Known deviations excuse only the implementation they were measured on, in the tests they name.

The hole this closes: torch's entries once matched any class audited under the torch backend, so a
third-party NAdam with torch's own slip (μ product rounded to float32 in a float64 run) was reported as a
known deviation and the run exited 0.  Subprocess runs are the real command line (``tests/harness_profiles``).
"""
from __future__ import annotations

import pytest

from conformance import known_deviations as kd
from tests.harness_profiles import run_pytest

torch = pytest.importorskip("torch")

from conformance.backends.torch_backend import TorchBackend  # noqa: E402

NADAM = ["conformance/test_conformance.py", "--backend=torch-cpu", "--spec", "nadam", "-q", "-n", "0"]


def test_a_third_party_nadam_with_torchs_slip_fails():
    """tests.broken_optimizers.FaithfulNAdam keeps mu_product in float32 as torch does: audited as a third-party
    class it must fail in float64; torch's entry is about torch.optim.NAdam only."""
    run = run_pytest(NADAM + ["-k", "test_trajectory and float64", "--optimizer",
                              "nadam=tests.broken_optimizers:FaithfulNAdam"], profile="ci-noshrink")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    assert "1 failed" in out and "xfail" not in out and "Reproduce with:" in out, out[-3000:]


def test_torchs_own_nadam_float64_stays_an_expected_failure():
    run = run_pytest(NADAM + ["-k", "test_trajectory and for-loop and float64"])
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "1 xfailed" in out, out[-3000:]


def test_implementation_names_the_class_that_runs():
    version = torch.__version__
    assert TorchBackend("cpu").implementation("nadam", "for-loop") == ("torch.optim.NAdam", version)
    assert TorchBackend("cpu").implementation("cosine", None) == ("torch.optim.lr_scheduler", version)
    from tests.broken_optimizers import FaithfulNAdam
    other = TorchBackend("cpu", overrides={"nadam": FaithfulNAdam})
    name, _ = other.implementation("nadam", "custom")
    assert name == "tests.broken_optimizers:FaithfulNAdam"
    assert kd.find(kd.target_of(other, "torch-cpu", "nadam", "custom"), "nadam", "custom", "float64",
                   "test_trajectory") is None
    same = TorchBackend("cpu", overrides={"nadam": torch.optim.NAdam})  # torch's class, given by --optimizer
    assert same.implementation("nadam", "custom") == ("torch.optim.NAdam", version)


def test_keras_adapter_names_keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the adapter's backend; Keras's default (TensorFlow) is absent
    pytest.importorskip("keras")
    from conformance.adapters import keras_torch
    name, version = keras_torch.Adam.conformance_implementation()
    assert name == "keras.optimizers.Adam" and version
    target = kd.Target("torch-cpu", name, "3.15.1")
    assert kd.find(target, "adam@keras", "custom", "bfloat16", "test_trajectory").id == \
        "keras-adam-bfloat16-beta2-power"
    assert kd.find(kd.Target("torch-cpu", name, "3.16.0"), "adam@keras", "custom", "bfloat16",
                   "test_trajectory") is None  # outside the measured versions


def test_entries_are_scoped_by_test_and_version():
    target = kd.torch_target("torch-cpu", "nadam")
    assert kd.find(target, "nadam", "foreach", "float64", "test_trajectory").id == "nadam-float64-mu-product"
    assert kd.find(target, "nadam", "foreach", "float64", "test_same_inputs_same_outputs") is None
    assert kd.find(kd.Target("torch-cpu", "torch.optim.NAdam", "2.14.0"), "nadam", "foreach", "float64",
                   "test_trajectory") is None
    assert kd.find(None, "nadam", "foreach", "float64", "test_trajectory") is None  # a backend without it


def test_every_entry_is_well_formed_and_has_its_evidence_section():
    from pathlib import Path
    page = (Path(__file__).resolve().parents[1] / kd.EVIDENCE_PAGE).read_text()
    ids = [d.id for d in kd.KNOWN_DEVIATIONS]
    assert len(ids) == len(set(ids))
    for d in kd.KNOWN_DEVIATIONS:
        assert f"\n## {d.id}\n" in page, d.id
        assert d.effect in ("xfail", "drift", "domain") and d.tests and d.implementation, d.id
        assert "\n" not in d.reason and len(d.reason) < 200, d.id
        from packaging.specifiers import SpecifierSet
        SpecifierSet(d.versions)  # valid


@pytest.mark.parametrize("spec, warned", [("nadam", True), ("sgd", False)])
def test_an_entry_matching_no_collected_test_warns(spec, warned):
    run = run_pytest(["conformance/test_conformance.py", "--backend=torch-cpu", "--spec", spec, "--collect-only",
                      "-q", "-n", "0", "-p", "tests.stale_deviation_plugin"])
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert ("known deviation stale-nadam-entry" in out) == warned, out[-3000:]
    assert "known deviation nadam-float64-mu-product" not in out  # it matches collected tests


def test_an_entry_that_shows_on_some_inputs_is_not_reported_stale_when_it_passes():
    """adagrad-foreach-maximize-half is a 1-ulp difference of two roundings on some inputs only: a run that
    draws none of them passes, which must not read as a stale entry (the reproduction catches a fix)."""
    entry = kd.by_id("adagrad-foreach-maximize-half")
    assert entry.on_some_inputs and entry.applies is None
    run = run_pytest(["conformance/test_properties.py", "--backend=torch-cpu", "--spec", "adagrad", "-q", "-n", "0",
                      "-k", "maximize and foreach and bfloat16"])
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    if "1 xpassed" in out:
        assert "known deviations not met this run" in out and "stale known deviations" not in out, out[-3000:]
    else:
        assert "1 xfailed" in out, out[-3000:]
    assert not any(d.on_some_inputs and d.applies is not None for d in kd.KNOWN_DEVIATIONS)
