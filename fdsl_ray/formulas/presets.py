"""Published data sets by name: a generator and the config values its release used.

`create_generator("fractaldb-1k", image_size=224)` is the FractalDB generator with the
release's values, the given keys on top. A preset is data: its generator's defaults already
follow the reference code, so a preset names only what the release changed (size, points,
weights) and the data set's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fdsl_ray.formulas.generators.fractaldb import RELEASE_WEIGHTS


@dataclass(frozen=True)
class Preset:
    name: str
    generator: str
    values: MappingProxyType = field(repr=False)
    source: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {**self.values, **overrides}


def _preset(name: str, generator: str, source: str, **values: Any) -> Preset:
    return Preset(name, generator, MappingProxyType(values), source)


_FRACTALDB_RELEASE = dict(render_size=362, n_points=200_000, weights=RELEASE_WEIGHTS,
                          filling_threshold=0.2, search_points=100_000,
                          images_per_category=1000, renders_per_system=10)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    _preset("fractaldb-1k", "fractaldb",
            "hirokatsukataoka16/FractalDB-Pretrained-ResNet-PyTorch exe.sh:1-14 (1,000 "
            "categories, fill rate 0.2, weights_0.4.csv, 362 px, 100k search points, 200k "
            "render points, patch_gray); make_fractaldb.py --instance 10 x 25 weights x 4 flips",
            num_categories=1000, **_FRACTALDB_RELEASE),
    _preset("fractaldb-10k", "fractaldb",
            "as fractaldb-1k with 10,000 categories (FractalDB-10k, ACCV 2020)",
            num_categories=10_000, **_FRACTALDB_RELEASE),
    _preset("1p-frac", "onepfrac",
            "SUPER-TADORY/1p-frac README and render_from_oneparam_mp.py:118-130 argparse "
            "(sigma 3.5, delta 0.1, N 2, 512 px, pad 6, 100k points, fill rate 0.05, 1,000 "
            "samples, one image each)",
            num_categories=1000, images_per_category=1, sigma=3.5, delta=0.1, n_maps=2,
            render_size=512, n_points=100_000, filling_threshold=0.05),
    _preset("1p-frac-release", "onepfrac",
            "SUPER-TADORY/1p-frac 1p-frac_generater/generate.sh:1-4 (sigma 4.0, delta 0.1, "
            "1,000 samples; the rest argparse defaults)",
            num_categories=1000, images_per_category=1, sigma=4.0, delta=0.1, n_maps=2,
            render_size=512, n_points=100_000, filling_threshold=0.05),
    _preset("exfractaldb-1k", "exfractaldb",
            "masora1030/CVPR2022-Pretrained-ViT-PyTorch exfractaldb_render/ExFractalDB_render.sh"
            ":3-4, exe_scripts/exe_exfractaldb_1k.sh:2-3, image_render/render.py:26,28, "
            "3dfractal_render/instance.py:70,85 (1,000 categories, 145 clouds x 12 views, "
            "9,999 points, 224 px, variance threshold 0.05)",
            num_categories=1000, images_per_category=1740, n_points=9999, image_size=224,
            render_size=224, variance_threshold=0.05),
    _preset("exfractaldb-21k", "exfractaldb",
            "as exfractaldb-1k with 21,000 categories (exe_scripts/exe_exfractaldb_21k.sh:3)",
            num_categories=21_000, images_per_category=1740, n_points=9999, image_size=224,
            render_size=224, variance_threshold=0.05),
    _preset("ofdb-1k", "fractaldb",
            "ryoo-nakamura/OFDB 2d-ofdb-generator/exe_parallel.sh:3-9 (1,000 categories, fill "
            "rate 0.2, weights_0.4.csv, 362 px, 100k search points, 200k render points, "
            "patch_gray); fractal_renderer/make_2dofdb.py:40, 72 (one render of the first "
            "weight row, a x 0.2) and ifs_function.py:170-171 (flip 0 only): FractalDB's "
            "instance 0",
            num_categories=1000, **{**_FRACTALDB_RELEASE, "images_per_category": 1}),
    _preset("ofdb-21k", "fractaldb",
            "as ofdb-1k with 21,000 categories (2D-OFDB-21k, OFDB README.md:14-18)",
            num_categories=21_000, **{**_FRACTALDB_RELEASE, "images_per_category": 1}),
    _preset("3d-ofdb-1k", "exfractaldb",
            "ryoo-nakamura/OFDB 3d-ofdb-generator/3d-ofdb_render.sh:3-4, 27 (variance 0.05, "
            "1,000 categories, 12 views), 3dfractal_render/instance.py:73-75, 92 (the first "
            "row of weights_ins145.csv only), image_render/render1view.py:26-28 (224 px): "
            "ExFractalDB's cloud 0 from its 12 views; the trainer reads one view per epoch "
            "(3d-ofdb-generator/README.md)",
            num_categories=1000, images_per_category=12, clouds=1, n_points=9999,
            image_size=224, render_size=224, variance_threshold=0.05),
    _preset("3d-ofdb-21k", "exfractaldb",
            "as 3d-ofdb-1k with 21,000 categories (3D-OFDB-21k, OFDB README.md:14-18)",
            num_categories=21_000, images_per_category=12, clouds=1, n_points=9999,
            image_size=224, render_size=224, variance_threshold=0.05),
    _preset("visualatom-1k", "visualatom",
            "masora1030/CVPR2023-FDSL-on-VisualAtom visual_atomic_renderer/make_VisualAtom.sh"
            ":11-16 (1,000 categories x 1,000 instances; the release ranges are the generator's "
            "defaults), render_VisualAtom.py:15 (512 px)",
            num_categories=1000, images_per_category=1000, image_size=512, render_size=512),
    _preset("visualatom-21k", "visualatom",
            "as visualatom-1k with 21,000 categories (scripts/pretrain.sh:11, CLASSES=21000)",
            num_categories=21_000, images_per_category=1000, image_size=512, render_size=512),
    _preset("rcdb-1k", "rcdb",
            "masora1030/CVPR2022-Pretrained-ViT-PyTorch exe_scripts/exe_rcdb_1k.sh:2-3 "
            "(CLASSES=1000, INSTANCES=1000), rcdb_render/RCDB_render.sh:2-3, make_rcdb.py:14 "
            "(512 px)",
            num_categories=1000, images_per_category=1000, image_size=512, render_size=512),
    _preset("rcdb-21k", "rcdb",
            "as rcdb-1k with 21,000 categories (exe_scripts/exe_rcdb_21k.sh:2-3)",
            num_categories=21_000, images_per_category=1000, image_size=512, render_size=512),
)}


def list_presets() -> list[str]:
    return sorted(PRESETS)
