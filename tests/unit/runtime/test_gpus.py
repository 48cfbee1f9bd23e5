import pytest

from berth.domain.platform import Gpu
from berth.runtime.gpus import detect_gpus, gpu_usage, parse_gpus


def test_override_is_parsed() -> None:
    assert detect_gpus("0:NVIDIA H100 80GB HBM3:81559,1:NVIDIA H100 80GB HBM3:81559") == (
        Gpu(index=0, model="NVIDIA H100 80GB HBM3", memory_mib=81559),
        Gpu(index=1, model="NVIDIA H100 80GB HBM3", memory_mib=81559),
    )


def test_empty_override_means_no_gpus() -> None:
    assert detect_gpus("") == ()
    assert detect_gpus(" , ") == ()


def test_memory_may_be_left_out_and_spaces_are_trimmed() -> None:
    assert parse_gpus(" 0 : Tesla T4 ") == (Gpu(index=0, model="Tesla T4", memory_mib=0),)


@pytest.mark.parametrize("spec", ["x:H100:80", "0", ":H100:80", "0::80", "0:A:1,0:B:2"])
def test_bad_override_is_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_gpus(spec)


def test_override_wins_over_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "berth.runtime.gpus.shutil.which", lambda name: pytest.fail("must not probe"))
    assert detect_gpus("") == ()


def test_no_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("berth.runtime.gpus.shutil.which", lambda name: None)
    assert detect_gpus(None) == ()
    assert gpu_usage() == {}


def test_nvidia_smi_output_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {
        "--query-gpu=index,name,memory.total,compute_cap":
            "0, NVIDIA H100 80GB HBM3, 81559, 9.0\n1, NVIDIA A10G, [N/A], [N/A]\n",
        "--query-gpu=index,utilization.gpu,memory.used": "0, 37, 1024\n1, [N/A], 5\n",
    }

    class Done:
        def __init__(self, stdout: str) -> None:
            self.stdout, self.returncode = stdout, 0

    monkeypatch.setattr("berth.runtime.gpus.shutil.which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(
        "berth.runtime.gpus.subprocess.run", lambda args, **kw: Done(outputs[args[1]]))
    assert detect_gpus(None) == (
        Gpu(index=0, model="NVIDIA H100 80GB HBM3", memory_mib=81559, compute_capability="9.0"),
        Gpu(index=1, model="NVIDIA A10G"),
    )
    assert gpu_usage() == {0: (37.0, 1024)}
