"""Tests for conformance.backends.torch_backend (CPU; CUDA only checks its skip reason)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from conformance.backend import DTYPES, BackendError, Case, Group, check_output
from conformance.backends import torch_backend as tb
from conformance.optimizers import FUSED, OPTIMIZERS

BF16 = np.dtype(ml_dtypes.bfloat16)
ALL = tuple(name for name, info in OPTIMIZERS.items() if info.torch)
# torch's refusals of sparse gradients on the fused path of SGD and Adagrad (their sparse variants)
FUSED_REFUSES_SPARSE = {"sgd_sparse": "`_fused_sgd` does not support sparse gradients",
                        "adagrad_sparse": "`fused` does not support sparse grad or complex param"}
FUSED_ON_CPU = {name for name in ALL if FUSED in OPTIMIZERS[name].torch_paths  # torch 2.13 has CPU fused kernels
                and name not in FUSED_REFUSES_SPARSE}
NOT_DIFFERENTIABLE = {"adafactor", "sparse_adam"}  # torch.optim.Adafactor and SparseAdam have no differentiable argument


@pytest.fixture(scope="module")
def cpu():
    return tb.make("torch-cpu")


def adam_hyper(**kw):
    h = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    h.update(kw)
    return h


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


# --------------------------------------------------------------------------- probing


def test_paths_and_dtypes_probed_on_cpu(cpu):
    assert cpu.name == "torch-cpu"
    assert cpu.skip_reason is None
    for opt in ALL:
        paths = cpu.paths(opt)
        expected = (("for-loop",) + (("foreach",) if OPTIMIZERS[opt].foreach else ())  # SparseAdam has no foreach
                    + (() if opt in NOT_DIFFERENTIABLE else ("differentiable",))
                    + (("fused",) if opt in FUSED_ON_CPU else ()))
        assert paths == expected, opt
        for path in paths:
            assert cpu.dtypes(opt, path) == DTYPES, (opt, path)
            assert cpu.unsupported(opt, path) == {}
        missing = cpu.unsupported_paths(opt)
        if opt in FUSED_ON_CPU:
            assert missing == {}
        elif opt in FUSED_REFUSES_SPARSE:
            assert FUSED_REFUSES_SPARSE[opt] in missing["fused"]
        else:
            assert "has no 'fused' argument" in missing["fused"]
    assert cpu.paths("lion") == ()  # a spec without a torch.optim class: only an --optimizer class runs it
    assert cpu.dtypes("adam", "capturable") == ()  # CUDA-only path


def test_probe_records_reasons_for_failing_dtypes(monkeypatch):
    class PickyAdam(torch.optim.Adam):
        def step(self, closure=None):
            for g in self.param_groups:
                if g["fused"] and any(p.dtype == torch.float64 for p in g["params"]):
                    raise RuntimeError("no float64 kernel, sorry")
            return super().step(closure)

    backend = tb.TorchBackend("cpu")
    monkeypatch.setattr(backend, "optimizer_class", lambda opt: PickyAdam)
    assert backend.paths("adam") == ("for-loop", "foreach", "differentiable", "fused")
    assert backend.dtypes("adam", "fused") == ("float16", "bfloat16", "float32")
    assert backend.unsupported("adam", "fused") == {"float64": "RuntimeError: no float64 kernel, sorry"}
    assert backend.dtypes("adam", "for-loop") == DTYPES


# --------------------------------------------------------------------------- run


@pytest.mark.parametrize("path", ["for-loop", "foreach", "fused"])
def test_bfloat16_round_trip_with_lr_zero_is_bit_identical(cpu, path):
    # (no -0.0 here: -0.0 + (-0.0 * negative) = +0.0 is torch doing IEEE arithmetic, not the backend)
    values = [1.0, 0.0, 3.0e38, -1.5e-38, 9.2e-41, 1 / 3, -7.0, 65504.0, 2.0**-133]
    p0 = np.array(values, dtype=BF16)
    p1 = np.array(0.1, dtype=BF16)  # 0-d
    rng = np.random.default_rng(0)
    grads = [[[rng.standard_normal(p0.shape).astype(BF16), np.array(rng.standard_normal(), dtype=BF16)]] for _ in range(3)]
    case = Case("adam", "bfloat16", [Group(adam_hyper(lr=0.0), [p0.copy(), p1.copy()])], grads, path=path)
    outs = cpu.run(case)
    check_output(case, outs)
    for out in outs:
        q0, q1 = out.params[0]
        assert q0.dtype == BF16 and q1.dtype == BF16 and q1.shape == ()
        np.testing.assert_array_equal(bits(q0), bits(p0))
        np.testing.assert_array_equal(bits(q1), bits(p1))
    # the case's own arrays are not touched
    np.testing.assert_array_equal(bits(case.groups[0].params[0]), bits(p0))
    st = outs[-1].state[0][0]
    assert st["exp_avg"].dtype == BF16 and st["step"] == 3.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_conversion_is_bit_exact_and_grad_none_params_untouched(cpu, dtype):
    raw = np.array([0x0000, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x7FC1, 0xFFFF, 0x3F80, 0x7BFF, 0x8401], dtype=np.uint16)
    if dtype in ("float16", "bfloat16"):
        p = raw.view(np.float16 if dtype == "float16" else BF16)
    else:  # signed zeros, subnormals, infinities, NaN payloads
        wide = np.uint32 if dtype == "float32" else np.uint64
        shift = 16 if dtype == "float32" else 48
        p = (raw.astype(wide) << wide(shift)).view(dtype)
    assert np.array_equal(bits(tb._to_numpy(tb._to_torch(p, "cpu"))), bits(p))
    hyper = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)
    for path in cpu.paths("sgd"):
        outs = cpu.run(Case("sgd", dtype, [Group(hyper, [p, np.array(p[5])])],
                            [[[None, None]]] * 2, path=path))
        for out in outs:
            np.testing.assert_array_equal(bits(out.params[0][0]), bits(p))
            assert bits(out.params[0][1]) == bits(np.array(p[5])) and out.params[0][1].shape == ()
            assert out.params[0][0].dtype == p.dtype and out.state[0] == [{}, {}]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_params_match_direct_torch_and_inputs_not_mutated(cpu, dtype):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(5).astype(dtype)
    grads = [[[rng.standard_normal(5).astype(dtype)]] for _ in range(4)]
    case = Case("adam", dtype, [Group(adam_hyper(lr=0.01, amsgrad=True), [p0.copy()])], grads, path="for-loop")
    outs = cpu.run(case)
    np.testing.assert_array_equal(case.groups[0].params[0], p0)

    p = torch.tensor(p0)
    opt = torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, amsgrad=True, foreach=False, fused=False)
    for s in range(4):
        p.grad = torch.tensor(grads[s][0][0])
        opt.step()
        np.testing.assert_array_equal(bits(outs[s].params[0][0]), bits(p.numpy()))


def test_state_uses_torch_names_and_types(cpu):
    p = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    g = [[[np.array([0.1, 0.2, -0.3], dtype=np.float32)]] for _ in range(2)]
    st = cpu.run(Case("adam", "float32", [Group(adam_hyper(amsgrad=True), [p])], g, path="for-loop"))[-1].state[0][0]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert type(st["step"]) is float and st["step"] == 2.0
    assert all(st[k].dtype == np.float32 and st[k].shape == (3,) for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))

    sgd = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)
    st = cpu.run(Case("sgd", "float32", [Group(sgd, [p])], g, path="foreach"))[-1].state[0][0]
    assert set(st) == {"momentum_buffer"}
    np.testing.assert_array_equal(st["momentum_buffer"], np.float32(0.9) * g[0][0][0] + g[0][0][0])

    nadam = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3)
    st = cpu.run(Case("nadam", "float16", [Group(nadam, [p.astype(np.float16)])],
                      [[[x.astype(np.float16) for x in s[0]]] for s in g], path="for-loop"))[-1].state[0][0]
    assert set(st) == {"step", "mu_product", "exp_avg", "exp_avg_sq"}
    assert type(st["mu_product"]) is float and st["exp_avg"].dtype == np.float16

    st = cpu.run(Case("sgd", "float32", [Group(dict(sgd, momentum=0.0), [p])], g, path="for-loop"))[-1].state[0][0]
    assert st == {}  # momentum_buffer is None without momentum: omitted


def test_grad_none_param_untouched_with_empty_state(cpu):
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = np.array([3.0, -4.0], dtype=np.float32)
    c = np.array([5.0], dtype=np.float32)
    ga = np.array([0.5, 0.5], dtype=np.float32)
    gc = np.array([1.0], dtype=np.float32)
    grads = [[[ga, None, gc]], [[ga, None, None]], [[ga, None, None]]]
    outs = cpu.run(Case("adam", "float32", [Group(adam_hyper(lr=0.1), [a, b, c])], grads, path="foreach"))
    for out in outs:
        np.testing.assert_array_equal(out.params[0][1], b)
        assert out.state[0][1] == {}
    assert outs[-1].state[0][0]["step"] == 3.0
    assert outs[-1].state[0][2]["step"] == 1.0  # no grad after step 0: its state does not advance
    np.testing.assert_array_equal(outs[-1].params[0][2], outs[0].params[0][2])


def test_groups_and_lr_schedule(cpu):
    sgd = dict(lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)
    a = np.array([1.0, 1.0])
    b = np.array([1.0, 1.0])
    g = np.array([1.0, -2.0])
    case = Case("sgd", "float64",
                [Group(sgd, [a]), Group(dict(sgd, lr=0.25, maximize=True), [b])],
                [[[g], [g]]] * 3, lrs=[[0.5, 0.25], [0.125, 0.25], [0.0, 1.0]], path="for-loop")
    outs = cpu.run(case)
    np.testing.assert_array_equal(outs[0].params[0][0], [0.5, 2.0])
    np.testing.assert_array_equal(outs[1].params[0][0], [0.375, 2.25])
    np.testing.assert_array_equal(outs[2].params[0][0], [0.375, 2.25])
    np.testing.assert_array_equal(outs[2].params[1][0], [1.0 + 0.25 + 0.25 + 1.0, 1.0 - 0.5 - 0.5 - 2.0])


def test_backend_error_when_class_raises():
    class Exploding:
        def __init__(self, params, **hyper):
            self.param_groups = list(params)
            self.state = {}

        def step(self):
            raise RuntimeError("kaboom in step")

    backend = tb.TorchBackend("cpu", overrides={"adam": Exploding})
    p = np.zeros(2, dtype=np.float32)
    case = Case("adam", "float32", [Group(adam_hyper(), [p])], [[[p]]], path="custom")
    with pytest.raises(BackendError, match="Exploding") as info:
        backend.run(case)
    assert "kaboom in step" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)

    # a constructor rejecting a hyperparameter is wrapped too
    cpu = tb.TorchBackend("cpu")
    bad = Case("adam", "float32", [Group(adam_hyper(lr=-1.0), [p])], [[[p]]], path="for-loop")
    with pytest.raises(BackendError, match=r"torch\.optim\.adam\.Adam.*Invalid learning rate"):
        cpu.run(bad)
    with pytest.raises(BackendError, match="unknown path"):
        cpu.run(Case("adam", "float32", [Group(adam_hyper(), [p])], [[[p]]], path="warp-drive"))


class RecordingSGD:
    """A minimal third-party optimizer with torch.optim's API."""

    seen: list = []

    def __init__(self, params, lr=0.1, epsilon=0.0, b1=None, b2=None, betas=None):
        RecordingSGD.seen.append(dict(lr=lr, epsilon=epsilon, b1=b1, b2=b2, betas=betas))
        self.param_groups = [dict(g) for g in params]
        self.state = {}

    def step(self):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state.setdefault(p, {"step": 0})
                    st["step"] += 1
                    st["last_update"] = (-group["lr"] * p.grad).to(torch.float32)
                    p.add_(p.grad, alpha=-group["lr"])

    def state_dict(self):
        return {"state": self.state, "param_groups": self.param_groups}


def test_override_class_used():
    RecordingSGD.seen.clear()
    backend = tb.TorchBackend("cpu", overrides={"sgd": RecordingSGD})
    assert backend.paths("sgd") == ("custom",)
    assert backend.dtypes("sgd", "custom") == DTYPES
    assert backend.paths("adam") == ("for-loop", "foreach", "differentiable", "fused")  # others stay built-in
    p = np.array([1.0, 2.0], dtype=BF16)
    g = np.array([1.0, 1.0], dtype=BF16)
    outs = backend.run(Case("sgd", "bfloat16", [Group({"lr": 0.5}, [p])], [[[g]], [[g]]], path="custom"))
    assert RecordingSGD.seen[-1]["lr"] == 0.5
    assert outs[-1].params[0][0].dtype == BF16
    np.testing.assert_array_equal(outs[-1].params[0][0].astype(np.float32), [0.0, 1.0])
    st = outs[-1].state[0][0]
    assert st["step"] == 2.0
    assert st["last_update"].dtype == np.float32  # a state tensor keeps its own dtype
    with pytest.raises(BackendError, match="only 'custom'"):
        backend.run(Case("sgd", "bfloat16", [Group({"lr": 0.5}, [p])], [[[g]]], path="for-loop"))


def test_hyper_map_renames():
    RecordingSGD.seen.clear()
    backend = tb.TorchBackend("cpu", overrides={"adam": RecordingSGD}, hyper_map={"adam": {"eps": "epsilon"}})
    assert backend.map_hyper("adam", {"lr": 0.1, "eps": 1e-6, "beta1": 0.8, "beta2": 0.9}) == {
        "lr": 0.1, "epsilon": 1e-6, "betas": (0.8, 0.9)}
    p = np.zeros(2, dtype=np.float32)
    backend.run(Case("adam", "float32", [Group({"lr": 0.1, "eps": 1e-6, "beta1": 0.8, "beta2": 0.9}, [p])], [[[p]]], path="custom"))
    assert RecordingSGD.seen[-1] == dict(lr=0.1, epsilon=1e-6, b1=None, b2=None, betas=(0.8, 0.9))

    split = tb.TorchBackend("cpu", overrides={"adam": RecordingSGD}, hyper_map={"adam": {"beta1": "b1", "beta2": "b2"}})
    split.run(Case("adam", "float32", [Group({"lr": 0.1, "beta1": 0.8, "beta2": 0.9}, [p])], [[[p]]], path="custom"))
    assert RecordingSGD.seen[-1] == dict(lr=0.1, epsilon=0.0, b1=0.8, b2=0.9, betas=None)
    # without a map, built-in names are torch's
    assert tb.TorchBackend("cpu").map_hyper("adam", adam_hyper())["betas"] == (0.9, 0.999)


def test_hold_drops_the_keyword_and_refuses_another_value():
    """``holds``: a hyperparameter the class has no keyword for is not passed; a case asking for another value
    than the held one is a clear BackendError, not a TypeError from the class."""
    backend = tb.TorchBackend("cpu", overrides={"adam": RecordingSGD}, holds={"adam": {"maximize": False}})
    assert "maximize" not in backend.map_hyper("adam", {"lr": 0.1, "maximize": False})
    with pytest.raises(BackendError, match=r"no keyword for maximize \(held at False by --hold\); this case asks "
                                           r"for maximize=True"):
        backend.map_hyper("adam", {"lr": 0.1, "maximize": True})


# --------------------------------------------------------------------------- cuda, helpers


def test_cuda_backend_reports_skip_reason():
    cuda = tb.make("torch-cuda")
    assert cuda.name == "torch-cuda"
    if tb.cuda_available():
        assert cuda.skip_reason is None
        return
    assert cuda.skip_reason == "CUDA is not available: torch.cuda.is_available() is False"
    assert cuda.paths("adam") == ()
    assert cuda.dtypes("adam", "for-loop") == ()
    p = np.zeros(2, dtype=np.float32)
    with pytest.raises(BackendError, match="CUDA is not available"):
        cuda.run(Case("adam", "float32", [Group(adam_hyper(), [p])], [[[p]]], path="for-loop"))


def test_make_and_lazy_exports():
    assert tb.make("torch-cpu") is tb.make("torch-cpu") is tb.cpu
    with pytest.raises(ValueError, match="unknown torch backend"):
        tb.make("torch-tpu")


def test_load_class():
    assert tb.load_class("torch.optim:Adam") is torch.optim.Adam
    assert tb.load_class("conformance.backends.torch_backend:TorchBackend") is tb.TorchBackend
    for bad in ("torch.optim.Adam", "torch.optim:", ":Adam", "a:b:c", 3):
        with pytest.raises(ValueError, match="bad class spec"):
            tb.load_class(bad)
    with pytest.raises(ValueError, match="no attribute 'NoSuchOptimizer'"):
        tb.load_class("torch.optim:NoSuchOptimizer")
    with pytest.raises(ValueError, match="cannot import module"):
        tb.load_class("no_such_module_xyz:Adam")


def test_environment():
    env = tb.environment()
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["cuda"] == torch.version.cuda
    for key in ("device_name", "matmul_allow_tf32", "cudnn_allow_tf32", "default_dtype",
                "cpu_denormals_flushed", "num_threads"):
        assert key in env
    assert env["cpu_denormals_flushed"] is False and env["default_dtype"] == "float32"
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert tb.environment()["cpu_denormals_flushed"] is True
    finally:
        torch.set_flush_denormal(False)
