"""The torch backend's differentiable path and its case axes (Tensor lr, complex parameters, mixed-dtype groups):
offered or refused with the reason, reaching torch as what they claim to be, and carried by reproductions."""
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import spec  # noqa: E402
from conformance.backend import Case, Group, complex_shape, for_backend  # noqa: E402
from conformance.backends import torch_backend  # noqa: E402
from conformance.replay import decode, reproduction  # noqa: E402
from conformance.strategies import cases  # noqa: E402

TORCH = ("adadelta", "adagrad", "adam", "adamw", "adamax", "nadam", "radam", "rmsprop", "sgd", "rprop")


@pytest.fixture(scope="module")
def backend():
    return torch_backend.make("torch-cpu")


def _case(optimizer, dtype="float32", shape=(3, 4), steps=3, seed=0, **hyper):
    rng = np.random.default_rng(seed)
    h = spec.get(optimizer).complete(hyper)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [[[rng.standard_normal(shape).astype(dtype)]] for _ in range(steps)]
    return Case(optimizer, dtype, [Group(h, [p])], grads)


@pytest.mark.parametrize("optimizer", TORCH)
def test_every_optimizer_has_the_differentiable_path(backend, optimizer):
    assert "differentiable" in backend.paths(optimizer)
    flags = backend._path_flags(optimizer, "differentiable")
    assert flags["differentiable"] is True and flags["foreach"] is False
    expected = "float32" if optimizer in ("adam", "adamw", "nadam") else "float64"
    assert backend.scalar_precision(optimizer, "differentiable") == expected


def test_refused_axes_carry_the_reason(backend):
    assert "lr as a Tensor is not supported for capturable=False and foreach=True" in \
        backend.case_axes("adam", "foreach", "float32")["lr_tensor"]
    assert backend.case_axes("adam", "for-loop", "float32") == {"lr_tensor": None, "complex": None,
                                                                "mixed_dtype": None, "betas_tensor": None}
    assert "betas[0] as a Tensor is not supported for capturable=False and foreach=True" in \
        backend.case_axes("adam", "foreach", "float32")["betas_tensor"]
    assert "packed scalar Tensor" in backend.case_axes("nadam", "foreach", "float32")["betas_tensor"]  # finding 108
    assert "betas_tensor" not in backend.case_axes("sgd", "for-loop", "float32")  # no betas: no axis
    assert "requires all the params to be floating point" in backend.case_axes("adam", "fused", "float32")["complex"]
    assert "no view_as_real" in backend.case_axes("sgd", "for-loop", "float64")["complex"]
    assert "bfloat16" in backend.case_axes("rmsprop", "foreach", "bfloat16")["complex"]
    assert backend.case_axes("rmsprop", "foreach", "float16")["complex"] is None  # complex32 steps on the CPU


class _OneDtypePerGroupSGD(torch.optim.SGD):
    """Refuses a group that mixes dtypes, as a class written for one dtype might."""

    def step(self, closure=None):
        if any(len({p.dtype for p in g["params"]}) > 1 for g in self.param_groups):
            raise RuntimeError("one dtype per group, please")
        return super().step(closure)


class _NoDefaultLrSGD(torch.optim.SGD):
    def __init__(self, params, lr, **kwargs):
        super().__init__(params, lr=lr, **kwargs)


def test_an_override_class_gets_the_mixed_dtype_axis_alone():
    """Issue 14: an ``--optimizer`` class is offered ``mixed_dtype`` (probed), and no other axis."""
    b = torch_backend.TorchBackend("cpu", overrides={"adam": torch.optim.Adam, "sgd": _OneDtypePerGroupSGD})
    assert b.case_axes("adam", "custom", "float32") == {"mixed_dtype": None}
    assert "one dtype per group, please" in b.case_axes("sgd", "custom", "float16")["mixed_dtype"]
    b = torch_backend.TorchBackend("cpu", overrides={"sgd": _NoDefaultLrSGD})
    assert "with its defaults in a one-dtype group either" in b.case_axes("sgd", "custom", "float32")["mixed_dtype"]


def _override_cases():
    out = [("adam", torch.optim.Adam, {"weight_decay": 0.0})]
    try:
        import pytorch_optimizer
        out.append(("lion@pytorch-optimizer", pytorch_optimizer.Lion, {}))
    except ImportError:  # the audits extra
        pass
    try:
        from conformance.adapters import schedulefree
        out.append(("schedulefree_adamw@schedulefree", schedulefree.AdamWScheduleFree, {}))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("optimizer, cls, hyper", _override_cases(), ids=lambda x: getattr(x, "__name__", None))
def test_a_mixed_dtype_group_of_an_override_class_steps_the_case_tensors_as_alone(optimizer, cls, hyper):
    b = torch_backend.TorchBackend("cpu", overrides={optimizer: cls})
    case = _case(optimizer, dtype="bfloat16", shape=(2, 3), **hyper)
    assert b.case_axes(optimizer, "custom", "bfloat16") == {"mixed_dtype": None}
    alone = b.run(for_backend(case, "custom"))
    mixed = b.run(for_backend(replace(case, mixed_dtype=True), "custom"))
    for x, y in zip(alone, mixed):
        assert len(y.params[0]) == 1 and np.array_equal(x.params[0][0], y.params[0][0], equal_nan=True)
        assert x.state[0][0].keys() == y.state[0][0].keys()
        for k in x.state[0][0]:
            assert np.array_equal(np.asarray(x.state[0][0][k]), np.asarray(y.state[0][0][k]), equal_nan=True), k


def test_complex_tensors_are_the_pairs_of_the_real_ones(backend):
    case = replace(_case("adam"), complex=True)
    t = backend._tensor(case.groups[0].params[0], case)
    assert t.is_complex() and tuple(t.shape) == complex_shape((3, 4)) == (3, 2)
    assert torch.view_as_real(t).flatten(-2).tolist() == case.groups[0].params[0].tolist()
    assert not backend._tensor(np.zeros(3, np.float32), case).is_complex()  # odd last dimension: real
    assert not backend._tensor(np.zeros((), np.float32), case).is_complex()


@pytest.mark.parametrize("optimizer, path", [("adam", "for-loop"), ("adam", "foreach"), ("rprop", "for-loop"),
                                             ("adagrad", "differentiable"), ("rmsprop", "foreach")])
def test_a_complex_case_steps_each_part_as_the_real_case_does(backend, optimizer, path):
    hyper = {"weight_decay": 0.0} if optimizer != "rprop" else {}
    real = _case(optimizer, **hyper)
    a = backend.run(for_backend(real, path))
    b = backend.run(for_backend(replace(real, complex=True), path))
    for x, y in zip(a, b):
        assert all(np.array_equal(p, q) for p, q in zip(x.params[0], y.params[0]))
        assert x.state[0][0].keys() == y.state[0][0].keys()
        for k in x.state[0][0]:
            assert np.array_equal(np.asarray(x.state[0][0][k]), np.asarray(y.state[0][0][k])), k


@pytest.mark.parametrize("optimizer", TORCH)
def test_a_mixed_dtype_group_steps_the_case_tensors_as_a_one_dtype_group(backend, optimizer):
    """Every path, float16 and float64: the case's tensors, each followed by a companion of another dtype in the
    same group, end where they end alone; torch's foreach and fused paths split such a group by dtype."""
    for dtype in ("float16", "float64"):
        case = _case(optimizer, dtype=dtype, shape=(3, 4))
        p2 = np.random.default_rng(1).standard_normal(5).astype(dtype)
        case = replace(case, groups=[Group(case.groups[0].hyper, [case.groups[0].params[0], p2])],
                       grads=[[[g[0][0], None if s == 1 else -p2]] for s, g in enumerate(case.grads)])
        for path in backend.paths(optimizer):
            if backend.case_axes(optimizer, path, dtype).get("mixed_dtype") is not None:
                continue
            alone = backend.run(for_backend(case, path))
            mixed = backend.run(for_backend(replace(case, mixed_dtype=True), path))
            for x, y in zip(alone, mixed):
                assert len(y.params[0]) == 2 and all(p.dtype == case.groups[0].params[0].dtype for p in y.params[0])
                assert all(np.array_equal(p, q, equal_nan=True) for p, q in zip(x.params[0], y.params[0])), path
                for sx, sy in zip(x.state[0], y.state[0]):
                    assert sx.keys() == sy.keys(), path
                    for k in sx:
                        assert np.array_equal(np.asarray(sx[k]), np.asarray(sy[k]), equal_nan=True), (path, k)


def test_the_mixed_dtype_axis_puts_a_companion_of_another_dtype_after_each_tensor(backend):
    case = replace(_case("adam", dtype="bfloat16", shape=(2,)), mixed_dtype=True)
    ts = backend._tensors(case.groups[0].params[0], case)
    assert [t.dtype for t in ts] == [torch.bfloat16, torch.float32]
    assert ts[1].tolist() == ts[0].float().tolist()  # bfloat16 values are float32 values exactly


def test_the_complex_axis_reaches_torch_as_complex_arithmetic(backend):
    """θ = 1 + inf·i with weight decay: only a complex tensor makes the for-loop's real part NaN (inf·0)."""
    case = Case("adam", "float32", [Group(spec.get("adam").complete({"lr": 0.1, "weight_decay": 0.5}),
                                          [np.array([1.0, np.inf], np.float32)])],
                [[[np.array([0.5, 0.25], np.float32)]]])
    assert math.isfinite(backend.run(for_backend(case, "for-loop"))[0].params[0][0][0])
    assert math.isnan(backend.run(for_backend(replace(case, complex=True), "for-loop"))[0].params[0][0][0])


def test_a_tensor_lr_is_a_float64_tensor_changed_in_place(backend):
    case = replace(_case("adagrad", lr=0.25), lr_tensor=True, lrs=[[None], [0.125], [None]])
    opt = backend._construct(torch.optim.Adagrad, case, [[torch.zeros(2)]], {"foreach": False}, "Adagrad")
    lr = opt.param_groups[0]["lr"]
    assert torch.is_tensor(lr) and lr.dtype == torch.float64 and lr.item() == 0.25
    plain = backend.run(for_backend(replace(case, lr_tensor=False), "for-loop"))
    tensor = backend.run(for_backend(case, "for-loop"))
    assert all(np.array_equal(x.params[0][0], y.params[0][0]) for x, y in zip(plain, tensor))


def _drawn(strategy, n: int = 40) -> list:
    """``n`` derandomized draws, without shrinking (``hypothesis.find`` shrank its match: most of this test's
    former 65 s)."""
    from hypothesis import Phase, given, settings

    out = []

    @settings(max_examples=n, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
    @given(strategy)
    def collect(case):
        out.append(case)
    collect()
    return out


def test_the_strategies_draw_only_the_offered_axes():
    adam = spec.get("adam")
    for axis in ("complex", "lr_tensor", "mixed_dtype"):
        drawn = _drawn(cases(adam, "float32", axes=(axis,)))
        assert any(getattr(c, axis) for c in drawn), axis
        others = {"complex", "lr_tensor", "mixed_dtype"} - {axis}
        assert not any(getattr(c, other) for c in drawn for other in others), axis
    assert not any(c.complex or c.lr_tensor or c.mixed_dtype for c in _drawn(cases(adam, "float32")))


def test_a_reproduction_carries_the_axes():
    case = replace(_case("adam", steps=1), complex=True, lr_tensor=True, mixed_dtype=True)
    source = reproduction(case, "torch-cpu", "for-loop", "trajectory")
    assert "lr_tensor=True" in source and "complex=True" in source and "mixed_dtype=True" in source
    call = source.split("replay(", 1)[1].rsplit(")", 1)[0]
    args = eval(f"dict({call})")  # the printed call's arguments, as replay receives them
    back = decode(args["optimizer"], args["dtype"], args["groups"], args["grads"], args["lrs"], args["layout"],
                  lr_tensor=args["lr_tensor"], complex=args["complex"], mixed_dtype=args["mixed_dtype"])
    assert back.complex and back.lr_tensor and back.mixed_dtype
    assert np.array_equal(back.groups[0].params[0], case.groups[0].params[0])


class _Config:
    """What ``conformance.plugin.combos`` and ``refused_axes`` read of a pytest config."""

    _conformance_overrides: dict = {}

    def __init__(self, backend, specs):
        self._conformance_backend, self._specs = backend, specs

    def getoption(self, name):
        return {"--spec": self._specs, "--backend": "torch-cpu"}[name]


def test_the_run_lists_the_refused_axes_with_the_reason(backend):
    from conformance.plugin import refused_axes

    lines = refused_axes(_Config(backend, ["adam", "sgd"]))
    assert any(line.startswith("adam lr_tensor: not drawn on foreach/float16") and
               "lr as a Tensor is not supported" in line for line in lines), lines
    assert any(line.startswith("sgd complex: not drawn on for-loop/float16") and "no view_as_real" in line
               for line in lines), lines
    assert not any(line.startswith("adam complex: not drawn on for-loop/float32") for line in lines)


def test_property_tests_leave_out_the_differentiable_path(backend):
    from conformance.plugin import combos

    def paths(value_test):
        return {p.values[1] for p in combos(_Config(backend, ["nadam"]), value_test)}

    assert "differentiable" in paths(True)
    assert paths(False) == paths(True) - {"differentiable"}
