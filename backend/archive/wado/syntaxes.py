"""Transfer syntaxes as WADO-RS sees them: native or compressed, lossy or not, media type of a frame, decodable here."""

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
NATIVE = {EXPLICIT_LE, IMPLICIT_LE, BIG_ENDIAN, DEFLATED}
# Transfer syntaxes PS3.18 8.7.3 forbids on the web: they are sent as Explicit VR Little Endian instead.
NOT_ON_THE_WEB = {IMPLICIT_LE, BIG_ENDIAN}

# Compressed pixel data: media type of a frame (PS3.18 Table 8.7.3-4/5) and whether the coding is lossy.
FRAME_MEDIA_TYPE = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
LOSSY = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.203",
}
# Pixel data pydicom can decode here (with pylibjpeg, its plugins and pyjpegls installed).
DECODABLE = NATIVE | {ts for ts in FRAME_MEDIA_TYPE if ts not in {"1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"}}
