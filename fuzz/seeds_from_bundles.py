"""Seeds of the cose and manifest fuzz targets, from the test vectors'
bundles: the COSE_Sign1 envelope of each (cose), and its payload, the
manifest's CBOR (manifest). Envelopes this small reader cannot walk (the
vectors with malformed heads) still seed `cose`."""
import base64
import re
import sys

target, out, bundles = sys.argv[1], sys.argv[2], sys.argv[3:]
BLOCK = re.compile(
    rb"-----BEGIN JOBSEAL MANIFEST-----\s*(.*?)-----END JOBSEAL MANIFEST-----", re.S
)


def head(b, i):
    """(major type, argument, next index) of the CBOR head at i."""
    major, info = b[i] >> 5, b[i] & 0x1F
    if info < 24:
        return major, info, i + 1
    n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return major, int.from_bytes(b[i + 1 : i + 1 + n], "big"), i + 1 + n


def payload(cose):
    major, _, i = head(cose, 0)  # tag 18
    if major != 6:
        raise ValueError
    major, n, i = head(cose, i)  # array of 4
    if major != 4 or n != 4:
        raise ValueError
    _, n, i = head(cose, i)  # protected bstr
    i += n
    major, n, i = head(cose, i)  # unprotected map: empty in this profile
    if major != 5 or n != 0:
        raise ValueError
    major, n, i = head(cose, i)  # payload bstr
    if major != 2:
        raise ValueError
    return cose[i : i + n]


for k, path in enumerate(bundles):
    m = BLOCK.search(open(path, "rb").read())
    if not m:
        continue
    try:
        cose = base64.b64decode(b"".join(m.group(1).split()), validate=True)
        data = cose if target == "cose" else payload(cose)
    except (ValueError, KeyError, IndexError):
        continue
    open(f"{out}/{k}", "wb").write(data)
