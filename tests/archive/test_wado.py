"""WADO-RS against the live server, with dicomweb-client and requests.

Pixel data must come back exactly: native frames byte for byte, compressed frames as the stored codestream,
and transcoded data equal to pydicom's own decode of the original file. Every refusal is a 4xx with a reason.
"""
from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from tests.dicomgen import make_ct_series

EXPLICIT_LE = "1.2.840.10008.1.2.1"
CODEC_FILES = {
    "j2k_lossy": "JPEG2000.dcm",  # 1.2.840.10008.1.2.4.91
    "jls": "MR_small_jpeg_ls_lossless.dcm",  # .80
    "rle": "MR_small_RLE.dcm",  # .5
    "j2k": "MR_small_jp2klossless.dcm",  # .90
    "jpeg_lossless_rgb": "SC_rgb_jpeg_gdcm.dcm",  # .70, RGB
    "jpeg_baseline_multiframe": "examples_ybr_color.dcm",  # .50, 30 frames YBR_FULL_422
    "dose": "rtdose.dcm",  # implicit VR little endian, 15 frames of 32 bits
    "dose_rle": "rtdose_rle.dcm",  # RLE, 15 frames
    "big_endian": "MR_small_bigendian.dcm",  # .2
    "deflated": "image_dfl.dcm",  # .1.99
}
LOSSLESS = ["jls", "rle", "j2k", "jpeg_lossless_rgb", "dose_rle"]


@dataclass
class Stored:
    path: Path
    study: str
    series: str
    sop: str
    key: str
    ts: str

    def url(self, base: str) -> str:
        return f"{base}/studies/{self.study}/series/{self.series}/instances/{self.sop}"


def _fresh_copy(name: str, out: Path, study: str) -> Path:
    """A pydicom test file with new UIDs (several test files share one SOP Instance UID)."""
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "WADO-CODECS"
    path = out / name
    ds.save_as(path)
    return path


def _store_all(server, paths: list[Path]) -> dict[str, Stored]:
    code = textwrap.dedent(f"""
        import json
        from archive.ingest import store_file
        from archive.models import Instance
        out = {{}}
        for p in {[str(p) for p in paths]!r}:
            o = store_file(p)
            assert o.status == "stored", (p, o.reason)
            row = Instance.objects.values("storage_key", "transfer_syntax_uid").get(sop_instance_uid=o.sop_instance_uid)
            out[p] = [o.study_instance_uid, o.series_instance_uid, o.sop_instance_uid, row["storage_key"],
                      row["transfer_syntax_uid"]]
        print("STORED " + json.dumps(out))
    """)
    stdout = server.manage("shell", "-c", code).stdout
    line = next(ln for ln in stdout.splitlines() if ln.startswith("STORED "))
    return {p: Stored(Path(p), *v) for p, v in json.loads(line.removeprefix("STORED ")).items()}


@pytest.fixture(scope="module")
def data(live_server_proc, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wado")
    ct = make_ct_series(tmp / "ct", slices=4, size=64, patient_id="WADO-CT")
    with_icc = pydicom.dcmread(ct[0])  # an extra instance with a bulk (> 1 KiB) ICC profile
    with_icc.SOPInstanceUID = with_icc.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    with_icc.InstanceNumber = 5
    with_icc.ICCProfile = bytes(range(256)) * 20
    with_icc.save_as(tmp / "ct" / "icc.dcm")
    mono1 = pydicom.dcmread(ct[1])  # the same pixels shown inverted
    mono1.SOPInstanceUID = mono1.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    mono1.SeriesInstanceUID = generate_uid()
    mono1.PhotometricInterpretation = "MONOCHROME1"
    mono1.save_as(tmp / "mono1.dcm")
    codec_study = generate_uid()
    (tmp / "codec").mkdir()
    codec = {k: _fresh_copy(name, tmp / "codec", codec_study) for k, name in CODEC_FILES.items()}
    stored = _store_all(live_server_proc, [*ct, tmp / "ct" / "icc.dcm", tmp / "mono1.dcm", *codec.values()])
    return {
        "ct": [stored[str(p)] for p in ct],
        "icc": stored[str(tmp / "ct" / "icc.dcm")],
        "mono1": stored[str(tmp / "mono1.dcm")],
        **{k: stored[str(p)] for k, p in codec.items()},
    }


@pytest.fixture(scope="module")
def client(live_server_proc) -> DICOMwebClient:
    c = DICOMwebClient(live_server_proc.dicomweb)
    c._session.auth = live_server_proc.auth("radiologist")
    return c


@pytest.fixture(scope="module")
def http(live_server_proc) -> requests.Session:
    return live_server_proc.session("radiologist")


def parts(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer, each as (lower-cased headers, body), parsed by hand."""
    media_type, _, params = response.headers["Content-Type"].partition(";")
    assert media_type.strip() == "multipart/related"
    boundary = next(p.split("=", 1)[1].strip('" ') for p in params.split(";") if p.strip().startswith("boundary="))
    body = response.content
    out = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().strip().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert content.endswith(b"\r\n")
        out.append((headers, content[:-2]))
    return out


def _pixels(path: Path, frame: int | None = None) -> np.ndarray:
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    return arr if frame is None or int(ds.get("NumberOfFrames", 1)) == 1 else arr[frame]


def _stored_frames(path: Path) -> list[bytes]:
    ds = pydicom.dcmread(path)
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))


def _reason(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    reason = response.json()["error"]
    assert reason
    return reason


# ------------------------------------------------------------------------------------------ retrieve instances


def test_study_default_is_explicit_little_endian_and_lossy_stays_lossy(client, data):
    datasets = client.retrieve_study(data["jls"].study)
    by_uid = {ds.SOPInstanceUID: ds for ds in datasets}
    assert len(by_uid) == len(CODEC_FILES)
    for key, item in data.items():
        if not isinstance(item, Stored) or item.study != data["jls"].study:
            continue
        ds = by_uid[item.sop]
        expected = item.ts if item.ts in {"1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.50"} else EXPLICIT_LE
        assert ds.file_meta.TransferSyntaxUID == expected, key
        if expected == EXPLICIT_LE:
            assert np.array_equal(ds.pixel_array, _pixels(item.path)), key


def test_transfer_syntax_wildcard_sends_files_as_stored(http, live_server_proc, data):
    response = http.get(f"{live_server_proc.dicomweb}/studies/{data['jls'].study}",
                        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert response.status_code == 200
    got = {}
    for headers, body in parts(response):
        ds = pydicom.dcmread(io.BytesIO(body))
        got[ds.SOPInstanceUID] = (headers["content-type"], body)
    for key in ["jls", "rle", "j2k", "j2k_lossy", "jpeg_baseline_multiframe", "deflated"]:
        item = data[key]
        content_type, body = got[item.sop]
        assert content_type == f"application/dicom; transfer-syntax={item.ts}"
        assert body == (live_server_proc.data_dir / "dicom" / item.key).read_bytes(), key
    # implicit VR and big endian are not allowed on the web (PS3.18 8.7.3): they come as explicit VR LE
    for key in ["dose", "big_endian"]:
        content_type, body = got[data[key].sop]
        assert content_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
        assert np.array_equal(pydicom.dcmread(io.BytesIO(body)).pixel_array, _pixels(data[key].path))
    ct = data["ct"][0]
    response = http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{ct.series}",
                        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert int(response.headers["Content-Length"]) == len(response.content)  # every part's size known in advance
    assert [body for _, body in parts(response)][:4] == [s.path.read_bytes() for s in data["ct"]]


@pytest.mark.parametrize("key", LOSSLESS + ["big_endian", "deflated", "dose", "j2k_lossy"])
def test_instance_transcoded_to_explicit_vr_little_endian(client, data, key):
    item = data[key]
    ds = client.retrieve_instance(item.study, item.series, item.sop, media_types=(("application/dicom", EXPLICIT_LE),))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert ds.SOPInstanceUID == item.sop
    assert np.array_equal(ds.pixel_array, _pixels(item.path))


def test_study_partly_producible_is_206_with_a_warning(http, live_server_proc, data):
    jls = data["jls"]
    response = http.get(f"{live_server_proc.dicomweb}/studies/{jls.study}",
                        headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={jls.ts}'})
    assert response.status_code == 206
    assert response.headers["Warning"].startswith("299")
    ((headers, body),) = parts(response)  # only the JPEG-LS instance exists in JPEG-LS here
    assert headers["content-type"] == f"application/dicom; transfer-syntax={jls.ts}"
    assert pydicom.dcmread(io.BytesIO(body)).SOPInstanceUID == jls.sop


def test_single_part_instance_has_content_length(http, live_server_proc, data):
    item = data["ct"][0]
    response = http.get(item.url(live_server_proc.dicomweb), headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert response.content == item.path.read_bytes()
    assert response.headers["Content-Length"] == str(len(response.content))


def test_unsatisfiable_or_malformed_accept(http, live_server_proc, data):
    url = data["ct"][0].url(live_server_proc.dicomweb)
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    response = http.get(url, headers={"Accept": jpeg})
    assert response.status_code == 406 and "transfer-syntax=*" in _reason(response)
    response = http.get(url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=JPEG'})
    assert response.status_code == 400 and "Transfer Syntax UID" in _reason(response)
    response = http.get(url, headers={"Accept": "application/zip"})
    assert response.status_code == 406
    response = http.get(f"{url}/metadata", headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert response.status_code == 406
    # the accept query parameter (PS3.18 8.3.3.1) wins over the header
    response = http.get(url, params={"accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                        headers={"Accept": jpeg})
    assert response.status_code == 200


# ------------------------------------------------------------------------------------------ metadata


def test_series_metadata_in_instance_order_with_absolute_bulk_uris(http, client, live_server_proc, data):
    ct = data["ct"][0]
    response = http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{ct.series}/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    assert response.headers["Content-Encoding"] == "gzip"  # requests accepts gzip; metadata may be compressed
    assert "private" in response.headers["Cache-Control"]
    items = response.json()
    assert [item["00200013"]["Value"][0] for item in items] == [1, 2, 3, 4, 5]
    assert [item["00080018"]["Value"][0] for item in items] == [s.sop for s in data["ct"]] + [data["icc"].sop]
    uri = items[0]["7FE00010"]["BulkDataURI"]
    assert uri == f"{ct.url(live_server_proc.dicomweb)}/bulkdata/7FE00010"
    plain = http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{ct.series}/metadata",
                     headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.json() == items
    assert len(client.retrieve_series_metadata(ct.study, ct.series)) == 5
    study_items = client.retrieve_study_metadata(ct.study)
    assert len(study_items) == 6  # the MONOCHROME1 copy lives in a second series of the same study
    instance = client.retrieve_instance_metadata(ct.study, ct.series, ct.sop)
    assert instance["00080018"]["Value"] == [ct.sop]


def test_metadata_follows_new_instances(http, live_server_proc, tmp_path):
    paths = make_ct_series(tmp_path / "grow", slices=3, size=16, patient_id="WADO-GROW")
    first = _store_all(live_server_proc, paths[:2])
    item = next(iter(first.values()))
    url = f"{live_server_proc.dicomweb}/studies/{item.study}/series/{item.series}/metadata"
    for encoding in ("gzip", "identity"):
        assert len(http.get(url, headers={"Accept-Encoding": encoding}).json()) == 2
    _store_all(live_server_proc, paths[2:])
    for encoding in ("gzip", "identity"):  # answers are cached per process, never past a change
        assert len(http.get(url, headers={"Accept-Encoding": encoding}).json()) == 3


def test_pixel_data_is_never_gzipped(http, live_server_proc, data):
    ct = data["ct"][0]
    response = http.get(f"{ct.url(live_server_proc.dicomweb)}/frames/1", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"].startswith("private")
    assert response.headers["Content-Length"] == str(len(response.content))


# ------------------------------------------------------------------------------------------ frames


def test_native_frames_are_byte_exact(client, data):
    for item in data["ct"]:
        (frame,) = client.retrieve_instance_frames(item.study, item.series, item.sop, [1])
        assert frame == pydicom.dcmread(item.path).PixelData


def test_cornerstone_accept_gets_frames_as_stored_with_their_syntax(http, live_server_proc, data):
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    for key in ["jls", "rle", "j2k", "j2k_lossy", "jpeg_lossless_rgb", "ct"]:
        item = data[key][0] if key == "ct" else data[key]
        response = http.get(f"{item.url(live_server_proc.dicomweb)}/frames/1", headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith('multipart/related; type="application/octet-stream"')
        ((headers, body),) = parts(response)
        expected_ts = EXPLICIT_LE if key == "ct" else item.ts
        assert headers["content-type"] == f"application/octet-stream; transfer-syntax={expected_ts}"
        expected = pydicom.dcmread(item.path).PixelData if key == "ct" else _stored_frames(item.path)[0]
        assert body == expected, key


@pytest.mark.parametrize("key", LOSSLESS + ["j2k_lossy"])
def test_compressed_frames_decoded_for_octet_stream(client, data, key):
    item = data[key]
    (frame,) = client.retrieve_instance_frames(item.study, item.series, item.sop, [1],
                                               media_types=(("application/octet-stream", EXPLICIT_LE),))
    expected = _pixels(item.path, 0)
    assert frame == np.ascontiguousarray(expected.astype(expected.dtype.newbyteorder("<"))).tobytes()


def test_compressed_media_types(http, live_server_proc, data):
    cases = {"jls": "image/jls", "rle": "image/dicom-rle", "j2k": "image/jp2", "jpeg_lossless_rgb": "image/jpeg"}
    for key, media_type in cases.items():
        item = data[key]
        response = http.get(f"{item.url(live_server_proc.dicomweb)}/frames/1",
                            headers={"Accept": f'multipart/related; type="{media_type}"'})
        assert response.status_code == 200, (key, response.text)
        ((headers, body),) = parts(response)
        assert headers["content-type"] == f"{media_type}; transfer-syntax={item.ts}"
        assert body == _stored_frames(item.path)[0]
    response = http.get(f"{data['rle'].url(live_server_proc.dicomweb)}/frames/1",
                        headers={"Accept": 'multipart/related; type="image/jpeg"'})
    assert response.status_code == 406 and "octet-stream" in _reason(response)


def test_multiframe_frames_in_the_order_asked(http, client, live_server_proc, data):
    dose = data["dose"]  # native, implicit VR: bytes straight from the file
    frames = client.retrieve_instance_frames(dose.study, dose.series, dose.sop, [3, 1, 15])
    reference = _pixels(dose.path)
    assert frames == [reference[i].tobytes() for i in (2, 0, 14)]
    rle = data["dose_rle"]
    frames = client.retrieve_instance_frames(rle.study, rle.series, rle.sop, [15, 2],
                                             media_types=(("application/octet-stream", EXPLICIT_LE),))
    reference = _pixels(rle.path)
    assert frames == [reference[14].tobytes(), reference[1].tobytes()]
    jpeg = data["jpeg_baseline_multiframe"]
    response = http.get(f"{jpeg.url(live_server_proc.dicomweb)}/frames/5,30",
                        headers={"Accept": 'multipart/related; type="image/jpeg"'})
    stored = _stored_frames(jpeg.path)
    assert [body for _, body in parts(response)] == [stored[4], stored[29]]


def test_many_decoded_frames_stream_part_by_part(client, data):
    jpeg = data["jpeg_baseline_multiframe"]
    frames = client.retrieve_instance_frames(jpeg.study, jpeg.series, jpeg.sop, list(range(1, 31)),
                                             media_types=(("application/octet-stream", EXPLICIT_LE),))
    reference = _pixels(jpeg.path)  # decoded to RGB, as pydicom does by default
    assert frames == [reference[i].tobytes() for i in range(30)]


def test_big_endian_and_deflated_frames_come_little_endian(client, data):
    for key in ["big_endian", "deflated"]:
        item = data[key]
        (frame,) = client.retrieve_instance_frames(item.study, item.series, item.sop, [1])
        expected = _pixels(item.path)
        assert frame == expected.astype(expected.dtype.newbyteorder("<")).tobytes(), key


def test_single_part_frame(http, live_server_proc, data):
    item = data["ct"][0]
    response = http.get(f"{item.url(live_server_proc.dicomweb)}/frames/1", headers={"Accept": "application/octet-stream"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/octet-stream")
    assert response.content == pydicom.dcmread(item.path).PixelData
    dose = data["dose"]
    response = http.get(f"{dose.url(live_server_proc.dicomweb)}/frames/1,2", headers={"Accept": "application/octet-stream"})
    assert response.status_code == 406  # two frames cannot travel in one single-part body


def test_frame_list_errors(http, live_server_proc, data):
    dose = data["dose"].url(live_server_proc.dicomweb)
    for bad in ["0", "1,1", "abc", "1,,2", "-1", "1.5"]:
        response = http.get(f"{dose}/frames/{bad}")
        assert response.status_code == 400, bad
        assert _reason(response)
    response = http.get(f"{dose}/frames/16")
    assert response.status_code == 404 and "15 frame" in _reason(response)
    ct = data["ct"][0]
    response = http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{ct.series}/instances/1.2.3.4/frames/1")
    assert response.status_code == 404 and _reason(response)
    response = http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{data['jls'].series}/instances/{ct.sop}")
    assert response.status_code == 404  # the instance exists, but not under that series


# ------------------------------------------------------------------------------------------ bulk data


def test_bulkdata_with_ranges(http, client, live_server_proc, data):
    icc = data["icc"]
    meta = client.retrieve_instance_metadata(icc.study, icc.series, icc.sop)
    uri = meta["00282000"]["BulkDataURI"].replace("http://127.0.0.1/", f"{live_server_proc.url}/")
    expected = bytes(range(256)) * 20
    assert client.retrieve_bulkdata(uri) == [expected]
    assert client.retrieve_bulkdata(uri, byte_range=(10, 19)) == [expected[10:20]]
    response = http.get(uri, headers={"Accept": "application/octet-stream", "Range": "bytes=-5"})
    assert response.status_code == 206
    assert response.content == expected[-5:]
    assert response.headers["Content-Range"] == f"bytes {len(expected) - 5}-{len(expected) - 1}/{len(expected)}"
    response = http.get(uri, headers={"Accept": "application/octet-stream", "Range": f"bytes={len(expected)}-"})
    assert response.status_code == 416 and response.headers["Content-Range"] == f"bytes */{len(expected)}"
    response = http.get(uri, headers={"Accept": "application/octet-stream", "Range": "bytes=abc"})
    assert response.status_code == 416
    pixel_uri = f"{icc.url(live_server_proc.dicomweb)}/bulkdata/7FE00010"
    assert client.retrieve_bulkdata(pixel_uri) == [pydicom.dcmread(icc.path).PixelData]
    assert http.get(f"{icc.url(live_server_proc.dicomweb)}/bulkdata/00100010").status_code == 404
    assert http.get(f"{icc.url(live_server_proc.dicomweb)}/bulkdata/zz").status_code == 400


# ------------------------------------------------------------------------------------------ rendered, thumbnails


def _image(response: requests.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_rendered_instance_and_frames(http, client, live_server_proc, data):
    ct = data["ct"][2]
    url = ct.url(live_server_proc.dicomweb)
    jpeg = _image(http.get(f"{url}/rendered"))
    assert jpeg.format == "JPEG" and jpeg.size == (64, 64)
    png = _image(http.get(f"{url}/rendered", headers={"Accept": "image/png"}))
    assert png.format == "PNG" and png.mode == "L"
    assert Image.open(io.BytesIO(client.retrieve_instance_rendered(ct.study, ct.series, ct.sop,
                                                                    media_types=("image/png",)))).format == "PNG"
    assert _image(http.get(f"{url}/rendered", params={"viewport": "32,32"})).size == (32, 32)
    assert _image(http.get(f"{url}/rendered", params={"viewport": "128,64"})).size == (64, 64)  # aspect kept
    # the default is the instance's own window (40/400): the 200 HU disc is bright, water mid-grey, air black
    default = np.asarray(png)
    assert default[32, 32] > 200 and 100 < default[32, 5] < 160 and default[0, 0] == 0
    narrow = np.asarray(_image(http.get(f"{url}/rendered", params={"window": "0,10"}, headers={"Accept": "image/png"})))
    assert narrow[32, 5] > 100 and narrow[32, 32] == 255 and narrow[0, 0] == 0
    wide = np.asarray(_image(http.get(f"{url}/rendered", params={"window": "0,4000"}, headers={"Accept": "image/png"})))
    assert abs(int(wide[32, 5]) - 128) < 3
    small = http.get(f"{url}/rendered", params={"quality": "10"})
    assert len(small.content) < len(http.get(f"{url}/rendered", params={"quality": "100"}).content)
    rle = data["dose_rle"]
    frame = _image(http.get(f"{rle.url(live_server_proc.dicomweb)}/frames/7/rendered"))
    assert frame.size == (10, 10)
    colour = _image(http.get(f"{data['jpeg_baseline_multiframe'].url(live_server_proc.dicomweb)}/frames/3/rendered"))
    assert colour.mode == "RGB" and colour.size == (320, 240)


def test_monochrome1_is_inverted(http, live_server_proc, data):
    normal = np.asarray(_image(http.get(f"{data['ct'][1].url(live_server_proc.dicomweb)}/rendered",
                                        headers={"Accept": "image/png"}))).astype(int)
    inverted = np.asarray(_image(http.get(f"{data['mono1'].url(live_server_proc.dicomweb)}/rendered",
                                          headers={"Accept": "image/png"}))).astype(int)
    assert np.array_equal(inverted, 255 - normal)


def test_study_and_series_rendered_pick_an_image(http, live_server_proc, data):
    ct = data["ct"][0]
    assert _image(http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/rendered")).size == (64, 64)
    assert _image(http.get(f"{live_server_proc.dicomweb}/studies/{ct.study}/series/{ct.series}/rendered",
                           headers={"Accept": "image/gif"})).format == "GIF"


def test_rendered_errors(http, live_server_proc, data):
    url = data["ct"][0].url(live_server_proc.dicomweb)
    for params in [{"window": "abc"}, {"window": "40,0"}, {"window": "40,400,cubic"}, {"quality": "0"},
                   {"quality": "x"}, {"viewport": "0,10"}, {"viewport": "10"}, {"viewport": "99999,10"}]:
        response = http.get(f"{url}/rendered", params=params)
        assert response.status_code == 400, params
        assert _reason(response)
    assert http.get(f"{url}/rendered", headers={"Accept": "application/pdf"}).status_code == 406
    assert http.get(f"{url}/frames/2/rendered").status_code == 404


def test_thumbnails_are_small_and_cached(http, live_server_proc, data):
    jpeg = data["jpeg_baseline_multiframe"]
    url = f"{jpeg.url(live_server_proc.dicomweb)}/thumbnail"
    first = http.get(url)
    image = _image(first)
    assert image.format == "JPEG" and image.size == (128, 96)
    assert http.get(url).content == first.content
    cached = list((live_server_proc.data_dir / "cache" / "thumbnails").rglob("*.bin"))
    assert any(p.read_bytes() == first.content for p in cached)
    ct = data["ct"][0]
    for path in [f"studies/{ct.study}", f"studies/{ct.study}/series/{ct.series}",
                 f"studies/{ct.study}/series/{ct.series}/instances/{ct.sop}/frames/1"]:
        assert max(_image(http.get(f"{live_server_proc.dicomweb}/{path}/thumbnail")).size) == 128
    assert _image(http.get(url, params={"viewport": "64,64"})).size == (64, 48)


# ------------------------------------------------------------------------------------------ errors, access, audit


def test_corrupt_or_missing_stored_files_answer_with_a_reason(http, live_server_proc, tmp_path, data):
    victim = make_ct_series(tmp_path / "victim", slices=1, size=16, patient_id="WADO-VICTIM")[0]
    item = next(iter(_store_all(live_server_proc, [victim]).values()))
    stored = live_server_proc.data_dir / "dicom" / item.key
    rendered = http.get(f"{item.url(live_server_proc.dicomweb)}/rendered")
    assert rendered.status_code == 200
    raw = stored.read_bytes()
    stored.write_bytes(raw[: len(raw) - 100])  # truncated on disk behind the archive's back
    response = http.get(f"{item.url(live_server_proc.dicomweb)}/rendered", params={"viewport": "8,8"})
    assert response.status_code == 422 and _reason(response)
    stored.unlink()
    response = http.get(f"{item.url(live_server_proc.dicomweb)}/frames/1")
    assert response.status_code == 410 and _reason(response)


def test_access_rules(live_server_proc, data):
    ct = data["ct"][0]
    urls = [f"{ct.url(live_server_proc.dicomweb)}/frames/1", f"{ct.url(live_server_proc.dicomweb)}/metadata",
            f"{ct.url(live_server_proc.dicomweb)}/rendered", f"{live_server_proc.dicomweb}/studies/{ct.study}"]
    for url in urls:
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("rad", "wrong-password"), timeout=10).status_code == 401
        response = live_server_proc.session("resident").get(url, timeout=10)
        assert response.status_code == 403 and _reason(response)
    # a resident with a grant for the study reads it
    live_server_proc.manage("shell", "-c", textwrap.dedent(f"""
        from django.contrib.auth import get_user_model
        from accounts.models import StudyGrant
        StudyGrant.objects.create(user=get_user_model().objects.get(username="resident"), study_instance_uid={ct.study!r})
    """))
    for url in urls:
        assert live_server_proc.session("resident").get(url, timeout=10).status_code == 200, url
    other = data["jls"]
    assert live_server_proc.session("resident").get(f"{other.url(live_server_proc.dicomweb)}/frames/1").status_code == 403


def test_retrievals_are_audited(live_server_proc, data, http):
    item = data["dose"]
    for n in range(1, 6):
        assert http.get(f"{item.url(live_server_proc.dicomweb)}/frames/{n}").status_code == 200
    assert http.get(f"{item.url(live_server_proc.dicomweb)}/metadata").status_code == 200
    code = textwrap.dedent(f"""
        from audit.models import AuditEvent
        rows = AuditEvent.objects.filter(study_instance_uid={item.study!r}, series_instance_uid={item.series!r})
        import json
        print("AUDIT " + json.dumps(sorted(rows.values_list("action", flat=True))))
    """)
    out = live_server_proc.manage("shell", "-c", code).stdout
    actions = json.loads(next(ln for ln in out.splitlines() if ln.startswith("AUDIT ")).removeprefix("AUDIT "))
    assert actions.count("wado.frames") == 1  # coalesced
    assert "wado.metadata" in actions


# ------------------------------------------------------------------------------------------ the frames fast path
# Plain frame GETs are served before Django's middleware (archive/wado/fastpath.py); these check that it keeps
# the guarantees of the middleware and the view.


def test_frames_of_a_series_read_before_and_after_it_changes(http, live_server_proc, tmp_path):
    """The first frame asked of a series brings the rows of all its instances; an instance stored later, a
    wrong series in the URL and a deleted series must still be answered as the index says."""
    paths = make_ct_series(tmp_path / "rows", slices=3, size=16, patient_id="WADO-ROWS")
    early = list(_store_all(live_server_proc, paths[:2]).values())
    for item in early:  # the second one is served from the rows the first one brought
        response = http.get(f"{item.url(live_server_proc.dicomweb)}/frames/1")
        assert response.status_code == 200
        assert parts(response)[0][1] == pydicom.dcmread(item.path).PixelData
    (late,) = _store_all(live_server_proc, paths[2:]).values()
    response = http.get(f"{late.url(live_server_proc.dicomweb)}/frames/1")
    assert response.status_code == 200 and parts(response)[0][1] == pydicom.dcmread(late.path).PixelData
    item = early[1]
    wrong = f"{live_server_proc.dicomweb}/studies/{item.study}/series/{generate_uid()}/instances/{item.sop}/frames/1"
    assert http.get(wrong).status_code == 404
    deleted = live_server_proc.session("admin").delete(
        f"{live_server_proc.dicomweb}/studies/{item.study}/series/{item.series}", timeout=30)
    assert deleted.status_code == 204
    for gone in (*early, late):
        assert http.get(f"{gone.url(live_server_proc.dicomweb)}/frames/1").status_code == 404


def test_frames_with_a_browser_session_until_logout(live_server_proc, data):
    item = data["ct"][0]
    url = f"{item.url(live_server_proc.dicomweb)}/frames/1"
    browser = requests.Session()
    login = f"{live_server_proc.url}/accounts/login/"
    browser.get(login, timeout=10)
    name, password = live_server_proc.auth("radiologist")
    browser.post(login, data={"username": name, "password": password,
                              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                 headers={"Referer": login}, timeout=10)
    assert "sessionid" in browser.cookies
    response = browser.get(url, timeout=10)
    assert response.status_code == 200
    assert parts(response)[0][1] == pydicom.dcmread(item.path).PixelData
    assert response.headers["X-Frame-Options"] == "DENY"
    browser.post(f"{live_server_proc.url}/accounts/logout/", headers={
        "X-CSRFToken": browser.cookies["csrftoken"], "Referer": login}, timeout=10)
    assert browser.get(url, timeout=10).status_code == 401  # forgotten at once on logout


def test_frames_check_the_host_header(http, live_server_proc, data):
    url = f"{data['ct'][0].url(live_server_proc.dicomweb)}/frames/1"
    assert http.get(url, headers={"Host": "evil.example"}).status_code == 400
    assert http.get(url, headers={"Host": f"localhost:{live_server_proc.port}"}).status_code == 200


def test_revoked_token_stops_working_within_seconds(live_server_proc, data):
    import time

    item = data["ct"][0]
    url = f"{item.url(live_server_proc.dicomweb)}/frames/1"
    out = live_server_proc.manage("shell", "-c", textwrap.dedent("""
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token
        Token.objects.filter(user__username="rad").delete()
        print("TOKEN", Token.objects.create(user=get_user_model().objects.get(username="rad")).key)
    """)).stdout
    token = next(ln for ln in out.splitlines() if ln.startswith("TOKEN ")).split()[1]
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 200
    live_server_proc.manage("shell", "-c", "from rest_framework.authtoken.models import Token; Token.objects.all().delete()")
    deadline = time.monotonic() + 10  # another process revoked it: this one trusts what it knew for 2 s at most
    while requests.get(url, headers=bearer, timeout=10).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still works"
        time.sleep(0.2)
    assert requests.get(url, headers=bearer, timeout=10).status_code == 401


def test_multipart_length_is_computed_exactly():
    """Streamed answers announce Content-Length from the part sizes alone; it must match the body written."""
    from archive.wado import multipart as mp

    boundary = mp.new_boundary()
    parts_in = [("application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1", b"x" * n) for n in (0, 1, 5000)]
    body = mp.join(boundary, parts_in)
    assert mp.body_length(boundary, [(t, len(d)) for t, d in parts_in]) == len(body)
