"""Rendered images of plain grayscale instances are made from the stored metadata and frame index (no parse of
the file); they must be the very same images as the general pydicom path gives, for every parameter."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backend"))

from archive.dicom import parse_file  # noqa: E402
from archive.wado.render import (  # noqa: E402
    RenderParams,
    Viewport,
    attributes_from_metadata,
    native_frame,
    read_attributes,
    render,
    render_pixels,
)
from tests.dicomgen import make_ct_series  # noqa: E402

PARAMS = [
    RenderParams(),
    RenderParams(media_type="image/png"),
    RenderParams(media_type="image/png", window=(0.0, 10.0, "LINEAR")),
    RenderParams(media_type="image/png", window=(40.0, 400.0, "SIGMOID"), viewport=Viewport(32, 32)),
    RenderParams(quality=10, viewport=Viewport(None, 20)),
]


def _variants(tmp_path: Path) -> list[Path]:
    ct = make_ct_series(tmp_path / "ct", slices=1, size=32, patient_id="NATIVE")[0]
    signed = Path(get_testdata_file("CT_small.dcm", download=False))
    mr = Path(get_testdata_file("MR_small.dcm", download=False))
    out = [ct, signed, mr]
    # 12 of 16 bits stored, with garbage in the unused high bits, signed and unsigned; and MONOCHROME1
    for name, representation, photometric in [("u12", 0, "MONOCHROME2"), ("s12", 1, "MONOCHROME2"),
                                              ("mono1", 0, "MONOCHROME1")]:
        ds = pydicom.dcmread(ct)
        pixels = ds.pixel_array.astype(np.uint16) & 0x0FFF
        ds.PixelData = (pixels | 0xA000).astype("<u2").tobytes()
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, representation
        ds.PhotometricInterpretation = photometric
        del ds.WindowCenter, ds.WindowWidth
        path = tmp_path / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def test_native_rendering_equals_the_general_path(tmp_path):
    for path in _variants(tmp_path):
        parsed = parse_file(path)
        ds = attributes_from_metadata(parsed.metadata_json)
        assert ds is not None, path
        (offset, length), = parsed.frame_index[0]
        with open(path, "rb") as fp:
            fp.seek(offset)
            arr = native_frame(ds, fp.read(length))
        assert arr is not None
        general_attributes = read_attributes(str(path))
        for params in PARAMS:
            assert render_pixels(ds, arr, params) == render(str(path), general_attributes, 0, params), (path, params)


@pytest.mark.parametrize("name", ["SC_rgb_gdcm_KY.dcm", "MR_small_RLE.dcm", "examples_ybr_color.dcm"])
def test_colour_or_compressed_take_the_general_path(name):
    parsed = parse_file(get_testdata_file(name, download=False))
    ds = attributes_from_metadata(parsed.metadata_json)
    simple = (ds is not None and len(parsed.frame_index) == 1
              and parsed.instance["transfer_syntax_uid"] in {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
    assert not simple
