"""The .npy header reader: numpy's own files read as numpy reads them, oddities refused."""

from __future__ import annotations

import ast
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qex_archive.store.npyfile import _fields_of_plain_header, header_bytes, read_header


@pytest.mark.parametrize(
    "array",
    [
        np.eye(4, dtype=np.complex128),
        np.zeros((1, 1), dtype=np.complex128),
        np.zeros((3, 5), dtype=np.complex64),
        np.asfortranarray(np.ones((2, 3))),
        np.zeros((0, 7)),
        np.zeros(5),
        np.zeros((2, 2, 2), dtype=np.float32),
        np.zeros((), dtype=np.float64),
    ],
    ids=repr,
)
def test_headers_numpy_writes_read_as_numpy_reads_them(array: np.ndarray) -> None:
    stream = io.BytesIO()
    np.save(stream, array)
    stream.seek(0)
    header = read_header(stream)
    stream.seek(0)
    np.lib.format.read_magic(stream)
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    assert header.shape == shape
    assert header.fortran_order == fortran
    assert header.descr == np.lib.format.dtype_to_descr(dtype)
    assert header.data_offset == stream.tell()


@given(
    descr=st.sampled_from(["<c16", "<c8", ">f8", "|b1", "<U10", "x", "<c16'", ""]),
    fortran=st.sampled_from(["True", "False", "true", "0"]),
    rows=st.sampled_from(["0", "1", "4", "04", "-1", "1_0", "99999999999999999999", " 2"]),
    columns=st.sampled_from(["0", "1", "4", "007", "2.0"]),
    padding=st.text(alphabet=" \n\t", max_size=5),
)
def test_the_fast_path_agrees_with_literal_eval(
    descr: str, fortran: str, rows: str, columns: str, padding: str
) -> None:
    text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': ({rows}, {columns}), }}"
    raw = (text + padding).encode("latin1")
    fast = _fields_of_plain_header(raw)
    try:
        slow = ast.literal_eval(raw.decode("latin1"))
    except (ValueError, SyntaxError):
        slow = None
    if fast is not None:
        assert fast == slow


def test_the_archive_writes_headers_the_fast_path_reads() -> None:
    for n in (1, 2, 1024, 2**20):
        raw = header_bytes((n, n))[10:]
        assert _fields_of_plain_header(raw) == {
            "descr": "<c16",
            "fortran_order": False,
            "shape": (n, n),
        }
