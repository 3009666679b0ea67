"""Memory layouts (``Case.layout``): every backend steps tensors of the drawn layout, values unchanged, and a
reproduction replays the layout.

``conformance.backend.lay_out`` defines the layouts on NumPy arrays; the torch backend rebuilds them on its device
(``_laid_out``).  What the optimizer sees is recorded: torch.optim's own step on each path (for-loop, foreach,
fused, and the capturable paths with the CPU device check lifted), an ``--optimizer`` class, and the NumPy port's
step functions.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import spec as spec_pkg
from conformance.backend import LAYOUTS, Case, Group, for_backend, lay_out
from conformance.backends import load_class, numpy_backend
from conformance.check import check
from conformance.known_deviations import affecting, torch_target
from conformance.replay import decode, reproduction

torch = pytest.importorskip("torch")

from conformance.backends.torch_backend import TorchBackend, _laid_out, _to_torch  # noqa: E402
from tests.torch_capturable import capturable_on_cpu  # noqa: E402

SHAPES = [(), (1,), (9,), (3, 5), (2, 3, 7), (4, 1)]
NONCONTIGUOUS = {  # shape -> the layouts in which it is not contiguous (lay_out's docstring)
    (): set(), (1,): set(), (9,): {"strided"}, (3, 5): {"strided", "transposed"},
    (2, 3, 7): {"strided", "transposed"}, (4, 1): {"strided"},
}


def _element_strides(a: np.ndarray) -> tuple:
    return tuple(s // a.itemsize for s in a.strides)


def _case(layout: str, dtype: str = "float32") -> Case:
    """Adam, two steps, one tensor of every shape of SHAPES, in ``layout``."""
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[[rng.standard_normal(s).astype(dtype) for s in SHAPES]] for _ in range(2)]
    return Case("adam", dtype, [Group(spec_pkg.get("adam").complete({"lr": 0.01}), params)], grads, layout=layout)


def _expected(shape, layout):
    """(element strides, offset into the buffer, contiguous?) of a ``shape`` tensor in ``layout``."""
    view = lay_out(np.zeros(shape, np.float32), layout)
    base = view.base if view.base is not None else view
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // view.itemsize
    return _element_strides(view), offset, layout in NONCONTIGUOUS[shape]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_lay_out_keeps_values_and_sets_strides(shape, layout):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) - 3
    view = lay_out(a, layout)
    assert view.shape == a.shape and view.dtype == a.dtype and np.array_equal(view, a)
    assert not np.shares_memory(view, a)  # fresh: a backend may write into it
    assert view.flags.c_contiguous != (layout in NONCONTIGUOUS[shape])
    if layout == "strided" and shape:
        assert view.base.shape == shape[:-1] + (2 * shape[-1],) and np.isnan(view.base[..., 0::2]).all()
    t = _laid_out(_to_torch(a, "cpu"), layout)  # the torch backend's rebuild: the same strides and offset
    strides, offset, noncontiguous = _expected(shape, layout)
    assert (t.stride(), t.storage_offset(), t.is_contiguous()) == (strides, offset, not noncontiguous)
    assert np.array_equal(t.numpy(), a)


def test_unknown_layout_is_a_usage_error():
    with pytest.raises(ValueError, match="unknown layout 'diagonal'; known: contiguous, strided, transposed"):
        lay_out(np.zeros(3), "diagonal")


def _assert_seen(seen, layout):
    """``seen``: (shape, param strides, offset, is_contiguous, grad strides) per tensor stepped."""
    assert {s[0] for s in seen} == set(SHAPES)
    for shape, strides, offset, contiguous, grad_strides in seen:
        want_strides, want_offset, noncontiguous = _expected(shape, layout)
        assert (strides, offset, contiguous, grad_strides) == (want_strides, want_offset, not noncontiguous, want_strides)


PATHS = ("for-loop", "foreach", "fused", "capturable", "capturable-foreach")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
def test_torch_paths_step_tensors_of_the_layout(path, layout, monkeypatch):
    """torch.optim.Adam.step, on every path, gets parameters and gradients of the case's layout, and the result
    is within the tolerance (the check reads values, whatever the strides), except where a known deviation
    (the CPU fused kernel on a strided tensor) says it is not."""
    backend = TorchBackend("cpu")
    assert path in backend.paths("adam") or path.startswith("capturable")
    seen = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        for g in self.param_groups:
            for p in g["params"]:
                seen.append((tuple(p.shape), p.stride(), p.storage_offset(), p.is_contiguous(), p.grad.stride()))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    case = _case(layout)
    with capturable_on_cpu():
        outputs = backend.run(for_backend(case, path))
    _assert_seen(seen, layout)
    known = affecting(torch_target("torch-cpu", "adam"), "adam", path, "float32", case, "test_trajectory")
    assert check(case, outputs).ok != bool(known)  # fused + strided: adam-fused-cpu-ignores-strides


@pytest.mark.parametrize("layout", LAYOUTS)
def test_optimizer_class_steps_tensors_of_the_layout(layout):
    cls = load_class("tests.layout_probe:RecordingAdam")
    cls.seen.clear()
    case = _case(layout)
    outputs = TorchBackend("cpu", overrides={"adam": cls}).run(for_backend(case, "custom"))
    _assert_seen(cls.seen, layout)
    assert check(case, outputs).ok


@pytest.mark.parametrize("layout", LAYOUTS)
def test_numpy_port_steps_views_of_the_layout(layout, monkeypatch):
    """The NumPy port's step function reads views of the layout, and its results are those of a contiguous run
    bit for bit (its arithmetic is element by element)."""
    seen = []
    adam = numpy_backend._STEPS["adam"]

    def recording(k, p, g, *rest):
        want, _, noncontiguous = _expected(p.shape, layout)
        seen.append((p.shape, _element_strides(p) == want, _element_strides(g) == want,
                     p.flags.c_contiguous != noncontiguous))
        return adam(k, p, g, *rest)

    monkeypatch.setitem(numpy_backend._STEPS, "adam", recording)
    case = _case(layout)
    got = numpy_backend.backend.run(for_backend(case, "for-loop"))
    assert {s[0] for s in seen} == set(SHAPES) and all(all(s[1:]) for s in seen)
    plain = numpy_backend.backend.run(for_backend(replace(case, layout="contiguous"), "for-loop"))
    assert all(a.tobytes() == b.tobytes() for o, q in zip(got, plain) for a, b in zip(o.params[0], q.params[0]))


def test_reproduction_replays_the_layout():
    """The printed reproduction names the layout; replaying it steps tensors of that layout, with the same verdicts."""
    cls = load_class("tests.layout_probe:RecordingAdam")
    case = _case("transposed", "float64")
    outputs = TorchBackend("cpu", overrides={"adam": cls}).run(for_backend(case, "custom"))
    report = check(case, outputs, "trajectory")
    repro = reproduction(case, "torch-cpu", "custom", "trajectory", {"adam": "tests.layout_probe:RecordingAdam"})
    assert "layout='transposed'" in repro
    cls.seen.clear()
    ns = {}
    exec(repro.replace("replay(", "report = replay(quiet=True, ", 1), ns)  # noqa: S102
    _assert_seen(cls.seen, "transposed")
    assert ns["report"].summary() == report.summary()


def test_decode_defaults_to_contiguous():
    """A reproduction printed before layouts existed (no ``layout=``) replays contiguous, as it ran."""
    assert decode("adam", "float32", [({}, [])], [], None).layout == "contiguous"
