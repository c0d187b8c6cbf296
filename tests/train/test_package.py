import subprocess
import sys


def test_functions_named_like_their_modules_stay_functions_after_a_submodule_import():
    # A fresh interpreter: the submodules are imported before the package's names are read.
    code = ("from fdsl_ray.train.pretrain import PretrainConfig\n"
            "from fdsl_ray.train.finetune import FinetuneConfig\n"
            "from fdsl_ray.train import finetune, pretrain\n"
            "print(callable(pretrain), callable(finetune), pretrain.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "fdsl_ray.train.pretrain"]
